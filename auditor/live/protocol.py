"""What the proxy and the analysis side say to each other: one frozen dataclass per message.

The proxy's hooks turn traffic into messages (``HttpFlow``, ``Raw``, ``Uninspected``,
``Consent``, ``AnalysisError``, ``SaveFlow``); the analysis side (``auditor.live.core``)
answers with replies (``Result``, ``Log``, ``Committed``; ``Ready``/``Failed`` when a
worker starts, ``Finished``/``Detached`` at the end). Each side dispatches on the type with
``match``, so a message's fields are named where it is made and where it is read.

Messages are pickled into the session's journal (``auditor.live.journal``) and replies into
the worker's pipe, so everything here is a plain picklable value: flow states, not flows.
The analysis side numbers the transmissions; ``token`` is the proxy's own handle for the
flow a result will mark (None: nothing to mark).

=========================  ===========================================================
message                    effect, reply
=========================  ===========================================================
``HttpFlow``               append the flow to flows.mitm, analyse its request; ``Result``
``Raw``                    analyse one raw message (TCP, UDP, WebSocket, DNS); ``Result``
``Uninspected``            a TLS attempt we could not read: listed under coverage,
                           analysed, its record flow appended; ``Result``
``Consent``                record a consent event; with ``save`` the mark goes to flows.mitm
``AnalysisError``          count an analysis error from the proxy's side
``SaveFlow``               append one flow (``get_state()``) to flows.mitm
``Finish``                 write the reports; ``Finished``
``Close``                  close without reports
=========================  ===========================================================

``Finish`` and ``Close`` go over the worker's pipe, never into the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from auditor.extract.payload import ClientHello
from auditor.model import ConsentEvent, Transmission

# -- to the analysis side ---------------------------------------------------------------


@dataclass(frozen=True)
class HttpFlow:
    """An HTTP flow whose response went to the device (or that failed)."""

    kind: ClassVar[str] = "http"  # its name in log lines and under coverage

    token: int | None
    state: dict  # ``flow.get_state()``, its connections' states shared (never mutated)
    hello: ClientHello | None = None  # the ClientHello of its client connection


@dataclass(frozen=True)
class Raw:
    """One TCP frame, UDP datagram, WebSocket message or DNS query."""

    kind: ClassVar[str] = "tx"

    token: int | None
    tx: Transmission


@dataclass(frozen=True)
class Uninspected:
    """A TLS attempt the device would not let us read (``record``: its record flow)."""

    kind: ClassVar[str] = "uninspected"

    tx: Transmission
    reason: str
    record: dict


@dataclass(frozen=True)
class Consent:
    kind: ClassVar[str] = "event"

    event: ConsentEvent
    save: bool = False  # the mark goes into flows.mitm as a flow of its own


@dataclass(frozen=True)
class AnalysisError:
    """An error on the proxy's side (or a worker's death), counted under coverage."""

    kind: ClassVar[str] = "error"

    stage: str
    text: str


@dataclass(frozen=True)
class SaveFlow:
    kind: ClassVar[str] = "save"

    state: dict


@dataclass(frozen=True)
class Finish:
    kind: ClassVar[str] = "finish"

    lang: str


@dataclass(frozen=True)
class Close:
    kind: ClassVar[str] = "close"


Message = HttpFlow | Raw | Uninspected | Consent | AnalysisError | SaveFlow | Finish | Close
ANALYSED = (HttpFlow, Raw, Uninspected)  # messages answered with a Result
ENDING = (Finish, Close)  # control messages: the session ends with them

# -- back to the proxy ------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What the proxy needs back about one analysed transmission: how to mark its flow,
    which findings it opened (one alert line each), and the error if analysis failed."""

    token: int | None  # the proxy's handle for the flow to mark
    tx_id: int | None
    categories: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    error: str = ""  # "Kind: message" when the pipeline failed (the message is still kept)

    @property
    def error_kind(self) -> str:
        return self.error.split(":", 1)[0]


@dataclass(frozen=True)
class Log:
    """A line for the proxy's own log (a consent mark ``kidaudit mark`` wrote, say)."""

    level: int
    text: str


@dataclass(frozen=True)
class Committed:
    """The store now holds the journal up to ``offset``."""

    offset: int


@dataclass(frozen=True)
class Ready:
    """The worker's session is open; the journal is committed up to ``offset``."""

    patterns: int
    offset: int


@dataclass(frozen=True)
class Failed:
    """The worker could not open the session (one line)."""

    text: str


@dataclass(frozen=True)
class Finished:
    findings: int
    report: str


@dataclass(frozen=True)
class Detached:
    """The worker is far behind at shutdown: it goes on alone with ``left`` bytes."""

    pid: int
    left: int


Reply = Result | Log | Committed | Ready | Failed | Finished | Detached


@dataclass(frozen=True)
class Settings:
    """Where a live session goes and what it is judged against (picklable: sent to the
    worker as its first message)."""

    directory: str
    profile: str
    consent: str = ""
    marks: bool = True  # send every result back to mark its flow (a UI shows the flows);
    #                     otherwise only results with alerts or errors come back
    resume: bool = False  # ``capture --resume``: continue an interrupted capture's folder
    take_over: bool = False  # a stand-in for a dead worker of the same capture
    modes: tuple[str, ...] = ()  # the proxy's modes (mitmproxy's ``mode``), for sign-off
    operator: str = ""  # who runs the capture (``kidaudit_operator``), for sign-off
    standards: tuple[str, ...] = ()  # ``kidaudit_standards``: the procedure and the reports'
    tls_probe: bool = False  # ``kidaudit_tls_probe`` at start: the procedure's probe step


def from_tuple(msg: tuple) -> Message:
    """A message as kidaudit 0.1 wrote it into a journal, before this protocol was typed:
    a tuple whose first item names it. A capture interrupted under the old version is still
    recovered (``kidaudit report``, ``capture --resume``) after an upgrade; anything else is
    refused as unknown, and counted under coverage by the caller."""
    match msg:
        case ("http", token, dict() as state, hello):
            return HttpFlow(token, state, hello)
        case ("tx", token, Transmission() as tx):
            return Raw(token, tx)
        case ("uninspected", Transmission() as tx, str(reason), dict() as record):
            return Uninspected(tx, reason, record)
        case ("event", ConsentEvent() as event, bool(save)):
            return Consent(event, save)
        case ("error", str(stage), str(text)):
            return AnalysisError(stage, text)
        case ("save", dict() as state):
            return SaveFlow(state)
        case ("finish", str(lang)):
            return Finish(lang)
        case ("close",):
            return Close()
    raise ValueError(f"unknown message {str(msg[0]) if msg else '()'!r}")


def error_text(e: BaseException) -> str:
    """How an analysis error reads in the log and under coverage: its type, then its text."""
    return f"{type(e).__name__}: {e}"
