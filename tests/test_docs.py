"""Docs that cannot drift (datasette's test_docs.py): every command, rule and addon option
is in the README, the README shows the two commands, docs/rules.md is generated from the
catalogue, and every relative link in the docs leads to a file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.cli import app
from auditor.rules import CATALOGUE
from auditor.rules.markdown import REGENERATE, render

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ADDON = (ROOT / "auditor" / "live" / "addon.py").read_text()  # where the options are declared


@pytest.mark.parametrize("command", [c.name or c.callback.__name__
                                     for c in app.registered_commands])
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"kidaudit {command}" in README


@pytest.mark.parametrize("rule_id", [r.id for r in CATALOGUE])
def test_every_rule_is_documented(rule_id: str) -> None:
    assert f"`{rule_id}`" in README


OPTIONS = re.findall(r'add_option\(\s*"(\w+)"', ADDON)


def test_the_addon_options_are_found() -> None:
    """An empty list would skip the test below instead of failing it (the options moved)."""
    assert OPTIONS


@pytest.mark.parametrize("option", OPTIONS)
def test_every_addon_option_is_documented(option: str) -> None:
    assert f"`{option}`" in README


def test_readme_shows_the_two_commands_and_a_real_screenshot() -> None:
    assert "make demo" in README and "make test" in README
    shot = ROOT / "docs" / "demo-report.png"
    assert "(docs/demo-report.png)" in README
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ROOT / "lab-setup.md").is_file()


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_rules_md_is_generated_from_the_catalogue() -> None:
    from typer.testing import CliRunner

    page = ROOT / "docs" / "rules.md"
    written = page.read_text(encoding="utf-8") if page.is_file() else ""
    assert written == render(CATALOGUE), \
        f"docs/rules.md is not what the rule catalogue generates; run: {REGENERATE}"
    printed = CliRunner().invoke(app, ["rules", "--markdown"])
    assert printed.exit_code == 0 and printed.stdout == written


DOCS = sorted([ROOT / "README.md", ROOT / "lab-setup.md", *(ROOT / "docs").glob("*.md")])
_FENCED = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
                   r"|^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)", re.M)


def _links(text: str) -> list[str]:
    """Targets of inline links, images and reference definitions, outside code."""
    text = _CODE.sub("", _FENCED.sub("", text))
    return [a or b for a, b in _LINK.findall(text)]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", _FENCED.sub("", text), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


RELATIVE = [pytest.param(doc, target, id=f"{doc.relative_to(ROOT)}->{target}")
            for doc in DOCS for target in _links(doc.read_text(encoding="utf-8"))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_the_docs_have_relative_links() -> None:
    assert {doc.name for doc in DOCS} >= {"README.md", "lab-setup.md", "design.md",
                                          "findings-schema.md", "rules.md"}
    assert len(RELATIVE) >= 5  # README's own links at least: a broken _LINK finds none


@pytest.mark.parametrize(("doc", "target"), RELATIVE)
def test_every_relative_link_leads_to_a_file_of_the_repository(doc: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc
    assert dest.is_relative_to(ROOT) and dest.exists(), \
        f"{doc.relative_to(ROOT)}: {target} leads to no file of the repository"
    if anchor and dest.suffix == ".md":
        assert anchor in _anchors(dest.read_text(encoding="utf-8")), \
            f"{doc.relative_to(ROOT)}: {target}: no heading #{anchor} in {dest.name}"
