"""Renderers of a session's findings document, one module per output format.

Each renderer has the same signature, ``render(doc, out, *, lang="en")`` (STYLE.md point 8):
``doc`` is a ``document.Document`` (schema ``kidaudit.findings/1``), already masked or
revealed by the caller. The HTML page's timeline drawing lives in ``timeline``.
"""
