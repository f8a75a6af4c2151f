"""kidaudit as a mitmproxy addon: every outgoing request is analysed as it passes.

    mitmdump -s addons/kidaudit.py --set kidaudit_profile=P.yaml --set kidaudit_session=DIR \
        [--set kidaudit_consent=PLAN.yaml]

Works the same under mitmweb and the mitmproxy console. Each request is committed to
DIR/session.sqlite at once; raw flows go to DIR/flows.mitm; flows with personal data are
marked and commented with the categories; each new finding is logged as one line; on
shutdown DIR/findings.json, DIR/detections.csv and DIR/report.html are written.

The device's traffic is never touched: an analysis error is caught, counted, logged once
and shown under coverage in the report, and the flow passes unchanged.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # loaded by path (`mitmdump -s`) from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import command, ctx, http, io, tls
from mitmproxy.addonmanager import Loader
from mitmproxy.exceptions import OptionsError

from auditor.marks import MARK_HOST, parse_words
from auditor.profile import ConfigError, load_consent_plan, load_profile
from auditor.session import FLOWS_FILE, Session
from auditor.sources.mitm import Signals, is_mark, mark_event, mark_flow, now, transmission

logger = logging.getLogger("kidaudit")

MARKER = ":warning:"  # mitmproxy's emoji marker for flows carrying personal data
OPTIONS = ("kidaudit_profile", "kidaudit_session", "kidaudit_consent", "kidaudit_lang")


class KidAudit:
    def __init__(self) -> None:
        self.session: Session | None = None
        self.signals: Signals | None = None
        self._flows_fh = None
        self._writer: io.FlowWriter | None = None
        self._error_kinds: set[str] = set()

    def load(self, loader: Loader) -> None:
        loader.add_option("kidaudit_profile", str, "",
                          "kidaudit: device profile YAML (the values the lab seeded).")
        loader.add_option("kidaudit_session", str, "",
                          "kidaudit: session folder for session.sqlite, flows.mitm and reports.")
        loader.add_option("kidaudit_consent", str, "",
                          "kidaudit: consent plan YAML (optional).")
        loader.add_option("kidaudit_lang", str, "en", "kidaudit: report language, en or zh.")

    def configure(self, updated: set[str]) -> None:
        if not updated & set(OPTIONS):
            return
        opts = ctx.options
        if opts.kidaudit_lang not in ("en", "zh"):
            raise OptionsError(f"kidaudit_lang: {opts.kidaudit_lang!r} is not one of en, zh")
        if not (updated & {"kidaudit_profile", "kidaudit_session", "kidaudit_consent"}):
            return
        if not opts.kidaudit_profile and not opts.kidaudit_session:
            return  # loaded but not configured: stay out of the way
        if not opts.kidaudit_profile or not opts.kidaudit_session:
            raise OptionsError("kidaudit needs both kidaudit_profile and kidaudit_session")
        try:
            profile = load_profile(opts.kidaudit_profile)
            plan = load_consent_plan(opts.kidaudit_consent) if opts.kidaudit_consent else None
            signals = Signals(plan)
        except ConfigError as e:
            raise OptionsError(str(e)) from e
        self._close()
        self.session = Session(Path(opts.kidaudit_session), profile, plan)
        self.signals = signals
        flows = self.session.directory / FLOWS_FILE
        self._flows_fh = open(flows, "ab")  # noqa: SIM115 - closed in done()
        os.chmod(flows, 0o600)
        self._writer = io.FlowWriter(self._flows_fh)
        logger.info(f"kidaudit: session {self.session.directory} "
                    f"({len(self.session.pipeline.detector.known)} known-value patterns)")

    # -- traffic ------------------------------------------------------------------------
    def request(self, flow: http.HTTPFlow) -> None:
        if self.session is None:
            return
        if is_mark(flow):
            self._answer_mark(flow)
            return
        self._poll_marks()
        tx_id = self.session.next_id()
        try:
            for ev in self.signals.events(flow) if self.signals else ():
                self.session.record_event(ev)
                logger.info(f"kidaudit: consent signal {ev.action} {','.join(ev.categories)}")
            obs, opened = self.session.observe(transmission(flow, tx_id))
        except Exception as e:  # noqa: BLE001 - never break the device's traffic
            self._analysis_error(tx_id, e)
            return
        if obs.detections:
            flow.marked = MARKER
            flow.comment = "kidaudit: " + ", ".join(sorted(obs.categories))
        for f in opened:
            logger.warning(f"kidaudit: [{f.severity.upper()}] {f.rule} -> {f.recipient or '?'}"
                           f" ({', '.join(f.categories)}) tx #{tx_id}")

    def response(self, flow: http.HTTPFlow) -> None:
        self._save(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._save(flow)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        """The device refused our certificate (pinning, or it does not trust the lab CA)."""
        if self.session is not None:
            host = data.context.client.sni or str(data.context.server.address)
            self.session.store.add_uninspected(
                host, "client rejected the interception certificate (pinned or CA not trusted)")

    def done(self) -> None:
        if self.session is None:
            return
        try:
            out = self.session.write_outputs(lang=ctx.options.kidaudit_lang)
            logger.info(f"kidaudit: {len(out.findings)} findings; report {out.report}")
        finally:
            self._close()

    # -- consent marks ------------------------------------------------------------------
    @command.command("kidaudit.mark")
    def mark(self, action: str, *words: str) -> None:
        """Record a consent event now: grant|refuse|withdraw CATEGORY... or phase NAME."""
        if self.session is None:
            raise OptionsError("kidaudit is not configured (set kidaudit_profile/session)")
        try:
            ev = parse_words(action, list(words), now(), "command")
        except ValueError as e:
            raise OptionsError(f"kidaudit.mark: {e}") from e
        self._record_mark(ev)

    def _answer_mark(self, flow: http.HTTPFlow) -> None:
        """The magic host: answered here, never forwarded."""
        try:
            ev = mark_event(flow)
        except ValueError as e:
            flow.response = http.Response.make(400, f"kidaudit: {e}\n".encode(),
                                               {"content-type": "text/plain"})
            return
        self.session.record_event(ev)
        logger.warning(f"kidaudit: consent mark {_describe(ev)}")
        flow.response = http.Response.make(
            200, f"kidaudit recorded: {_describe(ev)}\n".encode(), {"content-type": "text/plain"})
        flow.comment = "kidaudit: consent mark"

    def _record_mark(self, ev) -> None:
        assert self.session is not None
        self.session.record_event(ev)
        self._save(mark_flow(ev))
        logger.warning(f"kidaudit: consent mark {_describe(ev)}")

    def _poll_marks(self) -> None:
        """Marks written by ``kidaudit mark --session DIR`` from another process."""
        assert self.session is not None
        for ev in self.session.poll_events():
            self._save(mark_flow(ev))
            logger.warning(f"kidaudit: consent mark {_describe(ev)}")

    # -- internals ----------------------------------------------------------------------
    def _analysis_error(self, tx_id: int, e: Exception) -> None:
        assert self.session is not None
        self.session.record_error(tx_id, "analyze", e)
        kind = type(e).__name__
        if kind not in self._error_kinds:  # logged once per kind, counted every time
            self._error_kinds.add(kind)
            logger.error(f"kidaudit: analysis error on tx #{tx_id} ({kind}: {e}); "
                         "the flow passed unchanged, further errors of this kind are counted "
                         "in the report")

    def _save(self, flow) -> None:
        if self._writer is not None and self._flows_fh is not None:
            self._writer.add(flow)
            self._flows_fh.flush()

    def _close(self) -> None:
        if self._flows_fh is not None:
            self._flows_fh.close()
        if self.session is not None:
            self.session.close()
        self._flows_fh = self._writer = self.session = None


def _describe(ev) -> str:
    what = ev.name if ev.action == "phase" else ",".join(ev.categories)
    extra = f" separate={','.join(ev.separate)}" if ev.separate else ""
    return f"{ev.action} {what}{extra}"


__all__: Sequence[str] = ("KidAudit", "MARK_HOST")
addons = [KidAudit()]
