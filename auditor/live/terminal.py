"""What the live runtime writes to the lab's terminal, made safe to show.

A device's host name, a consent mark's name or an error's text can carry control and bidi
characters; on the lab's terminal they must not move the cursor, rewrite earlier lines,
reorder what follows or hide themselves. Every kidaudit log line passes through ``clean``
(``CleanFilter`` on the ``kidaudit`` logger), and so does every line the CLI prints.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from auditor.model import ConsentEvent
from auditor.standards.procedure import Tracker, needed
from auditor.standards.steps import STEPS

# Control, format (bidi overrides and isolates, zero-width), line and paragraph separators,
# written out from Unicode's Cc, Cf, Zl and Zp (3.11's tables, plus what 3.13 adds), so
# importing it costs nothing.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]")


def clean(text: str) -> str:
    r"""``text`` safe for a terminal: each control or format character shown as its escape
    (``\x1b``, ``\u202e``), so the line still says what the device sent."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def describe(ev: ConsentEvent) -> str:
    """A consent event in one line, for the proxy's log."""
    what = ev.name if ev.action == "phase" else ",".join(ev.categories)
    extra = f" separate={','.join(ev.separate)}" if ev.separate else ""
    return f"{ev.action} {what}{extra}"


def procedure_tracker(standards: Sequence[str], jurisdiction: str, session: str,
                      events: Iterable[ConsentEvent] = (), *, probe: bool = False) -> Tracker:
    """Where a capture is in its procedure (``capture --standard``), shown when a mark
    arrives: the steps the chosen standards need; without any, the profile's jurisdiction's
    default standard's, or every step. ``KeyError`` for an unknown id."""
    from auditor.standards.catalogue import by_id, defaults_for

    chosen = [by_id(s) for s in standards] if standards else defaults_for(jurisdiction)
    return Tracker(needed(chosen) if chosen else STEPS, events, session, probe=probe)


class CleanFilter(logging.Filter):
    """Every kidaudit log line made safe for a terminal (see ``clean``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        safe = clean(text)
        if safe is not text or record.args:
            record.msg, record.args = safe, None
        return True


def kidaudit_logger() -> logging.Logger:
    """The ``kidaudit`` logger, with ``CleanFilter`` on it once (the addon may be reloaded)."""
    logger = logging.getLogger("kidaudit")
    if not any(isinstance(f, CleanFilter) for f in logger.filters):
        logger.addFilter(CleanFilter())
    return logger
