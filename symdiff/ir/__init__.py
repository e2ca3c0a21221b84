"""The IR: shaped, interned expression DAGs, their printers, rewrites and simplification."""
