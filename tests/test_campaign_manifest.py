"""The campaign manifest: what a run is made of, and every mistake as one line before anything
runs (exit 2 through the command)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.campaign.manifest import ManifestError, load_manifest, parse, slug
from auditor.campaign.model import RunSpec
from auditor.cli import app
from tests.factories import EPOCH, IMEI, PLAN_YAML, WATCH_PROFILE_YAML, http_flow, write_flows

runner = CliRunner()


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A lab folder: a profile, a plan, two captures, a pcap's first bytes and a session
    folder (only its store's file: the manifest checks what a folder is, not its contents)."""
    k2 = tmp_path / "k2"
    k2.mkdir()
    (k2 / "profile.yaml").write_text(WATCH_PROFILE_YAML)
    (k2 / "consent.yaml").write_text(PLAN_YAML)
    (k2 / "bad-profile.yaml").write_text('identifiers: {imei: "12345"}\n')
    for name in ("142.mitm", "150.mitm"):
        write_flows(k2 / name, [http_flow("https://api.acme-watch.example/r", EPOCH,
                                          {"imei": IMEI})])
    (k2 / "notes.txt").write_text("not a capture")
    (k2 / "fake.pcap").write_bytes(b"GIF89a")
    (k2 / "session").mkdir()
    (k2 / "session" / "session.sqlite").write_bytes(b"")
    (k2 / "session" / "profile.yaml").write_text(WATCH_PROFILE_YAML)
    (k2 / "plain-folder").mkdir()
    return tmp_path


GOOD = """title: "Acme K2, round 3"
defaults: {profile: k2/profile.yaml, consent: k2/consent.yaml}
runs:
  - {device: "Acme K2", firmware: "1.4.2", app: "3.2.0", scenario: idle,
     inputs: [k2/142.mitm], id: k2-142-idle}
  - {device: "Acme K2", firmware: "1.50", scenario: idle, inputs: [k2/150.mitm]}
  - {device: "Acme K2", firmware: "1.6.0", scenario: use, inputs: [k2/session]}
"""


def _write(lab: Path, text: str) -> Path:
    path = lab / "m.yaml"
    path.write_text(text)
    return path


def test_a_good_manifest_resolves_paths_and_fills_defaults(lab: Path) -> None:
    m = load_manifest(_write(lab, GOOD))
    assert m.title == "Acme K2, round 3" and m.source == str(lab / "m.yaml")
    first, second, session = m.runs
    assert first == RunSpec(id="k2-142-idle", device="Acme K2", firmware="1.4.2",
                            app_version="3.2.0", scenario="idle",
                            inputs=(str(lab / "k2/142.mitm"),),
                            profile=str(lab / "k2/profile.yaml"),
                            consent=str(lab / "k2/consent.yaml"))
    assert second.id == "acme-k2-1.50-idle" and second.firmware == "1.50"  # text, not 1.5
    # a session folder keeps its own profile (and has no plan here): defaults do not apply
    assert session.profile == str(lab / "k2/session/profile.yaml") and session.consent == ""


@pytest.mark.parametrize(("parts", "expected"), [
    (("Acme K2", "1.4.2", "idle"), "acme-k2-1.4.2-idle"),
    (("手表", "1.0", ""), "1.0"),
    (("", "", ""), "run"),
    (("A/B", "v2 beta", "before consent"), "a-b-v2-beta-before-consent"),
])
def test_slug(parts: tuple[str, str, str], expected: str) -> None:
    assert slug(*parts) == expected


