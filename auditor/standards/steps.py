"""The session steps a tester performs, and whether one session performed each.

A test item's *pass* means something only when the session gave its rules a chance: a
withdrawal item needs a withdrawal with use after it, a frequency item an idle phase long
enough to count. Each step is data (what to do, the mark that records it, how long it must
last); ``performed`` reads one session's facts and says, for every step, whether it
happened and for how long. ``kidaudit procedure`` prints the steps in this order, the
conformance table names the missing ones, ``capture`` shows the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auditor.model import ConsentEvent
from auditor.standards.model import Text


@dataclass(frozen=True)
class Step:
    """One step of the procedure. ``mark`` is the words after ``kidaudit mark --session DIR``
    (also ``http://kidaudit.mark/...``); empty when the traffic itself shows the step.
    ``min_duration_s``: how long the phase (or the use after the mark) must last."""

    id: str
    title: Text
    how: Text
    mark: str = ""
    min_duration_s: int = 0


STEPS: tuple[Step, ...] = (
    Step("before-consent",
         Text("Traffic before consent", "同意前的通信"),
         Text("Start the capture before the device is paired or the guardian agrees to anything; "
              "power the device on and leave it running.",
              "在设备绑定、监护人同意任何内容之前开始抓包；开机并保持运行。"),
         "", 300),
    Step("binding",
         Text("Binding", "绑定"),
         Text("Pair the device with the guardian's companion app.",
              "将设备与监护人端配套应用绑定。"),
         "phase binding", 0),
    Step("grant",
         Text("Guardian consent", "监护人同意"),
         Text("The guardian accepts the privacy notice; grant separately what the app asks "
              "separately for.",
              "监护人同意隐私政策；对应用单独申请的内容单独同意。"),
         "grant all-disclosed", 0),
    Step("use",
         Text("Use every feature", "使用全部功能"),
         Text("Locate the child, send a voice message and a photo, sync contacts, make a call.",
              "定位儿童、发送语音和照片、同步通讯录、拨打电话。"),
         "phase use", 600),
    Step("refuse",
         Text("Refusal", "拒绝"),
         Text("The guardian refuses one optional category (for example location sharing with "
              "partners) and keeps using the device.",
              "监护人拒绝一项可选内容（例如向合作方共享位置）并继续使用设备。"),
         "refuse location.precise", 300),
    Step("idle",
         Text("Idle", "静置"),
         Text("Leave the device untouched; a longer idle phase (a 24-72 h soak) shows "
              "background collection and collection frequency better.",
              "不操作设备；静置越久（24-72 小时）越能反映后台收集与收集频率。"),
         "phase idle", 1800),
    Step("withdraw",
         Text("Withdrawal", "撤回同意"),
         Text("The guardian withdraws consent (or unbinds); keep the device running past the "
              "grace window.",
              "监护人撤回同意（或解绑）；设备继续运行超过宽限期。"),
         "withdraw all-disclosed", 600),
    Step("update",
         Text("Update check", "升级检查"),
         Text("Trigger a firmware or app update check.", "触发固件或应用的升级检查。"),
         "phase update", 0),
    Step("tls-probe",
         Text("TLS validation probe", "TLS 证书校验探测"),
         Text("Capture with --tls-probe so each new server name first gets deliberately bad "
              "certificates.",
              "使用 --tls-probe 抓包，使每个新的服务器名先收到故意错误的证书。"),
         "", 0),
)
STEP_IDS = tuple(s.id for s in STEPS)
BY_ID = {s.id: s for s in STEPS}


@dataclass(frozen=True)
class SessionFacts:
    """What ``performed`` needs of one session, gathered by whoever walks it: the times of
    its first and last message, whether anything was sent before the first grant, how many
    hosts the TLS probe tried, whether an update fetch was seen."""

    first: float | None = None
    last: float | None = None
    traffic_before_grant: bool = False
    probed_hosts: int = 0
    update_fetch: bool = False


@dataclass(frozen=True)
class StepResult:
    """One step in one session: performed or not; when, for how long, and if not, why."""

    step: str
    performed: bool
    at: float | None = None
    duration_s: float | None = None
    missing: Text | None = None


def _minutes(s: float) -> str:
    return f"{s / 60:.0f}"


def _too_short(step: Step, at: float, lasted: float) -> StepResult:
    need = _minutes(step.min_duration_s)
    got = _minutes(max(lasted, 0.0))
    return StepResult(step.id, False, at, lasted,
                      Text(f"lasted {got} min of the {need} min needed",
                           f"持续 {got} 分钟，需要 {need} 分钟"))


def _not_done(step: Step, en: str, zh: str) -> StepResult:
    return StepResult(step.id, False, missing=Text(en, zh))


def _phase_spans(events: list[ConsentEvent], last: float | None) -> dict[str, tuple[float, float]]:
    """Each phase name -> (its first start, its longest single stretch), a stretch ending at
    the next phase mark or the session's last message."""
    marks = sorted((e for e in events if e.action == "phase"), key=lambda e: e.ts)
    spans: dict[str, tuple[float, float]] = {}
    for i, ev in enumerate(marks):
        end = marks[i + 1].ts if i + 1 < len(marks) else (last if last is not None else ev.ts)
        name = ev.name.casefold()
        start, longest = spans.get(name, (ev.ts, 0.0))
        spans[name] = (start, max(longest, end - ev.ts))
    return spans


def performed(events: Iterable[ConsentEvent], facts: SessionFacts) -> tuple[StepResult, ...]:
    """Every step of ``STEPS``, in order, judged on one session's events and facts. An event
    after the session's last message performs nothing: no traffic was seen under it."""
    last = facts.last
    evs = sorted((e for e in events if last is None or e.ts <= last), key=lambda e: e.ts)
    spans = _phase_spans(evs, last)
    first_of = {}
    for e in evs:
        first_of.setdefault(e.action, e.ts)
    out: list[StepResult] = []
    for step in STEPS:
        out.append(_judge(step, evs, spans, first_of, facts))
    return tuple(out)


def _judge(step: Step, evs: list[ConsentEvent], spans: dict[str, tuple[float, float]],
           first_of: dict[str, float], facts: SessionFacts) -> StepResult:
    last = facts.last
    if step.id == "before-consent":
        if facts.first is None or not facts.traffic_before_grant:
            return _not_done(step, "nothing was sent before the first grant",
                             "首次同意前没有任何通信")
        end = first_of.get("grant", last if last is not None else facts.first)
        lasted = end - facts.first
        if lasted < step.min_duration_s:
            return _too_short(step, facts.first, lasted)
        return StepResult(step.id, True, facts.first, lasted)
    if step.id == "tls-probe":
        if facts.probed_hosts:
            return StepResult(step.id, True)
        return _not_done(step, "the capture did not run the TLS probe",
                         "抓包时未运行 TLS 探测")
    if step.id in ("grant", "refuse", "withdraw"):
        at = first_of.get(step.id)
        if at is None:
            return _not_done(step, f"no {step.id} mark", f"没有 {step.id} 标记")
        lasted = (last - at) if last is not None else 0.0
        if lasted < step.min_duration_s:
            return _too_short(step, at, lasted)
        return StepResult(step.id, True, at, lasted)
    # a phase: binding, use, idle, update
    if step.id == "update" and facts.update_fetch and step.id not in spans:
        return StepResult(step.id, True)
    span = spans.get(step.id)
    if span is None:
        return _not_done(step, f"no '{step.id}' phase mark", f"没有 '{step.id}' 阶段标记")
    start, longest = span
    if longest < step.min_duration_s:
        return _too_short(step, start, longest)
    return StepResult(step.id, True, start, longest)
