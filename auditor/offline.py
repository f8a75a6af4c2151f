"""``kidaudit analyze``: rebuild a session from saved captures, through the same Session
the live addon uses."""

from __future__ import annotations

import shutil
from pathlib import Path

from mitmproxy import http, io

from auditor.profile import ConsentPlan, Profile
from auditor.session import FLOWS_FILE, Outputs, Session
from auditor.sources.mitm import InputError, Signals, is_mark, mark_event, read_flows, transmission
from auditor.store import Store

SUPPORTED = (".mitm", ".flows", ".dump")
PLANNED = {".pcap": "pcap input", ".pcapng": "pcapng input", ".har": "HAR input"}


def check_inputs(inputs: list[Path]) -> None:
    for path in inputs:
        suffix = path.suffix.lower()
        if suffix in PLANNED:
            raise InputError(f"{path}: {PLANNED[suffix]} is not supported by this version yet; "
                             "save the session with mitmproxy (.mitm) instead")
        if not path.is_file():
            raise InputError(f"{path}: no such file")


def analyze(inputs: list[Path], profile: Profile, plan: ConsentPlan | None, out: Path, *,
            lang: str = "en", reveal: bool = False) -> Outputs:
    check_inputs(inputs)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(Store.FILE + "*"):
        stale.unlink()  # a re-analysis starts from the evidence, not from the last run
    notes: list[str] = []
    flows = [f for path in inputs for f in read_flows(path, notes)]
    # Live, transmissions are numbered as requests arrive; a flow file is in response order.
    flows.sort(key=lambda f: f.request.timestamp_start if isinstance(f, http.HTTPFlow)
               else (f.timestamp_created or 0.0))
    session = Session(out, profile, plan, inputs=tuple(p.name for p in inputs))
    _keep_evidence(inputs, flows, out / FLOWS_FILE)
    signals = Signals(plan)
    for flow in flows:
        if not isinstance(flow, http.HTTPFlow):
            session.store.add_uninspected(_flow_host(flow), f"{flow.type} flow: not analysed "
                                          "by this version")
            continue
        if is_mark(flow):
            try:
                session.record_event(mark_event(flow))
            except ValueError as e:
                session.record_error(None, "mark", e)
            continue
        for ev in signals.events(flow):
            session.record_event(ev)
        tx_id = session.next_id()
        try:
            session.observe(transmission(flow, tx_id))
        except Exception as e:  # noqa: BLE001 - one bad message must not end the analysis
            session.record_error(tx_id, "analyze", e)
    for note in notes:
        session.store.add_error(None, "input", note)
    result = session.write_outputs(lang=lang, reveal=reveal)
    session.close()
    result.notes = notes
    return result


def _flow_host(flow: object) -> str:
    server = getattr(flow, "server_conn", None)
    address = getattr(server, "address", None)
    return f"{address[0]}:{address[1]}" if address else "?"


def _keep_evidence(inputs: list[Path], flows: list, target: Path) -> None:
    """The output folder holds the raw evidence it was built from, as ``flows.mitm``."""
    if len(inputs) == 1 and inputs[0].resolve() == target.resolve():
        return
    if len(inputs) == 1:
        shutil.copyfile(inputs[0], target)
        return
    with open(target, "wb") as fh:
        writer = io.FlowWriter(fh)
        for flow in flows:
            writer.add(flow)
