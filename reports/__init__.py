"""Renderers of a result: the terminal summary now; HTML, Markdown and PDF reports later."""
