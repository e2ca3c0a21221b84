"""Symbolic calculus on SymPy trees: derivative rules, differentiation, simplification."""
