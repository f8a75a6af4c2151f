"""The session store: durable at once, readable from another connection, private."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.model import ConsentEvent, Detection, Observation, Recipient, Transmission
from auditor.store import Store, StoreError, row_of
from tests.factories import IMEI


def _obs(tx_id: int) -> Observation:
    tx = Transmission(id=tx_id, ts=100.0 + tx_id, transport="https", host="a.example",
                      port=443, method="POST", url="https://a.example/x")
    det = Detection(tx_id, "identifier.imei", "known", "body", "body.json.imei", ("base64",),
                    "identifiers.imei", IMEI, 0.99)
    return Observation(tx, Recipient("a.example", party="first"), (det,))


def test_observation_is_visible_to_another_connection_before_close(session_dir: Path) -> None:
    writer = Store(session_dir)
    writer.add_observation(_obs(1))
    reader = Store.open_existing(session_dir)
    (obs,) = reader.observations()
    assert obs == Observation(_obs(1).transmission, _obs(1).recipient, _obs(1).detections)
    assert writer.next_id() == 2
    assert writer.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.close()
    writer.close()


def test_a_session_read_back_shares_what_repeats_from_row_to_row(session_dir: Path) -> None:
    store = Store(session_dir)
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


@pytest.mark.parametrize("text", ["host.example", "北京.example", "ho\udcffst.example"])
def test_a_row_made_elsewhere_is_stored_as_its_observation_would_be(
        tmp_path: Path, text: str) -> None:
    """``analyze --jobs``: a worker makes the row of an observation numbered 0, the parent
    inserts it under its number; the store holds what ``add_observation`` of the numbered
    observation writes, the detections under that number too."""
    obs = _obs(0)
    tx = replace(obs.transmission, host=text, sni=text, tls_versions=(text,))
    dets = (obs.detections[0], replace(obs.detections[0], value=text, encoding=()))
    made = Observation(tx, obs.recipient, dets, (text,), ("firmware",))
    numbered = Observation(replace(tx, id=7), made.recipient,
                           tuple(replace(d, transmission=7) for d in dets), made.opaque,
                           made.tags)
    by_row, whole = Store(tmp_path / "row"), Store(tmp_path / "whole")
    by_row.add_row(7, row_of(made))
    whole.add_observation(numbered)
    for table in ("transmissions", "detections"):
        query = f"SELECT * FROM {table} ORDER BY rowid"
        assert by_row.db.execute(query).fetchall() == whole.db.execute(query).fetchall()
    assert by_row.observations() == whole.observations()
    by_row.close()
    whole.close()


def test_events_round_trip_and_poll_since(session_dir: Path) -> None:
    store = Store(session_dir)
    first = store.add_event(ConsentEvent(1.0, "grant", ("all-disclosed",), (), ("location",)))
    store.add_event(ConsentEvent(2.0, "phase", name="idle", source="cli"))
    assert [ev.action for _, ev in store.events()] == ["grant", "phase"]
    ((_, polled),) = store.events(since=first)
    assert polled == ConsentEvent(2.0, "phase", name="idle", source="cli")
    store.close()


def test_session_files_are_private(session_dir: Path) -> None:
    Store(session_dir).close()
    assert os.stat(session_dir).st_mode & 0o777 == 0o700
    assert os.stat(session_dir / Store.FILE).st_mode & 0o777 == 0o600


def test_open_existing_refuses_a_folder_without_a_session(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a kidaudit session"):
        Store.open_existing(tmp_path)


def test_a_batch_is_committed_whole_when_it_ends(session_dir: Path) -> None:
    writer = Store(session_dir)
    reader = Store.open_existing(session_dir)
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


# -- hostile input (issue 13): every byte kept, folders private, damaged stores refused ----

@pytest.mark.parametrize("text, stored", [
    ("host.example", "host.example"),                    # ok: ASCII as it is
    ("北京.example", "北京.example"),                      # ok: valid Unicode as it is
    ("ho\udcffst.example", "ho\\xffst.example"),          # hit: a byte surrogateescape kept
    ("/p\udcc3\udca9?imei=1", "/p\\xc3\\xa9?imei=1"),      # hit: two such bytes
    ("lone \ud800 high", "lone \\ud800 high"),            # hit: another lone surrogate
])
def test_text_that_is_not_unicode_is_stored_with_visible_escapes(
        session_dir: Path, text: str, stored: str) -> None:
    store = Store(session_dir)
    obs = _obs(1)
    tx = replace(obs.transmission, host=text, url="http://" + text, sni=text)
    det = replace(obs.detections[0], value=text, field="query." + text)
    store.add_observation(Observation(tx, obs.recipient, (det,), (text,), (text,)))
    store.add_error(1, "analyze", text)
    store.add_uninspected(text, text)
    (back,) = store.observations()
    assert (back.transmission.host, back.transmission.url, back.transmission.sni) == (
        stored, "http://" + stored, stored)
    assert (back.detections[0].value, back.detections[0].field) == (stored, "query." + stored)
    assert back.opaque == back.tags == (stored,)
    assert store.errors()[0]["message"] == stored
    assert store.uninspected() == [{"host": stored, "reason": stored}]
    store.close()


@pytest.mark.parametrize("depth", [1, 3])
def test_every_folder_made_on_the_way_is_private(tmp_path: Path, depth: int) -> None:
    parent = tmp_path / "existing"
    parent.mkdir(mode=0o755)
    os.chmod(parent, 0o755)
    made = [parent.joinpath(*(f"d{i}" for i in range(n + 1))) for n in range(depth)]
    Store(made[-1]).close()
    assert [os.stat(d).st_mode & 0o777 for d in made] == [0o700] * depth
    assert os.stat(parent).st_mode & 0o777 == 0o755  # existed before: left alone


@pytest.mark.parametrize("target_files", [[], ["notes.txt"]])
def test_a_symlinked_folder_is_refused_and_its_target_left_alone(
        tmp_path: Path, target_files: list[str]) -> None:
    target = tmp_path / "home"
    target.mkdir()
    os.chmod(target, 0o755)
    for name in target_files:
        (target / name).write_text("mine")
    link = tmp_path / "out"
    link.symlink_to(target)
    with pytest.raises(NotADirectoryError) as err:
        Store(link)
    assert err.value.filename == str(link) and "symbolic link" in err.value.strerror
    assert os.stat(target).st_mode & 0o777 == 0o755
    assert sorted(p.name for p in target.iterdir()) == target_files


def test_an_existing_session_reached_through_a_link_is_opened_as_it_is(
        tmp_path: Path, session_dir: Path) -> None:
    Store(session_dir).close()
    (tmp_path / "link").symlink_to(session_dir)
    store = Store.open_existing(tmp_path / "link")
    assert store.observations() == []
    store.close()


def _damaged_files(good: bytes) -> dict[str, bytes]:
    return {"not a database": b"hello world" * 10, "cut in half": good[: len(good) // 2],
            "header only": good[:100]}


@pytest.mark.parametrize("case", ["not a database", "cut in half", "header only",
                                  "another program's tables"])
def test_a_damaged_store_is_refused_in_one_line(tmp_path: Path, case: str) -> None:
    good = Store(tmp_path / "good")
    for i in range(1, 200):
        good.add_observation(_obs(i))
    good.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    good.close()
    folder = tmp_path / "bad"
    folder.mkdir()
    if case == "another program's tables":
        import sqlite3

        db = sqlite3.connect(folder / Store.FILE)
        db.execute("CREATE TABLE transmissions (a)")
        db.commit()
        db.close()
    else:
        (folder / Store.FILE).write_bytes(_damaged_files(
            (tmp_path / "good" / Store.FILE).read_bytes())[case])
    with pytest.raises(StoreError) as err:
        Store.open_existing(folder).observations()
    assert str(folder / Store.FILE) in str(err.value) and "\n" not in str(err.value)


def test_a_good_store_passes_the_layout_check(session_dir: Path) -> None:
    Store(session_dir).close()
    store = Store.open_existing(session_dir)
    store.check_layout()
    assert store.meta() == {}
    store.close()


def _small(tx_id: int, ts: float) -> Observation:
    """A soak's check-in: the position changes in every message."""
    tx = Transmission(id=tx_id, ts=ts, transport="https", host="api.acme-watch.example",
                      port=443, method="POST", url=f"https://api.acme-watch.example/up?s={tx_id}")
    dets = (Detection(tx_id, "identifier.imei", "known", "body", "body.json.imei", (),
                      "identifiers.imei", IMEI, 0.99),
            Detection(tx_id, "location.precise", "pattern", "body", "body.json.lat", ("json",),
                      "", f"39.{tx_id:05d},116.30791", 0.9))
    return Observation(tx, Recipient("acme-watch.example", "Acme", "first", "CN"),
                       dets if tx_id % 7 else (), ("body: opaque",) if tx_id % 100 == 0 else ())


