"""Renderers of a session's findings document, one module per output format.

Each renderer has the same signature, ``render(doc, out, *, lang="en")`` (STYLE.md point 8):
``doc`` is the ``kidaudit.findings/1`` dict, already masked or revealed by the caller.
"""
