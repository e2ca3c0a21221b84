"""Differentiation of the IR: reverse mode (VJP rules) and forward mode (JVP rules)."""
