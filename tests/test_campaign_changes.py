"""What each firmware introduced or fixed, and the two CI gates over a campaign (pure)."""

from __future__ import annotations

import pytest

from auditor.campaign.changes import changes
from auditor.campaign.gate import crossed, introduced, line
from auditor.campaign.model import Campaign, FindingRow, RunResult, RunSpec


def f(rule: str, recipient: str, severity: str = "high", *cats: str) -> FindingRow:
    return FindingRow(id=f"{rule}-{recipient}", rule=rule, severity=severity, title=rule,
                      recipient=recipient, categories=cats, count=1, first_seen="")


def run(firmware: str, *found: FindingRow, device: str = "K2", scenario: str = "idle",
        status: str = "done") -> RunResult:
    spec = RunSpec(id=f"{device}-{firmware}-{scenario}", device=device, firmware=firmware,
                   scenario=scenario)
    return RunResult(spec=spec, status=status, findings=found)


LEAK, TRACKER, CLEAR = f("A", "ads.example"), f("B", "t.example"), f("C", "maker", "critical")


@pytest.mark.parametrize(("runs", "expected"), [
    # (before, after, introduced, fixed) per change
    ([run("1", LEAK), run("2", TRACKER)], [("1", "2", ["B"], ["A"])]),
    # the manifest's order, not the version strings' (1.10 after 1.9)
    ([run("1.9", LEAK), run("1.10", LEAK, CLEAR)], [("1.9", "1.10", ["C"], [])]),
    # categories changed: the same finding (rule, recipient), neither new nor fixed
    ([run("1", f("A", "ads.example", "high", "x")),
      run("2", f("A", "ads.example", "high", "y"))], [("1", "2", [], [])]),
    # a failed firmware is skipped: 3 is compared with 1
    ([run("1", LEAK), run("2", status="failed"), run("3", TRACKER)], [("1", "3", ["B"], ["A"])]),
    # scenarios are compared apart, in one firmware order per device: where each first
    # appears in the manifest, whichever scenario it appears in (here 2 before 1)
    ([run("2", LEAK, scenario="use"), run("1", scenario="idle"), run("1", scenario="use"),
      run("2", LEAK, scenario="idle")],
     [("2", "1", [], ["A"]), ("2", "1", [], ["A"])]),
    # two app versions of one firmware count together
    ([run("1", LEAK), run("1", CLEAR, scenario="idle"), run("2", CLEAR)],
     [("1", "2", [], ["A"])]),
    ([run("1", LEAK, device="K2"), run("1", LEAK, device="K3")], []),
])
def test_changes(runs: list[RunResult], expected: list) -> None:
    got = [(c.before, c.after, [x.rule for x in c.introduced], [x.rule for x in c.fixed])
           for c in changes(runs)]
    assert got == expected


def test_the_gates() -> None:
    runs = (run("1", LEAK), run("2", LEAK, CLEAR), run("3", CLEAR, status="failed"))
    campaign = Campaign(title="", runs=runs, changes=changes(runs))
    assert [(where, x.rule) for where, x in crossed(campaign, "critical")] == [("K2-2-idle", "C")]
    assert [x.rule for _, x in crossed(campaign, "high")] == ["C", "A", "A"]
    assert introduced(campaign, "critical") == [("K2 idle: 1 -> 2", CLEAR)]
    assert introduced(campaign, "high") == [("K2 idle: 1 -> 2", CLEAR)]
    assert line("K2-2-idle:", CLEAR) == "  K2-2-idle: [CRITICAL] C -> maker"
