"""The shipped standards catalogues and the loader that checks them.

A lab signs a standard's test items, so the data must hold what the issue promised (the
required clauses, the jurisdiction defaults), each item must ask for the session steps
without which its silence proves nothing, and a mistake in a catalogue must be refused with
the file and the place named.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import pytest
import yaml

from auditor.standards import catalogue
from auditor.standards.model import DOCUMENT, NUMBER_NOT_CONFIRMED, TRAFFIC, UNVERIFIED

SHIPPED = sorted(p.name for p in resources.files("auditor.standards").joinpath("catalogues")
                 .iterdir() if p.name.endswith(".yaml"))
DOCS = Path(__file__).resolve().parents[1] / "docs" / "standards.md"


def items_of_all():
    return [(s.id, i) for s in catalogue.load_all() for i in s.items]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_catalogue_loads_under_its_own_id(name):
    text = resources.files("auditor.standards").joinpath("catalogues", name).read_text("utf-8")
    standard = catalogue.parse(yaml.safe_load(text), name)
    assert standard.id == name.removesuffix(".yaml")
    assert catalogue.by_id(standard.id) == standard


def test_load_all_reads_every_file_once_in_id_order():
    ids = [s.id for s in catalogue.load_all()]
    assert ids == sorted(ids) == [n.removesuffix(".yaml") for n in SHIPPED]
    assert len(ids) >= 9


@pytest.mark.parametrize(("standard", "clause"), [
    ("gbt41391-2022", "6.1"),
    ("gbt41391-2022", "6.4"),
    ("gbt41391-2022", "6.6"),
    ("gbt41391-2022", "Annex F"),
    ("gbt35273-2020", "5.2"),
    ("gbt35273-2020", "5.4"),
    ("gbt35273-2020", "6.3"),
    ("gbt42574-2023", "5.1"),
    ("gbt42574-2023", "6.1"),
    ("gbt45574-2025", "6.6"),
    ("gbt45574-2025", "6.7"),
    ("ttaf087-2021", "(wireless communication security)"),
    ("ttaf087-2021", "(personal data protection)"),
    ("ttaf078.1", "5.1"),
    ("en18031-2-2024", "SCM-1"),
    ("en18031-2-2024", "SCM-2"),
    ("en18031-2-2024", "SCM-3"),
    ("en18031-2-2024", "SCM-4"),
    ("en18031-2-2024", "CRY-1"),
    ("etsi-en303645", "5.5-1"),
    ("etsi-en303645", "5.8-1"),
    ("etsi-en303645", "5.8-2"),
    ("etsi-en303645", "6-1"),
    ("etsi-en303645", "6-2"),
    ("etsi-en303645", "6-3"),
    ("etsi-en303645", "6-4"),
    ("etsi-en303645", "6-5"),
    ("coppa-312", "312.5(a)(1)"),
    ("coppa-312", "312.5(a)(2)"),
    ("coppa-312", "312.4"),
])
def test_each_required_clause_is_in_its_catalogue(standard, clause):
    assert clause in [i.clause for i in catalogue.by_id(standard).items]


@pytest.mark.parametrize(("jurisdiction", "expected"), [
    ("CN", ["gbt41391-2022"]),
    ("cn", ["gbt41391-2022"]),
    ("US", ["coppa-312"]),
    ("DE", ["en18031-2-2024"]),
    ("EU", ["en18031-2-2024"]),
    ("NO", ["en18031-2-2024"]),  # Norway: the YAML file quotes it so it is not read as false
    ("GB", []),
    ("", []),
    (None, []),
])
def test_defaults_for_a_jurisdiction(jurisdiction, expected):
    assert [s.id for s in catalogue.defaults_for(jurisdiction)] == expected


def test_the_cn_default_has_an_item_a_short_session_leaves_not_exercised():
    steps = {s for i in catalogue.by_id("gbt41391-2022").items for s in i.steps}
    assert {"idle", "withdraw"} <= steps


def test_en18031_carries_a_not_applicable_justification():
    notes = [i for i in catalogue.by_id("en18031-2-2024").items if i.note is not None]
    assert notes and all(i.note.en and i.note.zh for i in notes)


@pytest.mark.parametrize(("standard", "item"), items_of_all(),
                         ids=[f"{s}:{i.clause}" for s, i in items_of_all()])
def test_no_summary_is_a_copy_of_its_title(standard, item):
    assert item.summary.en.casefold() != item.title.en.casefold()
    assert item.summary.zh != item.title.zh


# A rule's silence means "pass" only when the session gave it its chance: the step each
# rule needs must be among the steps of every item that names the rule.
NEEDS = [
    ("PRE_CONSENT_PI", "before-consent"),
    ("PRE_CONSENT_SDK", "before-consent"),
    ("AFTER_REFUSAL", "refuse"),
    ("AFTER_WITHDRAWAL", "withdraw"),
    ("BACKGROUND_COLLECTION", "idle"),
    ("EXCESS_FREQUENCY", "idle"),
    ("TLS_CERT_NOT_VALIDATED", "tls-probe"),
    ("TLS_HOSTNAME_NOT_CHECKED", "tls-probe"),
    ("TLS_EXPIRED_CERT_ACCEPTED", "tls-probe"),
    ("TLS_LEGACY_ACCEPTED", "tls-probe"),
]


@pytest.mark.parametrize(("rule", "step"), NEEDS)
def test_items_naming_a_rule_ask_for_the_step_it_needs(rule, step):
    naming = [(s, i) for s, i in items_of_all() if rule in i.rules]
    assert naming, f"no item names {rule}"
    assert [f"{s}:{i.clause}" for s, i in naming if step not in i.steps] == []


@pytest.mark.parametrize(("standard", "item"), items_of_all(),
                         ids=[f"{s}:{i.clause}" for s, i in items_of_all()])
def test_traffic_items_name_rules_and_steps(standard, item):
    if item.evidence == TRAFFIC:
        assert item.rules and item.steps
    else:
        assert item.evidence == DOCUMENT and not item.steps


def test_standards_without_a_confirmed_number_are_listed_without_items():
    unconfirmed = [s for s in catalogue.load_all() if s.status == NUMBER_NOT_CONFIRMED]
    assert unconfirmed and all(not s.items and s.source for s in unconfirmed)


def test_unverified_clauses_are_marked_and_say_why_in_the_source():
    marked = {sid for sid, i in items_of_all() if i.clause_status == UNVERIFIED}
    assert marked
    for sid in marked:
        assert "not verified" in catalogue.by_id(sid).source


def test_docs_list_every_catalogue():
    text = DOCS.read_text(encoding="utf-8")
    missing = [s.id for s in catalogue.load_all() if f"`{s.id}`" not in text]
    assert missing == []


GOOD = {
    "id": "x-1",
    "number": "X 1",
    "title": {"en": "A standard", "zh": "一个标准"},
    "status": "verified",
    "source": "checked against its table of contents",
    "default_for": ["CN"],
    "items": [
        {"clause": "1.1", "title": {"en": "Consent", "zh": "同意"},
         "summary": {"en": "Nothing before consent.", "zh": "同意前不发送。"},
         "rules": ["PRE_CONSENT_PI"], "steps": ["before-consent"]},
        {"clause": "1.2", "title": {"en": "Notice", "zh": "告知"},
         "summary": {"en": "Reviewed as a document.", "zh": "按文档审查。"},
         "evidence": "document"},
    ],
}


def edited(path: tuple, value):
    doc = copy.deepcopy(GOOD)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


def test_the_good_document_parses():
    standard = catalogue.parse(GOOD, "x-1.yaml")
    assert [i.clause for i in standard.items] == ["1.1", "1.2"]
    assert standard.default_for == ("CN",)


@pytest.mark.parametrize(("doc", "place", "problem"), [
    (edited(("items", 0, "rules"), ["NO_SUCH_RULE"]), "items[0] (clause 1.1)",
     "unknown rule 'NO_SUCH_RULE'"),
    (edited(("items", 0, "steps"), ["nap"]), "items[0] (clause 1.1)", "unknown step 'nap'"),
    (edited(("items", 0, "summary"), {"en": "Only English."}), "items[0] (clause 1.1)",
     "summary: needs en and zh"),
    (edited(("items", 1, "title", "zh"), ""), "items[1] (clause 1.2)", "title: needs en and zh"),
    (edited(("title",), {"en": "No Chinese"}), "title", "needs en and zh"),
    (edited(("items", 1, "clause"), "1.1"), "clause 1.1", "listed twice"),
    (edited(("status",), "number not confirmed"), "x-1.yaml",
     "not confirmed lists no items"),
    (edited(("items", 0, "rules"), []), "items[0] (clause 1.1)",
     "a traffic item names the rules"),
    (edited(("items", 0, "evidence"), "hearsay"), "items[0] (clause 1.1)", "evidence is"),
    (edited(("items", 0, "clause_status"), "probably"), "items[0] (clause 1.1)",
     "clause_status is"),
    (edited(("items", 0, "clause"), KeyError), "items[0]", "clause missing"),
    (edited(("source",), KeyError), "x-1.yaml", "source missing"),
    (edited(("status",), "draft"), "x-1.yaml", "status is one of"),
    (edited(("default_for",), [False]), "x-1.yaml", "default_for"),  # a bare NO in YAML
])
def test_parse_rejects_a_bad_document_naming_file_and_place(doc, place, problem):
    with pytest.raises(ValueError) as caught:
        catalogue.parse(doc, "x-1.yaml")
    message = str(caught.value)
    assert message.startswith("x-1.yaml")
    assert place in message and problem in message


def test_a_bare_norway_code_in_yaml_is_refused_not_dropped():
    doc = yaml.safe_load(yaml.safe_dump(GOOD).replace("- CN", "- NO"))
    assert doc["default_for"] == [False]
    with pytest.raises(ValueError, match="default_for is a list of jurisdictions"):
        catalogue.parse(doc, "x-1.yaml")
