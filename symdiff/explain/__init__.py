"""Explanations: rule-by-rule steps, limit derivations, computational graphs, reports."""
