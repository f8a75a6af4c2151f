"""A session: the glue between an input (live addon or a saved capture), the pure pipeline,
the session store and the outputs. Used by the addon and by ``kidaudit analyze``/``report``
alike, so live and offline results come from the same code.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from auditor import RULESET_VERSION, __version__
from auditor.consent import Ledger
from auditor.data import country_source, load_sdks
from auditor.model import ConsentEvent, ConsentPlan, Finding, Observation, Profile, Transmission
from auditor.pipeline import Pipeline, without_content
from auditor.profile import load_consent_plan, load_profile
from auditor.report import detections_csv, document, findings_json
from auditor.report.document import iso as iso_utc
from auditor.report.rows import Encoder, Spool, Writer
from auditor.rules import CATALOGUE, Aggregator, RuleContext, evaluate, exercise
from auditor.standards import catalogue, conformance, steps
from auditor.standards.model import Standard
from auditor.store import Store, private_copy, private_dir

PROFILE_FILE, CONSENT_FILE, FLOWS_FILE = "profile.yaml", "consent.yaml", "flows.mitm"
FINDINGS_FILE, REPORT_FILE, CSV_FILE = "findings.json", "report.html", "detections.csv"
OUTPUTS = (FINDINGS_FILE, REPORT_FILE, CSV_FILE)
LIVE_INPUT = "live capture"  # how a capture's session names its input in ``meta.inputs``
# How ``kidaudit capture`` hands the proxy process what only it knows (the operator, the
# modes as asked): the environment mitmproxy, its addon and worker inherit. The modes are
# comma-joined; a bare ``mitmdump -s`` run records none.
UNKNOWN = "unknown"
# A file of an ``analyze`` input, by suffix, as the kind of capture it is.
INPUT_KINDS = {".har": "har", ".mitm": "mitm", ".flows": "mitm", ".dump": "mitm",
               ".pcap": "pcap", ".pcapng": "pcap", ".cap": "pcap"}


def sha256_file(path: Path) -> str:
    if not path.is_file():
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Outputs:
    directory: Path
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.directory / REPORT_FILE


class Session:
    def __init__(self, directory: Path, profile: Profile, plan: ConsentPlan | None,
                 inputs: tuple[str, ...] = (), *, alerts: bool = True) -> None:
        """``alerts``: run the rules as each message lands, for the live alerts. ``analyze``
        has no one to alert: it leaves them off, and its findings are judged once, from the
        store, when the reports are written."""
        self.directory = Path(directory)
        self.alerts = alerts
        self.store = Store(self.directory)
        self.profile, self.plan = profile, plan or ConsentPlan()
        self._keep_copy(profile.source, PROFILE_FILE)
        if plan is not None:
            self._keep_copy(plan.source, CONSENT_FILE)
        meta = self.store.meta()
        self.store.set_meta(
            id=meta.get("id") or uuid.uuid4().hex[:12], device=profile.device.name,
            firmware=profile.device.firmware, kind=profile.device.kind,
            tool_version=__version__, ruleset=RULESET_VERSION,
            inputs=",".join(inputs) or meta.get("inputs", "") or f"{LIVE_INPUT} ({FLOWS_FILE})")
        self.pipeline = Pipeline.for_profile(profile, load_sdks())
        # The timeline: the plan's events from the plan (kept as consent.yaml), and what the
        # session recorded (marks, signals, commands, the CLI's marks) from the store.
        stored = self.store.events()
        self._events_seen = max((i for i, _ in stored), default=0)
        self._own_events: set[int] = set()  # recorded here: already in the ledger
        self.ledger = timeline_ledger(plan, stored, profile)
        self.aggregator = self._live_aggregator()
        self._next_id = self.store.next_id()

    def _keep_copy(self, source: str, name: str) -> None:
        """The profile and plan used travel with the session: a report is reproducible."""
        target = self.directory / name
        if source and Path(source).resolve() != target.resolve():
            private_copy(source, target)

    # -- while traffic flows ----------------------------------------------------------------
    def next_id(self) -> int:
        tx_id, self._next_id = self._next_id, self._next_id + 1
        return tx_id

    def observe(self, tx: Transmission) -> tuple[Observation, list[Finding]]:
        """Analyse one message, commit it, and return the findings it opened (for alerts).

        A message the pipeline fails on is still committed (as opaque, so the report lists
        it) before the error goes up to the caller, which counts it."""
        try:
            obs = self.pipeline.observe(tx)
        except Exception as e:
            self.store.add_observation(self.pipeline.failed(tx, e))
            raise
        return obs, self.commit(obs)

    def commit(self, obs: Observation) -> list[Finding]:
        """Commit one analysed message and return the findings it opened, when alerts are
        on (``analyze``, without alerts, inserts its workers' rows: ``Store.add_row``)."""
        self.store.add_observation(obs)
        if not self.alerts:
            return []
        # The alerts' rules see the message without its body: memory follows the number of
        # open findings, not the size of messages.
        kept = replace(obs, transmission=without_content(obs.transmission))
        return self.aggregator.add(kept)

    def record_event(self, ev: ConsentEvent) -> None:
        self._own_events.add(self.store.add_event(ev))
        self.ledger.add(ev)

    def poll_events(self) -> list[ConsentEvent]:
        """Events another process (``kidaudit mark``) wrote into the store since last time."""
        new = [(i, ev) for i, ev in self.store.events(self._events_seen)
               if i not in self._own_events]
        for _, ev in new:
            self.ledger.add(ev)
        self._events_seen = max([self._events_seen, *self._own_events, *(i for i, _ in new)])
        self._own_events.clear()
        return [ev for _, ev in new]

    def note_resumed(self, ts: float) -> None:
        """``capture --resume``: the capture went on in this folder at ``ts`` (epoch s). The
        report lists every resumption, so a reader knows the session had a gap."""
        earlier = self.store.meta().get("resumed", "")
        self.store.set_meta(resumed=",".join(filter(None, (earlier, iso_utc(ts)))))

    def record_error(self, tx_id: int | None, stage: str, exc: BaseException) -> None:
        self.store.add_error(tx_id, stage, f"{type(exc).__name__}: {exc}")

    # -- at the end -----------------------------------------------------------------------
    def write_outputs(self, *, lang: str = "en", reveal: bool = False,
                      standards: Sequence[str | Standard] = (),
                      observations: Iterable[Observation] | None = None,
                      encoder: Encoder | None = None) -> Outputs:
        """The reports judge every transmission again from the store; the live alerts'
        timeline (every observation of the session) is let go first, so the end of a
        long session holds one copy of it, not two. The ids of ``standards`` given are
        remembered in the session's meta, for a later ``kidaudit report`` of the folder
        (once known: ``KeyError`` for an unknown one, nothing remembered or written).
        ``observations`` and ``encoder``: as ``write_outputs`` takes them."""
        self.aggregator = self._live_aggregator()
        ids = [s for s in standards if isinstance(s, str)]
        if ids:
            chosen_standards(ids, "", self.profile)
            self.store.set_meta(standards=",".join(ids))
        return write_outputs(self.directory, self.store, self.profile, self.ledger,
                             lang=lang, reveal=reveal, standards=standards,
                             observations=observations, encoder=encoder)

    def _live_aggregator(self) -> Aggregator:
        """The rules as traffic flows, for alerts: the findings written at the end are judged
        again from the store, in timeline order."""
        return Aggregator(RuleContext(self.profile, self.ledger), recall=self.store.observation)

    def close(self) -> None:
        self.store.close()


def write_outputs(directory: Path, store: Store, profile: Profile, ledger: Ledger, *,
                  lang: str = "en", reveal: bool = False, out: Path | None = None,
                  standards: Sequence[str | Standard] = (),
                  observations: Iterable[Observation] | None = None,
                  encoder: Encoder | None = None) -> Outputs:
    """findings.json, detections.csv and report.html, recomputed from the store, into the
    session folder or into ``out`` (``kidaudit report DIR --out OTHER``: another language
    beside the first, or the lab's unmasked copy, never in the folder that is sent out).
    ``standards``: the conformance tables' ids (or catalogues already read); none: those
    the session remembered, else the profile's jurisdiction's default (``KeyError`` for an
    unknown id, before anything is written). ``observations``: the store's walk
    (``iter_observations``) given by the caller, who reads it as it commits (``analyze``:
    the judging overlaps the reading); none: walked here. ``encoder``: worker processes
    that may make the rows' text in findings.json and detections.csv (``report.rows.Writer``;
    ``analyze --jobs``' pool); none: made here."""
    chosen = chosen_standards(standards, store.meta().get("standards", ""), profile)
    judged: list[dict[str, object]] = []  # rules and ledger failing: never stored
    # The profile's position is masked wherever it stands, a latitude alone included: one
    # coordinate pairs with nothing, so no detection names it.
    seeded = [("location.precise", str(v)) for v in (
        profile.location.lat, profile.location.lon)] if profile.location else []
    # One walk over the store judges the rules, gathers what their statuses ask and
    # surveys the document; each output then reads the rows again, one at a time, each
    # with the consent states it was judged under worked out as it is written.
    target = private_dir(out) if out is not None else directory
    # detections.csv and findings.json's rows are written on that walk too: they need the
    # rows alone, no finding.
    with (Spool(target) as rows, detections_csv.Table(target / CSV_FILE) as table,
          findings_json.Rows(target) as texts):
        seen = exercise.Seen()
        writer = Writer(rows, table, texts, encoder)
        survey = document.Survey(lambda o: _states(o, ledger), seeded, reveal,
                                 keep=writer.add)
        findings = _judge(store, RuleContext(profile, ledger), judged, seen, survey,
                          observations)
        seen.close(ledger.events)
        writer.close()
        table.close()
        return _write(directory, store, ledger, findings, judged, seen, survey, rows,
                      csv_errors=table.errors, json_rows=texts,
                      lang=lang, reveal=reveal, seeded=seeded, target=target,
                      standards=chosen)


def _write(directory: Path, store: Store, ledger: Ledger, findings: list[Finding],
           judged: list[dict[str, object]], seen: exercise.Seen, survey: document.Survey,
           rows: Spool, *, lang: str, reveal: bool, seeded: list[tuple[str, str]],
           target: Path, standards: tuple[Standard, ...] = (),
           csv_errors: list[document.CoverageError] | None = None,
           json_rows: findings_json.Rows | None = None) -> Outputs:
    """``csv_errors``: detections.csv was written on the rules' walk, with these errors;
    none: written here. ``json_rows``: findings.json's rows, written on that walk."""
    from auditor.report import html

    meta = store.meta()
    inputs = tuple(i for i in meta.get("inputs", "").split(",") if i)
    session = document.SessionInfo(
        id=meta.get("id", ""),
        device=document.Device(meta.get("device", ""), meta.get("kind", ""),
                               meta.get("firmware", "")),
        inputs=inputs,
        resumed=tuple(t for t in map(document.parse_time, meta.get("resumed", "").split(","))
                      if t),
        tool_version=meta.get("tool_version", __version__),
        ruleset=meta.get("ruleset", RULESET_VERSION),
        profile_sha256=sha256_file(directory / PROFILE_FILE),
        consent_sha256=sha256_file(directory / CONSENT_FILE),
        flows_sha256=sha256_file(directory / FLOWS_FILE),
        rules_applied=tuple(rule.id for rule in CATALOGUE),
        country_source=country_source(),
        **_sign_off(meta, inputs),  # type: ignore[arg-type]
    )
    coverage = {"uninspected": store.uninspected(), "errors": store.errors() + judged}
    doc = document.build(session, document.Replay(store.iter_observations), findings,
                         ledger.events, coverage, consent=lambda o: _states(o, ledger),
                         reveal=reveal, seeded=seeded, survey=survey,
                         built=document.Replay(rows.__iter__), recall=store.observation,
                         **conformed(exercised(seen, findings, ledger), seen, findings,
                                     ledger, standards))
    # A row a renderer could not write is listed under coverage errors in what is written
    # after it: the CSV's in the page and findings.json, the page's in findings.json.
    doc = doc.with_errors(detections_csv.render(doc, target / CSV_FILE)
                          if csv_errors is None else csv_errors)
    doc = doc.with_errors(html.render(doc, target / "report.html", lang=lang))
    findings_json.render(doc, target / "findings.json", written=json_rows)
    for path in [target / name for name in OUTPUTS] + [directory / FLOWS_FILE]:
        if path.exists():
            os.chmod(path, 0o600)  # the evidence copy holds personal data too
    return Outputs(target, findings)


def _judge(store: Store, ctx: RuleContext, errors: list[dict[str, object]],
           seen: exercise.Seen, survey: document.Survey,
           observations: Iterable[Observation] | None = None) -> list[Finding]:
    """The session's findings, from one walk over the store in timeline order (streamed
    into the engine, which recalls an older message from the store when a session rule
    needs it); the same walk gathers what the rules' statuses ask (``seen``) and surveys
    the document."""
    def walked() -> Iterator[Observation]:
        for o in store.iter_observations() if observations is None else observations:
            seen.add(o)
            survey.add(o)
            yield o

    return evaluate(walked(), ctx, errors=errors, ordered=True, recall=store.observation)


def exercised(observations: Iterable[Observation] | exercise.Seen, findings: list[Finding],
              ledger: Ledger) -> dict[str, list]:
    """The verdict's inputs beside the findings: each rule's status (``rules.exercise``)
    and the plan's steps this session did not cover. ``observations``: the session's
    messages, or what a walk over them gathered (``exercise.Seen``, closed)."""
    if not isinstance(observations, exercise.Seen):
        observations = exercise.Seen.of(observations, ledger.events)
    seen = observations
    rules = [document.RuleResult(s.id, s.status, s.reason) for s in exercise.statuses(
        (rule.id for rule in CATALOGUE), (f.rule for f in findings), seen)]
    plan = ledger.plan
    gaps = exercise.not_covered(
        (ev for ev in plan.events if ev.source == "plan"),
        ((sig.action, sig.name) for sig in plan.signals), ledger.events, seen.last)
    return {"rules": rules, "not_covered": gaps}


def chosen_standards(given: Sequence[str | Standard], remembered: str, profile: Profile
                     ) -> tuple[Standard, ...]:
    """The standards a report judges: those given (ids, or catalogues already read), else
    those the session remembered (comma-joined ids in its meta), else the profile's
    jurisdiction's defaults. ``KeyError`` (naming the known ids) for an unknown id."""
    wanted = list(given) or [i for i in remembered.split(",") if i]
    if not wanted:
        return catalogue.defaults_for(profile.jurisdiction)
    return tuple(s if isinstance(s, Standard) else catalogue.by_id(s) for s in wanted)


def conformed(verdict: dict[str, list], seen: exercise.Seen, findings: list[Finding],
              ledger: Ledger, standards: Sequence[Standard]) -> dict[str, object]:
    """``exercised``'s verdict inputs with the session steps (``standards.steps``, from the
    facts the rules' walk gathered) and each standard's conformance table beside them."""
    done = steps.performed(ledger.events, conformance.facts(seen, ledger.events))
    return {**verdict, "steps": done, "conformance": tuple(
        conformance.judge(s, verdict["rules"], findings, done) for s in standards)}


def clock_sync() -> str:
    """Whether the OS says this host's clock is synchronised (systemd-timesyncd or any NTP
    client timedatectl knows): ``synchronized``, ``not synchronized`` or ``unknown`` when
    nothing says. Read at the edge, once per capture: the timestamps a lab signs rest on
    it."""
    try:
        said = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=2, check=False)
        answer = said.stdout.strip().lower() if said.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        answer = ""
    if answer in ("yes", "no"):
        return "synchronized" if answer == "yes" else "not synchronized"
    return "synchronized" if Path("/run/systemd/timesync/synchronized").exists() else UNKNOWN


