"""The session script a tester follows for one or more standards, and where a live capture is
in it.

A standard's pass means something only when the session performed the steps its items need
(``steps.STEPS``). ``procedure`` turns the chosen catalogues into those steps, in STEPS order,
each with the clauses it exercises, the mark that records it (written the three ways a mark
can be sent: ``kidaudit mark``, the magic host, the mitmproxy command) and how long it must
last; ``markdown`` writes it as the text a tester follows (``kidaudit procedure``). The
printable HTML checklist (``auditor.report.procedure_html``) reads the same ``Procedure``.

``status`` and ``Tracker`` are the live side: when a mark arrives, which needed steps are
done, which one is in progress ("12 of 30 min") and the next one to perform. Pure: times are
given, never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from auditor.marks import MARK_HOST, mark_path, parse_words
from auditor.model import ConsentEvent
from auditor.standards.model import DOCUMENT, NUMBER_NOT_CONFIRMED, Item, Standard, Text
from auditor.standards.steps import BY_ID, STEPS, SessionFacts, Step, performed

PROBE_STEP = "tls-probe"  # performed by ``capture --tls-probe``, or from this phase mark on
PROBE_MARK = "phase tls-probe"  # (auditor.live.probe: the probe runs while it is the phase)
# Placeholders in the printed commands: the lab's own files and folder.
PROFILE, PLAN, SESSION = "PROFILE.yaml", "PLAN.yaml", "DIR"

LABELS: dict[str, Text] = {
    "title": Text("Test procedure", "测试规程"),
    "intro": Text("Follow the steps in order in one capture session. Each mark can be sent "
                  "any of three ways; the report lists each step as performed or missed.",
                  "在同一次抓包会话中按顺序执行各步骤。每个标记可用以下三种方式之一发送；"
                  "报告会列出每个步骤已执行或缺失。"),
    "setup": Text("Session setup", "会话准备"),
    "profile": Text("Device profile (the values the lab seeded)", "设备档案（实验室预置的值）"),
    "plan": Text("Consent plan (what the notice discloses)", "同意计划（隐私政策披露的内容）"),
    "start": Text("Start the capture", "开始抓包"),
    "steps": Text("Steps", "步骤"),
    "do": Text("What to do", "操作"),
    "mark": Text("Mark", "标记"),
    "no_mark": Text("none: the traffic itself shows this step",
                    "无：通信本身即可体现该步骤"),
    "probe_mark": Text("none when the capture runs with --tls-probe; without it, the probe "
                       "runs from this mark until the next phase mark",
                       "抓包时加上 --tls-probe 则无需标记；否则从此标记起探测，直到下一个阶段标记"),
    "cli": Text("from a shell", "命令行"),
    "url": Text("from a browser behind the proxy", "在代理后的浏览器中打开"),
    "command": Text("in mitmproxy's console or mitmweb", "在 mitmproxy 控制台或 mitmweb 中"),
    "lasts": Text("Lasts at least", "至少持续"),
    "any": Text("no minimum", "无最短时长"),
    "minutes": Text("{n} min", "{n} 分钟"),
    "exercises": Text("Exercises", "覆盖条款"),
    "done": Text("Done", "已完成"),
    "review": Text("Not testable by traffic (document review)", "无法通过通信测试（文档审查）"),
    "none": Text("none", "无"),
    "no_steps": Text("None of these items is testable by traffic: nothing to exercise in a "
                     "session.", "这些条款均无法通过通信测试：会话中无需执行步骤。"),
    "not_confirmed": Text("the standard's number could not be confirmed: it lists no items",
                          "未能确认标准编号：不列出任何条款"),
    "unverified": Text("clause not verified against the standard's text",
                       "条款未经标准原文核实"),
}


def label(key: str, lang: str) -> str:
    return LABELS[key].get(lang)


@dataclass(frozen=True)
class Exercised:
    """One item a step exercises, named as the report names it."""

    standard: str  # the standard's number, e.g. GB/T 41391-2022
    clause: str
    title: Text
    unverified: bool = False
    note: Text | None = None  # the catalogue's justification (EN 18031's "not applicable")


@dataclass(frozen=True)
class ProcedureStep:
    """A step of the procedure: ``cli``, ``url`` and ``command`` are its mark written the
    three ways (all empty when the traffic itself, or a capture option, shows the step)."""

    number: int
    step: Step
    items: tuple[Exercised, ...]
    cli: str = ""
    url: str = ""
    command: str = ""


@dataclass(frozen=True)
class Procedure:
    standards: tuple[Standard, ...]
    steps: tuple[ProcedureStep, ...]
    review: tuple[Exercised, ...]  # items evidenced only by documents
    capture: str  # the ``kidaudit capture`` command line that starts the session


def mark_forms(mark: str, session: str = SESSION) -> tuple[str, str, str]:
    """``phase idle`` -> the shell command, the magic-host URL and the mitmproxy command,
    all from the one spelling ``auditor.marks`` parses (so none can drift from it)."""
    action, *words = mark.split()
    path = mark_path(parse_words(action, words, 0.0, "procedure"))
    return (f"kidaudit mark --session {session} {mark}", f"http://{MARK_HOST}{path}",
            f":kidaudit.mark {mark}")


def needed(standards: Iterable[Standard]) -> tuple[Step, ...]:
    """The steps any traffic item of ``standards`` needs, in STEPS order."""
    ids = {s for std in standards for item in std.items if item.evidence != DOCUMENT
           for s in item.steps}
    return tuple(step for step in STEPS if step.id in ids)


def name(std: Standard) -> str:
    """How the procedure names a standard: its number, or its id where it has none."""
    return std.number if any(c.isalnum() for c in std.number) else std.id


def _exercised(std: Standard, item: Item) -> Exercised:
    return Exercised(name(std), item.clause, item.title, item.clause_status != "verified",
                     item.note)


def procedure(standards: Sequence[Standard], session: str = SESSION) -> Procedure:
    """The script for ``standards`` (one session exercises them all)."""
    steps = []
    for n, step in enumerate(needed(standards), 1):
        items = tuple(_exercised(std, item) for std in standards for item in std.items
                      if item.evidence != DOCUMENT and step.id in item.steps)
        mark = PROBE_MARK if step.id == PROBE_STEP else step.mark
        cli, url, command = mark_forms(mark, session) if mark else ("", "", "")
        steps.append(ProcedureStep(n, step, items, cli, url, command))
    review = tuple(_exercised(std, item) for std in standards for item in std.items
                   if item.evidence == DOCUMENT)
    probe = any(s.step.id == PROBE_STEP for s in steps)
    capture = (f"kidaudit capture --profile {PROFILE} --consent {PLAN} --session {session}"
               + "".join(f" --standard {std.id}" for std in standards)
               + (" --tls-probe" if probe else ""))
    return Procedure(tuple(standards), tuple(steps), review, capture)


def duration(seconds: int, lang: str) -> str:
    if not seconds:
        return label("any", lang)
    return label("minutes", lang).format(n=f"{seconds / 60:g}")


def item_line(item: Exercised, lang: str, *, with_standard: bool) -> str:
    where = f"{item.standard} " if with_standard else ""
    star = "*" if item.unverified else ""
    note = f" ({item.note.get(lang)})" if item.note else ""
    return f"{where}{item.clause}{star} {item.title.get(lang)}{note}"


def standard_line(std: Standard, lang: str) -> str:
    """The standard as the procedure's header lists it."""
    tail = f" ({label('not_confirmed', lang)})" if std.status == NUMBER_NOT_CONFIRMED else ""
    return f"{name(std)}: {std.title.get(lang)}{tail}"


