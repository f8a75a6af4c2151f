"""The session store: durable at once, readable from another connection, private."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.model import ConsentEvent, Detection, Observation, Recipient, Transmission
from auditor.store import Store


def _obs(tx_id: int) -> Observation:
    tx = Transmission(id=tx_id, ts=100.0 + tx_id, transport="https", host="a.example",
                      port=443, method="POST", url="https://a.example/x")
    det = Detection(tx_id, "identifier.imei", "known", "body", "body.json.imei", ("base64",),
                    "identifiers.imei", "864536040123455", 0.99)
    return Observation(tx, Recipient("a.example", party="first"), (det,))


def test_observation_is_visible_to_another_connection_before_close(tmp_path: Path) -> None:
    writer = Store(tmp_path / "s")
    writer.add_observation(_obs(1))
    reader = Store.open_existing(tmp_path / "s")
    (obs,) = reader.observations()
    assert obs == Observation(_obs(1).transmission, _obs(1).recipient, _obs(1).detections)
    assert writer.next_id() == 2
    assert writer.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.close()
    writer.close()


def test_a_session_read_back_shares_what_repeats_from_row_to_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    sent = [_obs(i) for i in (1, 2, 3)]
    sent.append(Observation(replace(sent[0].transmission, id=4, ts=200.0, tls_versions=(
        "TLSv1.0",)), Recipient("b.example"), (), ("body: opaque",), ("firmware",)))
    for obs in sent:
        store.add_observation(obs)
    back = store.observations()
    assert back == sent
    a, b, c, other = back
    assert a.recipient is b.recipient is c.recipient and a.recipient is not other.recipient
    assert a.transmission.host is b.transmission.host
    assert a.detections[0].encoding is b.detections[0].encoding
    store.close()


def test_events_round_trip_and_poll_since(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    first = store.add_event(ConsentEvent(1.0, "grant", ("all-disclosed",), (), ("location",)))
    store.add_event(ConsentEvent(2.0, "phase", name="idle", source="cli"))
    assert [ev.action for _, ev in store.events()] == ["grant", "phase"]
    ((_, polled),) = store.events(since=first)
    assert polled == ConsentEvent(2.0, "phase", name="idle", source="cli")
    store.close()


def test_session_files_are_private(tmp_path: Path) -> None:
    Store(tmp_path / "s").close()
    assert os.stat(tmp_path / "s").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "s" / Store.FILE).st_mode & 0o777 == 0o600


def test_open_existing_refuses_a_folder_without_a_session(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a kidaudit session"):
        Store.open_existing(tmp_path)


def test_a_batch_is_committed_whole_when_it_ends(tmp_path: Path) -> None:
    writer = Store(tmp_path / "s")
    reader = Store.open_existing(tmp_path / "s")
    with writer.batch():
        writer.add_observation(_obs(1))
        writer.add_error(1, "analyze", "x")
        assert reader.observations() == []  # not yet: one transaction for the batch
    assert [o.transmission.id for o in reader.observations()] == [1]
    assert len(reader.errors()) == 1
    writer.add_observation(_obs(2))  # outside a batch: committed at once again
    assert [o.transmission.id for o in reader.observations()] == [1, 2]
    reader.close()
    writer.close()
