"""Score the detector on the labelled suite: TP / FP / FN per category and per encoding.

A case is one message (``url`` gives host and port; for ``transport`` tcp/udp/websocket the
body is the raw payload) with the detections it must produce, each a (category, field) pair;
``field`` may be a glob (``query.d.*imei``) where the decoder's path naming is not the
point of the case. Anything else detected is a false positive; on a negative case (no
expected detections) any detection at all is one. Each expected detection carries the
encoding label the case exercises (its layers, or the container format such as msgpack),
which is what the per-encoding rows count. The suite carries its own profile.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from auditor.data import load_sdks
from auditor.model import (
    Cell,
    Contact,
    Credential,
    Detection,
    Device,
    Location,
    Profile,
    Transmission,
)
from auditor.pipeline import Pipeline

SUITE = "suite.json"
# The method's acceptance targets (issue #3): on the shipped suite, over all categories.
TARGET_PRECISION = 0.98
TARGET_RECALL = 0.95
SCHEMA = "kidaudit.validation-suite/1"
PLAIN = "plain"  # the encoding label of a value sent as is
RAW_TRANSPORTS = frozenset({"tcp", "udp", "websocket"})  # the body goes in as the payload


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass(frozen=True)
class Miss:
    """One disagreement with the labels, for the lab's records and for debugging."""

    case: str
    kind: str  # FP | FN
    category: str
    field: str
    encoding: str


@dataclass
class ValidationReport:
    suite: str
    positives: int = 0  # cases with expected detections
    negatives: int = 0  # cases that must produce none
    total: Counts = field(default_factory=Counts)
    by_category: dict[str, Counts] = field(default_factory=dict)
    by_encoding: dict[str, Counts] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)
    negatives_hit: list[str] = field(default_factory=list)  # negative case ids that detected

    @property
    def targets_met(self) -> bool:
        return (self.total.precision >= TARGET_PRECISION and self.total.recall >= TARGET_RECALL
                and not self.negatives_hit)

    def add(self, kind: str, category: str, encoding: str) -> None:
        for counts in (self.total, self.by_category.setdefault(category, Counts()),
                       self.by_encoding.setdefault(encoding, Counts())):
            setattr(counts, kind, getattr(counts, kind) + 1)


def load_suite(name: str = SUITE) -> dict[str, Any]:
    """The suite shipped in this package (``auditor/validate/suite.json``)."""
    text = resources.files("auditor.validate").joinpath(name).read_text("utf-8")
    suite = json.loads(text)
    if suite.get("schema") != SCHEMA:
        raise ValueError(f"{name}: schema is {suite.get('schema')!r}, expected {SCHEMA!r}")
    return suite


def suite_profile(data: dict[str, Any]) -> Profile:
    """The suite's profile section (the DESIGN.md profile layout, every value a string)."""
    loc = data.get("location")
    location = None
    if loc:
        location = Location(
            lat=float(loc["lat"]), lon=float(loc["lon"]),
            cell=tuple(Cell(int(c["mcc"]), int(c["mnc"]), int(c["lac"]), int(c["cid"]))
                       for c in loc.get("cell", ())),
            wifi=tuple(loc.get("wifi", ())))
    return Profile(
        device=Device(**data.get("device", {})),
        identifiers={k: tuple(v) if isinstance(v, list) else (v,)
                     for k, v in data.get("identifiers", {}).items()},
        child={k: tuple(v) if isinstance(v, list) else (v,)
               for k, v in data.get("child", {}).items()},
        location=location,
        contacts=tuple(Contact(**c) for c in data.get("contacts", ())),
        credentials=tuple(Credential(**c) for c in data.get("credentials", ())),
        first_party=tuple(data.get("first_party", ())),
        jurisdiction=data.get("jurisdiction", ""),
        source="validation-suite",
    )