def markdown(proc: Procedure, lang: str = "en") -> str:
    """The procedure as Markdown: what ``kidaudit procedure`` prints or writes."""
    def t(key: str) -> str:
        return label(key, lang)

    many = len(proc.standards) > 1
    out = [f"# {t('title')}: " + "; ".join(name(s) for s in proc.standards), ""]
    out += [f"- {standard_line(s, lang)}" for s in proc.standards]
    out += ["", t("intro"), "", f"## {t('setup')}", "",
            f"- {t('profile')}: `{PROFILE}`", f"- {t('plan')}: `{PLAN}`",
            f"- {t('start')}:", "", "  ```", f"  {proc.capture}", "  ```", "",
            f"## {t('steps')}", ""]
    if not proc.steps:
        out += [t("no_steps"), ""]
    for ps in proc.steps:
        out += [f"### {ps.number}. {ps.step.title.get(lang)}", "",
                f"- [ ] {t('done')}", f"- {t('do')}: {ps.step.how.get(lang)}"]
        if ps.cli:
            note = f" {t('probe_mark')}:" if ps.step.id == PROBE_STEP else ""
            out += [f"- {t('mark')}:{note}", f"  - {t('cli')}: `{ps.cli}`",
                    f"  - {t('url')}: `{ps.url}`", f"  - {t('command')}: `{ps.command}`"]
        else:
            out.append(f"- {t('mark')}: {t('no_mark')}")
        out.append(f"- {t('lasts')}: {duration(ps.step.min_duration_s, lang)}")
        out.append(f"- {t('exercises')}: " + "; ".join(
            item_line(i, lang, with_standard=many) for i in ps.items))
        out.append("")
    out += [f"## {t('review')}", ""]
    out += [f"- [ ] {item_line(i, lang, with_standard=many)}" for i in proc.review] or [
        f"- {t('none')}"]
    if any(i.unverified for s in proc.steps for i in s.items) or any(
            i.unverified for i in proc.review):
        out += ["", f"\\* {t('unverified')}"]
    return "\n".join(out) + "\n"


# -- live: where a capture is in the procedure ------------------------------------------

