"""The proxy's side of the analysis: where the addon's hooks send their messages.

One ``Channel`` per proxy. It starts the analysis (a worker process, or the ``Core`` in the
proxy's own process), hands each message over, and brings results back to the flows they
mark. It also owns what happens when the analysis goes wrong, so that no hook has to:

- an analysis error is logged once per kind and counted every time (under coverage);
- a worker that dies is replaced: by a new worker or, if none starts (or too many died),
  by a stand-in in the proxy's own process. Either resumes from the last commit the store
  records and re-reads what the journal holds beyond it, each message once; the message
  the worker died on is quarantined, never run again;
- when nothing can be recorded any more (a full disk, no stand-in possible) the proxy keeps
  forwarding the device's traffic and the capture ends with exit code 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn

from auditor.live.core import COMMENT, MARKER, Inline
from auditor.live.protocol import (
    AnalysisError,
    Detached,
    Finished,
    Log,
    Message,
    Reply,
    Result,
    Settings,
    error_text,
)
from auditor.live.terminal import clean, kidaudit_logger
from auditor.live.worker import JournalFailed, Worker, WorkerError, WorkerUnavailable
from auditor.memo import Memo

EXIT_USAGE, EXIT_FAILED = 2, 3  # kidaudit's exit codes: the user's input; the run itself
RESTARTS = 3  # new workers started after deaths; past this the analysis stays in-process
# Flows waiting for the result that marks them. A result comes back only when it has
# something to show (``Core._reply``), so most handles are never claimed: they are forgotten
# at this ceiling (see ``Memo``), and a flow forgotten before its result is only unmarked
# in the UI (``flows.mitm`` is marked by the analysis side).
PENDING_MARKS = 1 << 16

logger = kidaudit_logger()


class Channel:
    """The analysis as the hooks see it: ``send`` a message, and the flow it names is marked
    when its result comes back (``token``)."""

    def __init__(self) -> None:
        self.analysis: Inline | Worker | None = None
        self.settings: Settings | None = None
        self.on_update: Callable[[object], None] | None = None  # a flow view to refresh
        self._tokens = 0
        self._to_mark: Memo[int, object] = Memo(PENDING_MARKS)  # token -> its flow
        self._error_kinds: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restarts = 0
        self.lost = ""  # why analysis stopped for good (the capture then exits with 3)

    @property
    def active(self) -> bool:
        return self.analysis is not None

    def start(self, settings: Settings, *, worker: bool,
              loop: asyncio.AbstractEventLoop) -> None:
        """The analysis for ``settings``: a worker process if ``worker`` and one can start,
        else in this process. ``WorkerError``/``OSError``: the session cannot be opened."""
        self.close()
        self._loop = loop
        if worker:
            try:
                self.analysis = Worker(settings, loop, self._reply, self._worker_died)
            except WorkerUnavailable as e:
                logger.warning(f"kidaudit: {e}; analysing in mitmproxy's process")
                settings = replace(settings, marks=True)
        if self.analysis is None:
            self.analysis = Inline(settings, self._reply)
        self.settings = settings
        where = "worker process" if isinstance(self.analysis, Worker) else "in-process"
        logger.info(f"kidaudit: session {settings.directory} "
                    f"({self.analysis.patterns} known-value patterns, analysis {where})")

    def token(self, flow) -> int | None:
        """A handle for the flow the result of a message will mark (if flows are shown)."""
        if flow is None or self.settings is None or not self.settings.marks:
            return None
        self._tokens += 1
        self._to_mark.put(self._tokens, flow)
        return self._tokens

    def send(self, msg: Message) -> None:
        assert self.analysis is not None
        try:
            self.analysis.send(msg)
        except JournalFailed as e:  # a full disk: nothing more can be recorded
            self._lose(f"the journal cannot be written ({e})")
        except WorkerError:  # died just now: ``_worker_died`` has put its replacement in
            if self.analysis is not None:
                self.analysis.send(msg)

    def error(self, e: Exception) -> None:
        """An error on the proxy's side: counted under coverage, logged once per kind."""
        text = error_text(e)
        self.send(AnalysisError("analyze", text))
        self._log_error(None, type(e).__name__, text)

    def finish(self, lang: str) -> None:
        """Write the reports (or leave a worker far behind to write them alone)."""
        if self.lost:
            self._exit_lost()
        if self.analysis is None or self.settings is None:
            return
        finished = self.analysis.finish(lang)
        while finished is None:  # the worker died while writing: take over, write them again
            assert isinstance(self.analysis, Worker)
            self._worker_died(self.analysis.exit_code, " while writing the reports")
            if self.analysis is None:  # the take-over failed too: lost for good
                self._exit_lost()
            finished = self.analysis.finish(lang)  # bounded: past RESTARTS, in-process
        match finished:
            case Detached(pid, left):
                logger.warning(
                    f"kidaudit: the analysis worker (pid {pid}) is still committing "
                    f"{left / 1e6:.1f} MB of messages and then writes the reports; it goes on "
                    f"after mitmproxy exits. `kidaudit report {self.settings.directory}` waits "
                    "for it, and analyses whatever it leaves in the journal")
            case Finished(count, report):
                logger.info(f"kidaudit: {count} findings; report {report}")
        self.analysis = None

    def close(self) -> None:
        if self.analysis is not None:
            self.analysis.close()
        self.analysis = None

    # -- replies ------------------------------------------------------------------------
    def _reply(self, reply: Reply) -> None:
        """A reply from the analysis: mark the flow, raise the alerts, log the lines."""
        match reply:
            case Log(level, text):
                logger.log(level, text)
            case Result():
                self._result(reply)

    def _result(self, result: Result) -> None:
        flow = self._to_mark.pop(result.token, None) if result.token is not None else None
        if result.error:
            self._log_error(result.tx_id, result.error_kind, result.error)
        if flow is not None and result.categories:
            flow.marked = MARKER
            categories = set(result.categories)
            if flow.comment.startswith(COMMENT):  # a stream: keep what earlier messages had
                categories |= set(flow.comment[len(COMMENT):].split(", "))
            flow.comment = COMMENT + ", ".join(sorted(categories))
            if self.on_update is not None and isinstance(self.analysis, Worker):
                self.on_update(flow)  # mitmweb shows it now
        for alert in result.alerts:
            logger.warning(f"kidaudit: {alert}")

    def _log_error(self, tx_id: int | None, kind: str, text: str) -> None:
        if kind not in self._error_kinds:  # logged once per kind, counted every time
            self._error_kinds.add(kind)
            where = f" on tx #{tx_id}" if tx_id is not None else ""
            logger.error(f"kidaudit: analysis error{where} ({text}); "
                         "the flow passed unchanged, further errors of this kind are counted "
                         "in the report")

    # -- when the analysis goes ---------------------------------------------------------
    def _worker_died(self, code: int, during: str = "") -> None:
        """Take over, and say so under the report's coverage as well as in the log: a lab
        reading only the report must see that the analysis was interrupted."""
        try:
            how = self._take_over()
        except Exception as e:  # noqa: BLE001 - the proxy keeps serving the device
            self._lose(f"the worker exited with code {code}{during} and the proxy could not "
                       f"take over ({error_text(e)})")
            return
        text = f"analysis worker exited with code {code}{during}; {how}"
        logger.error(f"kidaudit: {text}")
        self.send(AnalysisError("worker", text))

    def _take_over(self) -> str:
        """The worker is gone: a new one takes over, or a stand-in in this process if none
        starts. Either is a ``Core`` that resumes from the last commit the store records and
        analyses what the journal holds beyond it, each message once (``flows.mitm`` is cut
        back to that commit too). A message the worker was analysing when it died is
        quarantined, never run again: it may be what killed it, and in this process it would
        stop the proxy. Returns what happens next, for the log and the coverage."""
        assert self.settings is not None and self._loop is not None
        self.analysis = None  # nothing is sent to the dead worker while the next one starts
        settings = replace(self.settings, take_over=True)
        if self._restarts < RESTARTS:
            self._restarts += 1
            try:
                self.analysis = Worker(settings, self._loop, self._reply, self._worker_died)
            except WorkerError as e:  # the session may still open here
                logger.warning(f"kidaudit: no new analysis worker ({e})")
            else:
                return ("a new analysis worker continues from the last commit (a message the "
                        "worker died analysing is quarantined: see coverage)")
        inline = Inline(settings, self._reply)
        self.analysis = inline
        again, quarantined = inline.core.recovered, inline.core.quarantined
        text = (f"analysis continues in the proxy's process, from the {again} messages the "
                "worker had not committed")
        if quarantined:
            text += (f" ({quarantined} it died analysing quarantined, not analysed again: "
                     "see coverage)")
        return text

    def _lose(self, why: str) -> None:
        """Analysis cannot go on: the proxy keeps forwarding, and exits with code 3."""
        self.lost = (f"analysis lost for good: {why}; traffic after that was forwarded but "
                     f"not recorded; what was committed is in "
                     f"{self.settings.directory if self.settings else '?'}")
        with contextlib.suppress(Exception):  # the worker commits what it has, unwaited for
            if isinstance(self.analysis, Worker):
                self.analysis.detach()
            elif self.analysis is not None:
                self.analysis.close()
        self.analysis = None
        logger.error(f"kidaudit: {self.lost}")

    def _exit_lost(self) -> NoReturn:
        """Nothing more can be written: the run failed, and says so in one line (exit 3)."""
        print(f"kidaudit: {clean(self.lost)}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED)

