"""Code generation: program schedule, NumPy printer, template, module loading."""
