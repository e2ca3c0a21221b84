"""Jinja2 templates of the generated modules (shipped as the package ``symdiff.templates``)."""