def transmission(case: dict[str, Any], tx_id: int) -> Transmission:
    url = case["url"]
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if "body_b64" in case:
        body = base64.b64decode(case["body_b64"])
    else:
        body = case.get("body", "").encode("utf-8")
    headers = tuple((k, v) for k, v in case.get("headers", ()))
    ctype = case.get("content_type", "")
    if ctype:
        headers += (("Content-Type", ctype),)
    transport = case.get("transport", parts.scheme or "https")
    port = parts.port or (80 if parts.scheme == "http" else 443)
    if transport in RAW_TRANSPORTS:  # one client message of a TCP/UDP/WebSocket connection
        return Transmission(id=tx_id, ts=0.0, transport=transport, host=parts.hostname or "",
                            port=port, payload=body, size=len(body))
    return Transmission(id=tx_id, ts=0.0, transport=transport, host=parts.hostname or "",
                        port=port, method=case.get("method", "POST" if body else "GET"),
                        url=url, path=path, headers=headers, body=body, content_type=ctype,
                        size=len(body))


def _label(d: Detection) -> str:
    return "+".join(d.encoding) or PLAIN


def _matches(expected: dict[str, str], d: Detection) -> bool:
    return expected["category"] == d.category and fnmatchcase(d.field, expected["field"])


def score_case(case: dict[str, Any], detections: list[Detection], report: ValidationReport
               ) -> None:
    """Count one case: every expected (category, field) found once, nothing else found."""
    expected = case.get("expect", [])
    if expected:
        report.positives += 1
    else:
        report.negatives += 1
        if detections:
            report.negatives_hit.append(case["id"])
    seen = {(d.category, d.field): d for d in detections}  # one fact per (category, field)
    matched: set[tuple[str, str]] = set()
    for e in expected:
        label = e.get("encoding", PLAIN)
        hits = [k for k, d in seen.items() if _matches(e, d)]
        if hits:
            matched.update(hits)
            report.add("tp", e["category"], label)
        else:
            report.add("fn", e["category"], label)
            report.misses.append(Miss(case["id"], "FN", e["category"], e["field"], label))
    for key, d in seen.items():
        if key not in matched:
            report.add("fp", d.category, _label(d))
            report.misses.append(Miss(case["id"], "FP", d.category, d.field, _label(d)))


def run_suite(suite: dict[str, Any] | None = None) -> ValidationReport:
    """Every case through the real pipeline (extract, decode, detect) with the suite's profile."""
    suite = load_suite() if suite is None else suite
    pipeline = Pipeline.for_profile(suite_profile(suite["profile"]), load_sdks())
    report = ValidationReport(suite=suite.get("name", SUITE))
    for i, case in enumerate(suite["cases"], 1):
        observation = pipeline.observe(transmission(case, i))
        score_case(case, list(observation.detections), report)
    return report


def _rows(title: str, table: dict[str, Counts]) -> list[str]:
    lines = [f"{title:<28} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>10} {'recall':>8}"]
    for name in sorted(table):
        c = table[name]
        lines.append(f"{name:<28} {c.tp:>5} {c.fp:>5} {c.fn:>5} {c.precision:>10.3f} "
                     f"{c.recall:>8.3f}")
    return lines


def format_report(report: ValidationReport, version: str) -> str:
    """The plain-text table a lab files with its method records."""
    t = report.total
    lines = [
        f"kidaudit {version} - method validation on {report.suite}",
        f"cases: {report.positives + report.negatives} ({report.positives} positive, "
        f"{report.negatives} negative); labelled detections: {t.tp + t.fn}",
        "",
        *_rows("category", report.by_category),
        "",
        *_rows("encoding", report.by_encoding),
        "",
        *_rows("total", {"all": t}),
        "",
        f"negative cases with any detection: {len(report.negatives_hit)}"
        + (f" ({', '.join(report.negatives_hit)})" if report.negatives_hit else ""),
        f"targets (precision >= {TARGET_PRECISION}, recall >= {TARGET_RECALL}, no detection "
        f"on negative cases): {'met' if report.targets_met else 'NOT MET'}",
    ]
    if report.misses:
        lines += ["", "disagreements with the labels:"]
        lines += [f"  {m.kind} {m.case}: {m.category} at {m.field} ({m.encoding})"
                  for m in report.misses]
    return "\n".join(lines) + "\n"
