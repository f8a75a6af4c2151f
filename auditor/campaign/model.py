"""auditor/campaign/model.py: what a campaign is made of, as plain frozen dataclasses (pure:
no files, no dask), shared by the manifest loader, the runner, the dataset writer and the
campaign report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSpec:                     # one row of the manifest, paths already resolved
    id: str                        # unique; default "<device>-<firmware>-<scenario>" slug
    device: str
    firmware: str
    app_version: str = ""
    scenario: str = ""
    inputs: tuple[str, ...] = ()   # capture files (.mitm .har .pcap .pcapng) or ONE session folder
    profile: str = ""              # path
    consent: str = ""              # path, optional


@dataclass(frozen=True)
class Manifest:
    title: str
    source: str                    # the manifest file's path
    runs: tuple[RunSpec, ...]


@dataclass(frozen=True)
class FindingRow:                  # one finding of one run (from its findings.json, masked)
    id: str                        # the finding id (rule + organisation based)
    rule: str
    severity: str                  # critical|high|medium|low|info
    title: str
    recipient: str                 # organisation (masked)
    categories: tuple[str, ...]
    count: int
    first_seen: str                # ISO 8601 UTC


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    status: str                    # "done" | "failed" | "unchanged" (inputs' hashes unchanged)
    error: str = ""                # one line, when failed
    verdict: str = ""              # fail|pass|inconclusive ("" when failed)
    verdict_reason: str = ""
    rules: tuple[tuple[str, str], ...] = ()   # (rule id, fail|pass|not exercised)
    findings: tuple[FindingRow, ...] = ()
    recipients: tuple[tuple[str, str, str], ...] = ()  # (organisation-or-domain, party, country)
    categories: tuple[str, ...] = ()          # every category detected in device-sent messages
    transmissions: int = 0
    folder: str = ""               # the run's session folder under OUT/runs/<id>
    inputs_sha256: str = ""        # of inputs + profile + consent + tool version + ruleset


@dataclass(frozen=True)
class Change:                      # what a firmware introduced or fixed vs the previous one
    device: str
    scenario: str
    before: str                    # previous firmware
    after: str                     # this firmware
    introduced: tuple[FindingRow, ...]
    fixed: tuple[FindingRow, ...]


@dataclass(frozen=True)
class Campaign:
    title: str
    runs: tuple[RunResult, ...]    # in manifest order
    changes: tuple[Change, ...]    # per device and scenario, consecutive firmwares, manifest order