@pytest.mark.parametrize("n", [0, 1, 499, 500, 501, 1_234])
def test_iter_observations_reads_every_message_in_timeline_order_batch_by_batch(
        session_dir: Path, n: int) -> None:
    store = Store(session_dir)
    # ids in arrival order, times out of order and tied: the timeline is (ts, id)
    sent = [_small(i, float(1000 + (i * 37) % 101)) for i in range(1, n + 1)]
    with store.batch():
        for obs in sent:
            store.add_observation(obs)
    back = list(store.iter_observations())
    assert back == sorted(sent, key=lambda o: (o.transmission.ts, o.transmission.id))
    assert store.observations() == back
    if n:
        assert store.observation(n) == sent[-1]
    assert store.observation(n + 1) is None
    store.close()


def test_an_older_store_gets_the_timeline_index_when_opened(session_dir: Path) -> None:
    Store(session_dir).close()
    import sqlite3

    db = sqlite3.connect(session_dir / Store.FILE)
    db.execute("DROP INDEX transmissions_time")
    db.commit()
    db.close()
    store = Store.open_existing(session_dir)
    names = {n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "transmissions_time" in names
    store.close()


@pytest.mark.parametrize("probe", ["", "untrusted-ca", "wrong-host", "expired", "tls1.0"])
def test_the_tls_probe_case_of_a_transmission_round_trips(session_dir: Path, probe: str) -> None:
    store = Store(session_dir)
    sent = Observation(replace(_obs(1).transmission, probe=probe), _obs(1).recipient,
                       _obs(1).detections)
    store.add_observation(sent)
    assert store.observations() == [sent] and store.observation(1) == sent
    store.close()


def test_an_older_store_without_the_probe_column_opens_and_reads_as_ordinary_traffic(
        session_dir: Path) -> None:
    import sqlite3

    store = Store(session_dir)
    store.add_observation(_obs(1))
    store.close()
    db = sqlite3.connect(session_dir / Store.FILE)
    db.execute("ALTER TABLE transmissions DROP COLUMN probe")  # the store before issue 17
    db.commit()
    db.close()
    store = Store.open_existing(session_dir)
    assert store.observations() == [_obs(1)]
    assert store.observations()[0].transmission.probe == ""
    store.add_observation(Observation(replace(_obs(2).transmission, probe="expired"),
                                      _obs(2).recipient))
    assert [o.transmission.probe for o in store.observations()] == ["", "expired"]
    store.close()
