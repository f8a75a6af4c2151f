"""The rule catalogue as a Markdown page (``docs/rules.md``), generated so it cannot drift.

Pure: ``render`` takes the catalogue and returns the text. ``tests/test_docs.py`` compares
``docs/rules.md`` with it; after a change to a rule, regenerate the page with

    python -m auditor.rules.markdown > docs/rules.md
"""

from __future__ import annotations

from collections.abc import Iterable

from auditor import RULESET_VERSION
from auditor.categories import severity_rank
from auditor.report.i18n import RULE_TEXT
from auditor.rules.base import Rule

REGENERATE = "kidaudit rules --markdown > docs/rules.md"

# The sources the clauses cite, in the short forms the catalogue uses.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("PIPL", "Personal Information Protection Law of the PRC (个人信息保护法, 2021)"),
    ("CPI", "Provisions on the Online Protection of Children's Personal Information "
            "(儿童个人信息网络保护规定, 2019)"),
    ("MNR", "Regulations on the Online Protection of Minors (未成年人网络保护条例, 2024)"),
    ("IDM", "Methods for identifying unlawful collection and use of personal information by "
            "apps (App违法违规收集使用个人信息行为认定方法); `IDM 3.1` is section 三, item 1"),
    ("35273", "GB/T 35273-2020, personal information security specification"),
    ("41391", "GB/T 41391-2022, basic requirements for collecting personal information in "
              "mobile apps"),
    ("ETSI", "ETSI EN 303 645 V2.1.1, cyber security for consumer IoT"),
    ("18031", "EN 18031-2:2024 (RED delegated act), requirement ids"),
    ("GDPR", "Regulation (EU) 2016/679"),
    ("AADC", "UK Age Appropriate Design Code, standard number"),
    ("COPPA", "16 CFR Part 312, as amended in 2025"),
    ("FTC v. …", "US Federal Trade Commission enforcement actions"),
    ("BNetzA", "Germany's Federal Network Agency, which banned listening watches in 2017"),
)


def _clause(reference: str) -> str:
    return f"{reference[:-1]} (unverified)" if reference.endswith("*") else reference


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rules: Iterable[Rule], *, ruleset: str = RULESET_VERSION,
           text: dict[str, dict[str, tuple[str, str]]] = RULE_TEXT) -> str:
    """The page: an index table, then one section per rule, worst severity first (the order
    of ``kidaudit rules``). ``text`` gives each rule's explanation and its Chinese title."""
    ordered = sorted(rules, key=lambda r: (severity_rank(r.severity), r.id))
    out = [
        "# Rule catalogue",
        "",
        "<!-- Generated from auditor/rules by `" + REGENERATE + "`: edit the catalogue, "
        "not this page. -->",
        "",
        f"Ruleset {ruleset}: {len(ordered)} rules, the same catalogue `kidaudit rules` prints. "
        "Rule ids are stable; reports, `--fail-on` gates and labs' own tooling key on them. "
        "Each rule is data (id, severity, title, the clauses it rests on) plus one function "
        "over the session timeline, in `auditor/rules/`. A clause marked *unverified* is a "
        "clause number that could not be confirmed from the published text; the report shows "
        "it as unverified too.",
        "",
        "| id | severity | title | 中文标题 |",
        "|---|---|---|---|",
    ]
    for rule in ordered:
        zh = text.get(rule.id, {}).get("zh", ("", ""))[0]
        out.append(f"| [`{rule.id}`](#{rule.id.lower()}) | {rule.severity} | "
                   f"{_cell(rule.title)} | {_cell(zh)} |")
    for rule in ordered:
        words = text.get(rule.id, {})
        en, zh = words.get("en", ("", "")), words.get("zh", ("", ""))
        out += ["", f"## {rule.id}", "", f"- **severity:** {rule.severity}",
                f"- **title:** {rule.title}"]
        if zh[0]:
            out.append(f"- **标题:** {zh[0]}")
        if en[1]:
            out.append(f"- **fires when:** {en[1]}")
        if zh[1]:
            out.append(f"- **说明:** {zh[1]}")
        judges = "each message" if rule.scope == "message" else "the session timeline"
        out.append(f"- **judges:** {judges}")
        clauses = "; ".join(_clause(r) for r in rule.references)
        out.append(f"- **clauses:** {clauses or 'none (informational)'}")
        if rule.unverified:
            out.append("- **unverified:** " + "; ".join(r.rstrip("*") for r in rule.unverified))
    out += ["", "## Abbreviations", "", "| short form | source |", "|---|---|"]
    out += [f"| {short} | {_cell(source)} |" for short, source in ABBREVIATIONS]
    return "\n".join(out) + "\n"
