"""The addon in mitmproxy's own test harness (taddons.context), flows from tflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy.exceptions import OptionsError
from mitmproxy.http import Headers
from mitmproxy.test import taddons, tflow

from auditor.sources.mitm import load_addon_class
from auditor.store import Store

IMEI = "864536040123455"
PROFILE = f'identifiers: {{imei: "{IMEI}"}}\nfirst_party: [acme-watch.example]\n'


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE)
    return path


def _flow(body: bytes = b"", path: str = "/", host: str = "api.acme-watch.example"):
    f = tflow.tflow(resp=True)
    f.request.host, f.request.path = host, path
    f.request.scheme, f.request.port = "https", 443
    f.request.headers = Headers(host=host, content_type="application/json")
    f.request.content = body
    return f


def _configured(tctx, addon, profile: Path, session: Path) -> None:
    tctx.configure(addon, kidaudit_profile=str(profile), kidaudit_session=str(session))


def test_flow_with_personal_data_is_marked_commented_and_committed(tmp_path, profile):
    addon = load_addon_class()()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = _flow(json.dumps({"imei": IMEI}).encode())
        addon.request(flow)
        plain = _flow(b'{"hello": "world"}')
        addon.request(plain)
        # Committed at once: another connection sees it before shutdown.
        other = Store.open_existing(tmp_path / "s")
        assert [len(o.detections) for o in other.observations()] == [1, 0]
        other.close()
        addon.done()
    assert flow.marked and flow.comment == "kidaudit: identifier.imei"
    assert not plain.marked and plain.comment == ""
    assert (tmp_path / "s" / "findings.json").is_file()


@pytest.mark.parametrize(("options", "message"), [
    ({"kidaudit_profile": "missing.yaml", "kidaudit_session": "S"}, "missing.yaml"),
    ({"kidaudit_profile": "P"}, "needs both"),
    ({"kidaudit_lang": "fr"}, "kidaudit_lang"),
])
def test_bad_options_are_one_clear_error(tmp_path, profile, options, message):
    addon = load_addon_class()()
    options = {k: (str(profile) if v == "P" else str(tmp_path / v) if v == "S" else v)
               for k, v in options.items()}
    with taddons.context(addon) as tctx, pytest.raises(OptionsError, match=message):
        tctx.configure(addon, **options)


def test_analysis_error_is_counted_and_the_flow_passes_unchanged(tmp_path, profile, caplog):
    addon = load_addon_class()()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")

        def broken(tx):
            raise RuntimeError("decoder exploded")

        addon.session.pipeline.observe = broken  # a fault inside the core
        flow = _flow(json.dumps({"imei": IMEI}).encode())
        before = flow.get_state()
        addon.request(flow)
        addon.request(_flow(b"{}"))
        assert flow.get_state() == before
        logged = [r for r in caplog.records if "analysis error" in r.getMessage()]
        assert len(logged) == 1 and logged[0].levelname == "ERROR"  # logged once, counted twice
        addon.done()
    doc = json.loads((tmp_path / "s" / "findings.json").read_text())
    assert doc["coverage"]["analysis_errors"] == 2
    assert "decoder exploded" in doc["coverage"]["errors"][0]["message"]


def test_magic_host_is_answered_and_never_forwarded(tmp_path, profile):
    addon = load_addon_class()()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        flow = tflow.tflow()
        flow.request.host, flow.request.scheme, flow.request.port = "kidaudit.mark", "http", 80
        flow.request.path = "/grant?categories=all-disclosed&separate=location.precise"
        addon.request(flow)
        assert flow.response is not None and flow.response.status_code == 200
        bad = tflow.tflow()
        bad.request.host, bad.request.path = "kidaudit.mark", "/grnt?categories=x"
        addon.request(bad)
        assert bad.response.status_code == 400
        events = [ev for _, ev in addon.session.store.events()]
        addon.done()
    assert [(e.action, e.categories, e.separate) for e in events] == [
        ("grant", ("all-disclosed",), ("location.precise",))]


def test_mark_command_and_polled_cli_marks_reach_the_ledger(tmp_path, profile):
    addon = load_addon_class()()
    with taddons.context(addon) as tctx:
        _configured(tctx, addon, profile, tmp_path / "s")
        tctx.command(addon.mark, "phase", "idle")
        with pytest.raises(OptionsError, match="unknown mark action"):
            addon.mark("grnt", "location")
        other = Store.open_existing(tmp_path / "s")
        from auditor.marks import parse_words
        other.add_event(parse_words("grant", ["identifier"], 1.0, "cli"))
        other.close()
        addon.request(_flow(b"{}"))  # each request polls the store for new marks
        actions = [(e.action, e.source) for e in addon.session.ledger.events]
        addon.done()
    assert actions == [("grant", "cli"), ("phase", "command")]