def versions() -> dict[str, str]:
    """The versions a report's findings come from: kidaudit's, mitmproxy's (from its
    installed metadata, so nothing of it is imported here) and Python's."""
    try:
        mitmproxy = metadata.version("mitmproxy")
    except metadata.PackageNotFoundError:
        mitmproxy = UNKNOWN
    return {"kidaudit": __version__, "mitmproxy": mitmproxy,
            "python": platform.python_version()}


def capture_facts(modes: Sequence[str], operator: str) -> dict[str, str]:
    """What a live capture records in its store's meta when it starts: the proxy's modes
    (mitmproxy's ``mode`` option, as given), the operator (``kidaudit_operator``), the
    clock's sync state and the versions running it. A report judged later, elsewhere, still
    states them."""
    facts = {"clock_sync": clock_sync(), **{f"{k}_version": v for k, v in versions().items()}}
    if modes:
        facts["capture_modes"] = ",".join(modes)
    if operator:
        facts["operator"] = operator
    return facts


def _sign_off(meta: Mapping[str, str], inputs: tuple[str, ...]) -> dict[str, object]:
    """The session's sign-off facts from its meta: a capture's as it recorded them; for
    ``analyze`` the inputs' kinds stand as its modes, and the clock is unknown (nothing
    says how the capturing host's clock stood)."""
    now = versions()
    kinds = sorted({INPUT_KINDS[Path(i).suffix.lower()] for i in inputs
                    if Path(i).suffix.lower() in INPUT_KINDS})
    modes = [m for m in meta.get("capture_modes", "").split(",") if m] or kinds
    return {"capture_modes": tuple(modes), "operator": meta.get("operator", ""),
            "clock_sync": meta.get("clock_sync", UNKNOWN),
            "versions": {k: meta.get(f"{k}_version", v) for k, v in now.items()}}


