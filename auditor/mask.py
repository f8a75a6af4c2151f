"""Masking: values leave the tool masked unless the lab asks for ``--reveal``."""

from __future__ import annotations

# Categories whose value is never shown even in part: a password fragment helps an attacker.
FULLY_MASKED = frozenset({"credentials.password"})


def mask(value: str, category: str = "") -> str:
    """``8612345678900123`` -> ``8612********0123`` (DESIGN.md): enough to recognise, not to
    reuse. At most half of a value shows (a quarter at each end, four characters at most);
    short values and passwords are masked whole."""
    n = len(value)
    keep = min(4, n // 4)
    if category in FULLY_MASKED or n < 6:
        keep = 0
    return value[:keep] + "*" * (n - 2 * keep) + value[n - keep:] if keep else "*" * n