@dataclass(frozen=True)
class Status:
    """Where a session is: needed steps done, the one in progress (seconds so far and
    needed), the next to perform, and the ones passed over (a later step's mark came
    first)."""

    done: tuple[str, ...]
    current: str = ""
    current_s: float = 0.0
    next: str = ""
    skipped: tuple[str, ...] = ()


def _step_of(ev: ConsentEvent) -> str:
    """The step a mark records (``phase use`` -> use), "" for a phase no step names."""
    step = ev.name.casefold() if ev.action == "phase" else ev.action
    return step if step in BY_ID else ""


def status(steps: Sequence[Step], events: Sequence[ConsentEvent], facts: SessionFacts
           ) -> Status:
    """``steps`` (the needed ones, in STEPS order) judged on the events so far, ``facts.last``
    being now. The current step is the last one marked (or, before any grant, the traffic
    before consent) while it has not lasted long enough; the next is the first needed step
    after it (after the last one marked) not yet performed."""
    if any(e.action == "phase" and e.name.casefold() == PROBE_STEP for e in events):
        facts = replace(facts, probed_hosts=max(facts.probed_hosts, 1))  # the probe ran live
    results = {r.step: r for r in performed(events, facts)}
    ids = [s.id for s in steps]
    done = tuple(i for i in ids if results[i].performed)
    marked = [m for m in (_step_of(e) for e in sorted(events, key=lambda e: e.ts)) if m]
    latest = marked[-1] if marked else ("before-consent" if facts.first is not None else "")
    current, current_s = "", 0.0
    if latest in ids and latest not in done:
        r = results[latest]
        current, current_s = latest, (r.duration_s or 0.0) if r.at is not None else 0.0
        if latest == "before-consent" and facts.first is not None and facts.last is not None:
            current_s = facts.last - facts.first
    order = [s.id for s in STEPS]
    after = order.index(latest) if latest in order else -1
    later = [i for i in ids if order.index(i) > after and i not in done and i != current]
    skipped = tuple(i for i in ids if order.index(i) < after and i not in done
                    and i != current and i != "before-consent")
    return Status(done, current, current_s, later[0] if later else "", skipped)


def status_lines(st: Status, lang: str = "en", session: str = SESSION) -> list[str]:
    """The status as the few lines a capture logs when a mark arrives (the next mark as a
    shell command on ``session`` and as the magic-host URL)."""
    def name(i: str) -> str:
        return BY_ID[i].title.get(lang)

    zh = lang == "zh"
    lines = [("已完成：" if zh else "steps done: ")
             + (", ".join(name(i) for i in st.done) or label("none", lang))]
    if st.skipped:
        lines.append(("已跳过：" if zh else "passed over: ")
                     + ", ".join(name(i) for i in st.skipped))
    if st.current:
        need = BY_ID[st.current].min_duration_s
        got = f"{max(st.current_s, 0.0) / 60:.0f}"
        lines.append(f"进行中：{name(st.current)}，{got} / {need // 60} 分钟" if zh else
                     f"in progress: {name(st.current)}, {got} of {need // 60} min")
    if st.next:
        step = BY_ID[st.next]
        mark = PROBE_MARK if step.id == PROBE_STEP else step.mark
        send = " | ".join(mark_forms(mark, session)[:2]) if mark else label("no_mark", lang)
        lines.append((f"下一步：{name(st.next)}：{step.how.get(lang)} 标记：{send}") if zh else
                     f"next step: {name(st.next)}: {step.how.get(lang)} Mark: {send}")
    elif not st.current:
        lines.append("全部步骤已完成" if zh else "all steps performed")
    return lines


class Tracker:
    """The facts a live capture gathers for ``status``: its first message, its last, whether
    anything went out before the first grant, and every consent event so far. ``probe``:
    the capture runs the TLS probe throughout (``--tls-probe``); otherwise it runs from a
    ``phase tls-probe`` mark on."""

    def __init__(self, steps: Sequence[Step], events: Iterable[ConsentEvent] = (),
                 session: str = SESSION, *, probe: bool = False) -> None:
        self.steps = tuple(steps)
        self.session = session
        self.probe = probe
        self.events: list[ConsentEvent] = list(events)
        self.first: float | None = None
        self.last: float | None = None
        self.before_grant = False
        self._granted = any(e.action == "grant" for e in self.events)

    def saw(self, ts: float) -> None:
        """A transmission at ``ts``."""
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)
        if not self._granted:
            self.before_grant = True

    def event(self, ev: ConsentEvent) -> list[str]:
        """Record ``ev``; the lines to show now."""
        self.events.append(ev)
        self._granted = self._granted or ev.action == "grant"
        return self.lines(ev.ts)

    def lines(self, now: float, lang: str = "en") -> list[str]:
        last = max(now, self.last) if self.last is not None else now
        facts = SessionFacts(first=self.first, last=last, traffic_before_grant=self.before_grant,
                             probed_hosts=int(self.probe))
        return status_lines(status(self.steps, self.events, facts), lang, self.session)
