"""Packaged postmortem templates (jinja2), loaded with importlib.resources."""
