"""Consent events as they happen: the ``kidaudit.mark`` command, the magic host, the plan's
traffic signals.

A lab marks a consent step from mitmproxy's console (``:kidaudit.mark grant location``),
from the device's own browser (``http://kidaudit.mark/grant?categories=location``: answered
here, never forwarded), or lets the plan's signals recognise it in the traffic (a request
matching a mitmproxy filter). Each becomes a ``Consent`` message on the same timeline as
the transmissions around it.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.exceptions import OptionsError

from auditor.live.channel import Channel
from auditor.live.protocol import Consent
from auditor.live.terminal import describe, kidaudit_logger
from auditor.marks import parse_words
from auditor.sources.mitm import MARK_COMMENT, Signals, mark_event, now

logger = kidaudit_logger()


class ConsentMarks:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.signals: Signals | None = None  # the plan's, set when the session starts

    def mark(self, action: str, *words: str) -> None:
        """Record a consent event now: grant|refuse|withdraw CATEGORY... or phase NAME (the
        ``kidaudit.mark`` command of ``KidAudit``)."""
        if not self.channel.active:
            raise OptionsError("kidaudit is not configured (set kidaudit_profile/session)")
        try:
            ev = parse_words(action, list(words), now(), "command")
        except ValueError as e:
            raise OptionsError(f"kidaudit.mark: {e}") from e
        logger.warning(f"kidaudit: consent mark {describe(ev)}")  # before the procedure's
        self.channel.send(Consent(ev, save=True))  # the mark goes into flows.mitm as a flow

    def answer(self, flow: http.HTTPFlow) -> None:
        """The magic host: answered here, never forwarded."""
        try:
            ev = mark_event(flow)
        except ValueError as e:
            flow.response = http.Response.make(400, f"kidaudit: {e}\n".encode(),
                                               {"content-type": "text/plain"})
            return
        logger.warning(f"kidaudit: consent mark {describe(ev)}")  # before the procedure's
        self.channel.send(Consent(ev))  # the flow itself is saved with its response
        flow.response = http.Response.make(
            200, f"kidaudit recorded: {describe(ev)}\n".encode(), {"content-type": "text/plain"})
        flow.comment = MARK_COMMENT

    def signals_of(self, flow: http.HTTPFlow) -> None:
        """The plan's signals this request matches, each a consent event."""
        try:
            for ev in self.signals.events(flow) if self.signals else ():
                self.channel.send(Consent(ev))
                logger.info(f"kidaudit: consent signal {ev.action} {','.join(ev.categories)}")
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self.channel.error(e)
