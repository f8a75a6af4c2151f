"""Reads the standards catalogues shipped in ``catalogues/*.yaml``.

``parse`` is pure (a YAML document in, a ``Standard`` out, ``ValueError`` naming the file and
the place on a mistake); ``load_all`` reads the package's files once. Every rule an item names
must exist in the rule catalogue and every step in ``steps.STEPS``, so a catalogue cannot
cite evidence the tool never produces.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from auditor.rules.catalogue import CATALOGUE
from auditor.standards.model import (
    DOCUMENT,
    NUMBER_NOT_CONFIRMED,
    TRAFFIC,
    UNVERIFIED,
    VERIFIED,
    Item,
    Standard,
    Text,
)
from auditor.standards.steps import STEP_IDS

_STATUSES = (VERIFIED, UNVERIFIED, NUMBER_NOT_CONFIRMED)
_RULE_IDS = frozenset(r.id for r in CATALOGUE)


def _text(value: Any, where: str) -> Text:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) and value.get(k)
                                              for k in ("en", "zh")):
        raise ValueError(f"{where}: needs en and zh text")
    return Text(value["en"], value["zh"])


def _names(value: Any, where: str, known: frozenset[str] | tuple[str, ...], what: str
           ) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: a list of {what} ids")
    bad = [v for v in value if v not in known]
    if bad:
        raise ValueError(f"{where}: unknown {what} {bad[0]!r}")
    return tuple(value)


def _item(raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: an item is a mapping")
    clause = raw.get("clause")
    if not isinstance(clause, str) or not clause:
        raise ValueError(f"{where}: clause missing")
    where = f"{where} (clause {clause})"
    evidence = raw.get("evidence", TRAFFIC)
    if evidence not in (TRAFFIC, DOCUMENT):
        raise ValueError(f"{where}: evidence is {TRAFFIC} or {DOCUMENT}")
    status = raw.get("clause_status", VERIFIED)
    if status not in (VERIFIED, UNVERIFIED):
        raise ValueError(f"{where}: clause_status is {VERIFIED!r} or {UNVERIFIED!r}")
    rules = _names(raw.get("rules"), f"{where}: rules", _RULE_IDS, "rule")
    if evidence == TRAFFIC and not rules:
        raise ValueError(f"{where}: a traffic item names the rules that evidence it")
    note = raw.get("note")
    return Item(clause=clause, title=_text(raw.get("title"), f"{where}: title"),
                summary=_text(raw.get("summary"), f"{where}: summary"), rules=rules,
                steps=_names(raw.get("steps"), f"{where}: steps", STEP_IDS, "step"),
                evidence=evidence, clause_status=status,
                note=_text(note, f"{where}: note") if note is not None else None)


def parse(doc: Any, name: str) -> Standard:
    """One catalogue file's YAML document -> ``Standard``; ``ValueError`` names ``name``."""
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: a catalogue is a mapping")
    for key in ("id", "number", "source"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ValueError(f"{name}: {key} missing")
    status = doc.get("status")
    if status not in _STATUSES:
        raise ValueError(f"{name}: status is one of {', '.join(_STATUSES)}")
    items = doc.get("items") or []
    if not isinstance(items, list):
        raise ValueError(f"{name}: items is a list")
    parsed = tuple(_item(raw, f"{name}: items[{i}]") for i, raw in enumerate(items))
    clauses = [i.clause for i in parsed]
    dup = next((c for c in clauses if clauses.count(c) > 1), None)
    if dup:
        raise ValueError(f"{name}: clause {dup} listed twice")
    if status == NUMBER_NOT_CONFIRMED and parsed:
        raise ValueError(f"{name}: a standard whose number is not confirmed lists no items")
    default_for = doc.get("default_for") or []
    if not isinstance(default_for, list) or not all(isinstance(j, str) for j in default_for):
        raise ValueError(f"{name}: default_for is a list of jurisdictions")
    return Standard(id=doc["id"], number=doc["number"], title=_text(doc.get("title"),
                    f"{name}: title"), status=status, source=doc["source"], items=parsed,
                    default_for=tuple(j.upper() for j in default_for))


@cache
def load_all() -> tuple[Standard, ...]:
    """Every catalogue shipped with kidaudit, in id order."""
    out = []
    for entry in sorted(resources.files("auditor.standards").joinpath("catalogues").iterdir(),
                        key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            out.append(parse(yaml.safe_load(entry.read_text(encoding="utf-8")),
                             f"catalogues/{entry.name}"))
    ids = [s.id for s in out]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise ValueError(f"catalogues: standard {dup} defined twice")
    return tuple(out)


def by_id(standard_id: str) -> Standard:
    """The catalogue ``standard_id``; ``KeyError`` with the known ids when there is none."""
    for s in load_all():
        if s.id == standard_id:
            return s
    raise KeyError(f"unknown standard {standard_id!r}: use one of "
                   f"{', '.join(s.id for s in load_all())}")


def defaults_for(jurisdiction: str | None) -> tuple[Standard, ...]:
    """The standards a profile's jurisdiction picks when no ``--standard`` is given."""
    if not jurisdiction:
        return ()
    j = jurisdiction.upper()
    return tuple(s for s in load_all() if j in s.default_for)
