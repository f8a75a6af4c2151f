"""Docs that cannot drift (datasette's test_docs.py): every command, rule and addon option
is in the README, and the README shows the two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.cli import app
from auditor.rules import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ADDON = (ROOT / "addons" / "kidaudit.py").read_text()


@pytest.mark.parametrize("command", [c.name or c.callback.__name__
                                     for c in app.registered_commands])
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"kidaudit {command}" in README


@pytest.mark.parametrize("rule_id", [r.id for r in CATALOGUE])
def test_every_rule_is_documented(rule_id: str) -> None:
    assert f"`{rule_id}`" in README


@pytest.mark.parametrize("option", re.findall(r'add_option\(\s*"(\w+)"', ADDON))
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