def _states(o: Observation, ledger: Ledger) -> dict[str, str]:
    tx = o.transmission
    states = {}
    for category in sorted(o.categories):
        state = ledger.state(category, o.recipient, tx.ts, tx.host)
        states[category] = state.status + (" (separate)" if state.separate else "")
    return states


def reopen(directory: Path) -> tuple[Store, Profile, Ledger]:
    """A finished session folder (from ``capture`` or ``analyze``) ready to report again."""
    directory = Path(directory)
    store = Store.open_existing(directory)
    profile = load_profile(str(directory / PROFILE_FILE), plausible=False) if (
        directory / PROFILE_FILE).is_file() else Profile()
    plan = load_consent_plan(str(directory / CONSENT_FILE)) if (
        directory / CONSENT_FILE).is_file() else None
    ledger = timeline_ledger(plan, store.events(), profile)
    return store, profile, ledger


def timeline_ledger(plan: ConsentPlan | None, stored: list[tuple[int, ConsentEvent]],
                    profile: Profile | None = None) -> Ledger:
    """The ledger of a session: the plan (its disclosures, grace window and events) and the
    events the session recorded in its store. A folder written before the plan's events
    stayed in the plan holds copies of them in its store, source ``plan``: with the plan at
    hand they are its own and are taken from it, once; without one they are all there is.
    Either way the ledger sees the plan's events first, as such a store listed them. The
    profile tells the ledger whose addresses a plan's names cover."""
    recorded = tuple(ev for _, ev in stored if plan is None or ev.source != "plan")
    return Ledger(plan, recorded, profile)