RUN = "{device: K2, firmware: '1.0', inputs: [k2/142.mitm]}"
ERRORS = [
    ("[1, 2]", "m.yaml: is not a campaign manifest (a mapping with runs: [...])"),
    ("runs: []", "m.yaml: runs: is missing or empty (a list of runs)"),
    (f"runs: [{RUN}]\nowner: me",
     "m.yaml: owner: unknown key; expected one of title, defaults, runs"),
    (f"defaults: {{profile: k2/profile.yaml, inputs: [a]}}\nruns: [{RUN}]",
     "m.yaml: defaults.inputs: unknown key; expected one of device, firmware, app, "
     "scenario, profile, consent"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', "
     "inputs: [k2/142.mitm], colour: red}]",
     "m.yaml: runs[0].colour: unknown key; expected one of id, device, firmware, app, "
     "scenario, inputs, profile, consent"),
    ("runs: [{firmware: '1', inputs: [k2/142.mitm], profile: k2/profile.yaml}]",
     "m.yaml: runs[0]: missing device"),
    ("runs: [{device: K2, inputs: [k2/142.mitm], profile: k2/profile.yaml}]",
     "m.yaml: runs[0]: missing firmware"),
    ("runs: [{device: K2, firmware: '1', profile: k2/profile.yaml}]",
     "m.yaml: runs[0]: missing inputs"),
    (f"runs: [{RUN}]", "m.yaml: runs[0]: missing profile (here or in defaults)"),
    (f"defaults: {{profile: k2/profile.yaml}}\nruns: [{RUN}, {RUN}]",
     "m.yaml: runs[1].id: 'k2-1.0' is also runs[0]'s id; give one of them another id"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', id: ../x, "
     "inputs: [k2/142.mitm]}]",
     "m.yaml: runs[0].id: '../x' is not a usable id (letters, digits, '.', '_' and '-', "
     "starting with a letter or digit)"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', "
     "inputs: [k2/nope.pcap]}]",
     "m.yaml: runs[0].inputs: {lab}/k2/nope.pcap: no such file or folder"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', "
     "inputs: [k2/notes.txt]}]",
     "m.yaml: runs[0].inputs: {lab}/k2/notes.txt: unknown capture type '.txt'; expected one "
     "of .mitm, .flows, .dump, .pcap, .pcapng, .cap, .har"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', "
     "inputs: [k2/fake.pcap]}]",
     "m.yaml: runs[0].inputs: {lab}/k2/fake.pcap: not a pcap or pcapng capture (starts "
     "with 47494638)"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', "
     "inputs: [k2/plain-folder]}]",
     "m.yaml: runs[0].inputs: {lab}/k2/plain-folder: is a folder but not a kidaudit session "
     "(no session.sqlite); give the capture files in it"),
    ("defaults: {profile: k2/profile.yaml}\nruns: [{device: K2, firmware: '1', "
     "inputs: [k2/session, k2/142.mitm]}]",
     "m.yaml: runs[0].inputs: a session folder is a run's only input; give it a run of "
     "its own"),
    ("runs: [{device: K2, firmware: '1', inputs: [k2/session], profile: k2/profile.yaml}]",
     "m.yaml: runs[0].profile: a session folder is judged with the profile and plan kept "
     "in it; remove this key"),
    ("runs: [{device: K2, firmware: '1', inputs: [k2/142.mitm], "
     "profile: k2/bad-profile.yaml}]",
     "m.yaml: runs[0].profile: {lab}/k2/bad-profile.yaml, line 1: identifiers.imei "
     "\"12345\" is not 15 digits"),
    ("runs: [{device: K2, firmware: '1', inputs: [k2/142.mitm], profile: k2/none.yaml}]",
     "m.yaml: runs[0].profile: {lab}/k2/none.yaml: "),
    ("runs: [{device: [K2], firmware: '1', inputs: [k2/142.mitm]}]",
     "m.yaml: runs[0].device: is not text"),
    ("runs:\n  - {device: K2\n", "m.yaml, line 3: not YAML ("),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_each_mistake_is_one_line_naming_the_place(lab: Path, text: str, expected: str
                                                   ) -> None:
    path = _write(lab, text)
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{lab}/" + expected.format(lab=lab)), message


@pytest.mark.parametrize(("text", "expected"), ERRORS[:4] + ERRORS[9:12])
def test_the_command_prints_the_line_and_exits_2(lab: Path, text: str, expected: str
                                                 ) -> None:
    out = lab / "out"
    result = runner.invoke(app, ["campaign", str(_write(lab, text)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"kidaudit: {lab}/{expected.format(lab=lab)}" in result.output
    assert not out.exists()  # nothing ran, nothing was written


@pytest.mark.parametrize(("content", "expected"), [
    ({"notes.txt": "mine"}, "already holds other files (not a kidaudit campaign"),
    ({"campaign.json": '{"schema": "kidaudit.findings/1"}'}, "already holds other files"),
])
def test_an_out_folder_that_is_not_a_campaign_is_refused(lab: Path, content: dict[str, str],
                                                         expected: str) -> None:
    out = lab / "out"
    out.mkdir()
    for name, text in content.items():
        (out / name).write_text(text)
    result = runner.invoke(app, ["campaign", str(_write(lab, GOOD)), "--out", str(out)])
    assert result.exit_code == 2
    assert f"kidaudit: {out}: {expected}" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(content)  # left as it was


def test_parse_is_pure_with_a_resolver() -> None:
    doc = {"runs": [{"device": "W", "firmware": "2", "inputs": "a.har", "profile": "p.yaml"}]}
    m = parse(doc, "mem.yaml", lambda p: "/lab/" + p)
    assert m.runs == (RunSpec(id="w-2", device="W", firmware="2", inputs=("/lab/a.har",),
                              profile="/lab/p.yaml"),)


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:8786", "tcp://host", "http://h:1"])
def test_a_scheduler_that_is_no_address_is_refused_before_anything_starts(
        lab: Path, address: str) -> None:
    result = runner.invoke(app, ["campaign", str(_write(lab, GOOD)), "--out",
                                 str(lab / "out"), "--scheduler", address])
    assert result.exit_code == 2
    assert (f"kidaudit: --scheduler {address!r}: expected a Dask scheduler address such as "
            "tcp://HOST:8786") in result.output
    assert not (lab / "out").exists()
