"""What each firmware introduced or fixed against the previous one of the same device and
scenario (pure: results in, ``Change`` rows out).

Findings are matched on ``(rule, recipient organisation)``, as ``kidaudit diff`` matches them
(``auditor.diff``): a finding whose categories changed is the same problem, not a fix and a
new one. Firmware order is the order in which a device's firmwares first appear in the
manifest: version strings do not sort (``1.10`` after ``1.9``, ``2.0-beta``), and the lab
that wrote the manifest knows the order it shipped them in. Several runs of one firmware and
scenario (two app versions, say) count together; a failed run is never compared (a firmware
whose every run failed is skipped, so the next one is compared with the last that ran).
"""

from __future__ import annotations

from collections.abc import Iterable

from auditor.campaign.model import Change, FindingRow, RunResult
from auditor.categories import severity_rank

Key = tuple[str, str]


def key(f: FindingRow) -> Key:
    return (f.rule, f.recipient)


def ordered(findings: Iterable[FindingRow]) -> tuple[FindingRow, ...]:
    """Worst first, then by rule and recipient: the order every campaign list is read in."""
    return tuple(sorted(findings, key=lambda f: (severity_rank(f.severity), f.rule,
                                                 f.recipient)))


def changes(runs: Iterable[RunResult]) -> tuple[Change, ...]:
    """One Change per consecutive pair of firmwares of a device and scenario, in manifest
    order of the (device, scenario) groups."""
    firmwares: dict[str, list[str]] = {}  # device -> its firmwares in first-seen order
    found: dict[tuple[str, str], dict[str, dict[Key, FindingRow]]] = {}
    for run in runs:
        s = run.spec
        order = firmwares.setdefault(s.device, [])
        if s.firmware not in order:
            order.append(s.firmware)
        if run.status == "failed":
            continue
        per_firmware = found.setdefault((s.device, s.scenario), {})
        kept = per_firmware.setdefault(s.firmware, {})
        for f in run.findings:
            kept.setdefault(key(f), f)
    out: list[Change] = []
    for (device, scenario), per_firmware in found.items():
        ran = [fw for fw in firmwares[device] if fw in per_firmware]
        for before, after in zip(ran, ran[1:], strict=False):
            old, new = per_firmware[before], per_firmware[after]
            out.append(Change(device=device, scenario=scenario, before=before, after=after,
                              introduced=ordered(new[k] for k in new.keys() - old.keys()),
                              fixed=ordered(old[k] for k in old.keys() - new.keys())))
    return tuple(out)
