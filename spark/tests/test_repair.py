"""Job mode `repair` against real stores (local Delta table, local Cassandra): removing an entity's days
equals a full recompute from the raw rows without them, in both stores; removing every row of an entity
removes its online row; a repeated repair changes nothing; a repair that dies after its Delta commit is
finished, online deletes included, by the next run."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pytest
from conftest import VIEW_FILE
from jobs import job_args, run_job
from test_pipeline import (
    RUN_COLUMNS,
    assert_same,
    generate,
    latest_offline_as_online,
    normalise_online,
    offline_rows,
    online_rows,
    write_timestamps,
)

from feature_store import job, online_store
from tools import synthetic


def repair_args(tmp_path, keyspace, entities=(), days=None, offline=None, run_id=None):
    run_id = run_id or f"r-{uuid.uuid4().hex[:8]}"
    argv = ["--view", "energy", "--mode", "repair", "--feature-view", VIEW_FILE]
    argv += ["--offline-uri", str(offline or tmp_path / "offline")]
    argv += ["--summary-uri", str(tmp_path / "runs" / f"{run_id}.json"), "--run-id", run_id, "--keyspace", keyspace]
    for entity in entities:
        argv += ["--repair-entity", entity]
    if days is not None:
        argv += ["--repair-from", days[0].isoformat(), "--repair-to", days[1].isoformat()]
    return argv


def started_before(frame: pd.DataFrame, day: dt.date) -> list[str]:
    """Households with rows before `day` (synthetic households start on different days)."""
    return sorted(frame.loc[frame["day"] < day.isoformat(), "household_id"].unique())


def online_row_of(session, keyspace, view, entity):
    return session.execute(f"SELECT * FROM {keyspace}.{view.online_table} WHERE entity_id = %s", [entity]).one()


def publish_log(tmp_path, offline="offline"):
    with open(tmp_path / offline / "_publish" / "energy.json", encoding="utf-8") as handle:
        return json.load(handle)


def test_repairing_days_of_an_entity_equals_a_full_recompute_without_them_and_a_repeat_changes_nothing(
    spark, view, cassandra_session, keyspace, make_keyspace, tmp_path
):
    path, frame = generate(tmp_path, "raw.csv", dt.date(2012, 1, 1), dt.date(2012, 12, 31))
    code, summary = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 0, summary
    before = offline_rows(spark, tmp_path / "offline" / "energy")

    first, last = dt.date(2012, 3, 1), dt.date(2012, 3, 31)
    day = pd.to_datetime(frame["day"]).dt.date
    victim = started_before(frame, first)[0]
    wrong = (frame["household_id"] == victim) & (day >= first) & (day <= last)
    assert wrong.sum() > 20
    code, repaired = run_job(spark, repair_args(tmp_path, keyspace, [victim], (first, last)))
    assert code == 0, repaired
    assert repaired["status"] == "succeeded"
    assert repaired["repair"] == {"entities": [victim], "from": "2012-03-01", "to": "2012-03-31"}
    assert repaired["offline"]["rows_deleted"] == wrong.sum()
    assert repaired["offline"]["rows_updated"] > 0
    assert repaired["online"]["rows_upserted"] == 1
    assert repaired["online"]["entities_deleted"] == 0

    # The reference: a full run from the raw rows without the wrong ones, into its own stores.
    reference_path = tmp_path / "reference.csv"
    synthetic.write_csv(frame[~wrong], str(reference_path))
    full_offline, full_keyspace = tmp_path / "full", make_keyspace()
    code, summary = run_job(spark, job_args(tmp_path, [reference_path], offline=full_offline, keyspace=full_keyspace))
    assert code == 0, summary
    after = offline_rows(spark, tmp_path / "offline" / "energy")
    full = offline_rows(spark, full_offline / "energy")
    assert_same(after.drop(columns=RUN_COLUMNS), full.drop(columns=RUN_COLUMNS))
    online = normalise_online(online_rows(cassandra_session, keyspace, view))
    assert_same(online, normalise_online(latest_offline_as_online(after, view)))
    full_online = normalise_online(online_rows(cassandra_session, full_keyspace, view))
    assert_same(online.drop(columns=["updated_at"]), full_online.drop(columns=["updated_at"]))

    # Only the victim's rows whose windows held a deleted day were touched; every other row is as it was,
    # updated_at and run_id included.
    reached = (after["household_id"] == victim) & (after["day"] >= first) & (after["day"] < dt.date(2013, 3, 1))
    changed = after[after["run_id"] == repaired["run_id"]]
    assert len(changed) == repaired["offline"]["rows_updated"]
    assert set(changed["household_id"]) == {victim}
    assert changed["day"].min() > last
    untouched = before[~((before["household_id"] == victim) & (before["day"] >= first))]
    assert_same(after[~reached].reset_index(drop=True), untouched.reset_index(drop=True))

    # The same repair again: nothing to delete, no Delta commit, nothing written online.
    stamps = sorted(write_timestamps(cassandra_session, keyspace, view))
    code, again = run_job(spark, repair_args(tmp_path, keyspace, [victim], (first, last)))
    assert code == 0, again
    assert again["offline"]["rows_deleted"] == 0
    assert again["offline"]["rows_updated"] == 0
    assert again["offline"]["delta_version"] == repaired["offline"]["delta_version"]
    assert again["online"]["rows_upserted"] == 0
    assert again["online"]["entities_deleted"] == 0
    assert_same(offline_rows(spark, tmp_path / "offline" / "energy"), after)
    assert_same(normalise_online(online_rows(cassandra_session, keyspace, view)), online)
    assert sorted(write_timestamps(cassandra_session, keyspace, view)) == stamps


def test_repairing_every_row_of_an_entity_removes_it_from_both_stores_until_new_rows_arrive(
    spark, view, cassandra_session, keyspace, tmp_path
):
    path, frame = generate(tmp_path, "raw.csv", dt.date(2012, 1, 1), dt.date(2012, 6, 30))
    code, summary = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 0, summary
    before = offline_rows(spark, tmp_path / "offline" / "energy")
    online_before = normalise_online(online_rows(cassandra_session, keyspace, view))
    victim = sorted(frame["household_id"].unique())[0]
    assert online_row_of(cassandra_session, keyspace, view, victim) is not None

    code, repaired = run_job(spark, repair_args(tmp_path, keyspace, [victim]))
    assert code == 0, repaired
    assert repaired["offline"]["rows_deleted"] == (frame["household_id"] == victim).sum()
    assert repaired["offline"]["rows_updated"] == 0  # nothing of the entity is left to recompute
    assert repaired["online"]["rows_upserted"] == 0
    assert repaired["online"]["entities_deleted"] == 1
    assert online_row_of(cassandra_session, keyspace, view, victim) is None
    after = offline_rows(spark, tmp_path / "offline" / "energy")
    assert victim not in set(after["household_id"])
    assert_same(after, before[before["household_id"] != victim].reset_index(drop=True))
    online = normalise_online(online_rows(cassandra_session, keyspace, view))
    assert_same(online, online_before[online_before["entity_id"] != victim].reset_index(drop=True))
    assert publish_log(tmp_path)["repaired_entities"] == []

    # The delete carries the publish's timestamp: a later run's rows for the entity are served again.
    latest, _ = generate(tmp_path, "latest.csv", dt.date(2012, 7, 1), dt.date(2012, 7, 1), seed=5)
    code, summary = run_job(spark, job_args(tmp_path, [latest], mode="incremental", keyspace=keyspace))
    assert code == 0, summary
    back = online_row_of(cassandra_session, keyspace, view, victim)
    assert back is not None
    assert str(back.feature_date) == "2012-07-01"
    assert_same(
        normalise_online(online_rows(cassandra_session, keyspace, view)),
        normalise_online(latest_offline_as_online(offline_rows(spark, tmp_path / "offline" / "energy"), view)),
    )


def test_a_repair_killed_after_its_delta_commit_is_finished_by_the_next_run_deletes_included(
    spark, view, cassandra_session, keyspace, tmp_path, monkeypatch
):
    frame = synthetic.generate_frame(
        households=6, start=dt.date(2012, 1, 1), end=dt.date(2012, 6, 30), seed=21, missing_share=0.05
    )
    first, last = dt.date(2012, 3, 1), dt.date(2012, 3, 31)
    gone, trimmed = started_before(frame, first)[:2]
    # `gone` has rows in March only, so the repair leaves it none; `trimmed` keeps its other months.
    day = pd.to_datetime(frame["day"]).dt.date
    frame = frame[(frame["household_id"] != gone) | ((day >= first) & (day <= last))]
    path = tmp_path / "raw.csv"
    synthetic.write_csv(frame, str(path))
    code, summary = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 0, summary

    def killed(*_args, **_kwargs):
        raise RuntimeError("executor lost (simulated kill during the online write)")

    real_write = online_store.write_online
    monkeypatch.setattr(online_store, "write_online", killed)
    argv = repair_args(tmp_path, keyspace, [gone, trimmed], (first, last))
    code, failed = run_job(spark, argv)
    assert code == 1
    committed = failed["offline"]["delta_version"]
    assert failed["online"] == {"status": "pending", "delta_version": committed}
    assert "publishes it before anything else" in failed["stores"]
    assert online_row_of(cassandra_session, keyspace, view, gone) is not None  # the stores are apart
    assert publish_log(tmp_path)["repaired_entities"] == sorted([gone, trimmed])

    # The retry finishes the publish first: the trimmed entity's latest row and the other's delete.
    monkeypatch.setattr(online_store, "write_online", real_write)
    code, retried = run_job(spark, argv)
    assert code == 0, retried
    recovered = retried["recovered_publish"]
    assert recovered["delta_version"] == committed
    assert recovered["entities_deleted"] == 1
    assert recovered["rows_upserted"] >= 1
    assert retried["offline"]["rows_deleted"] == 0
    assert retried["offline"]["delta_version"] == committed
    assert online_row_of(cassandra_session, keyspace, view, gone) is None
    offline = offline_rows(spark, tmp_path / "offline" / "energy")
    assert gone not in set(offline["household_id"])
    assert_same(
        normalise_online(online_rows(cassandra_session, keyspace, view)),
        normalise_online(latest_offline_as_online(offline, view)),
    )
    assert publish_log(tmp_path)["repaired_entities"] == []


def test_a_repair_naming_an_id_the_view_cannot_store_is_refused(spark, keyspace, tmp_path):
    code, summary = run_job(spark, repair_args(tmp_path, keyspace, ["MAC 01; DROP"]))
    assert code == 3
    assert "does not match the view's id pattern" in summary["error"]
    assert summary["repair"]["entities"] == ["MAC 01; DROP"]


BASE = ["--view", "energy", "--feature-view", "v.yml", "--offline-uri", "o", "--summary-uri", "s", "--run-id", "r"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "repair"], "needs --repair-entity and/or --repair-from"),
        (["--mode", "repair", "--repair-entity", "A", "--input", "x.csv"], "reads no input"),
        (["--mode", "repair", "--repair-entity", "A", "--rejects-uri", "x"], "rejects no rows"),
        (["--mode", "repair", "--repair-from", "2012-01-01"], "go together"),
        (["--mode", "repair", "--repair-from", "2012-02-01", "--repair-to", "2012-01-01"], "is after"),
        (["--mode", "repair", "--repair-from", "2012-02-30", "--repair-to", "2012-03-01"], "yyyy-MM-dd"),
        (["--mode", "repair", "--repair-from", "20120201", "--repair-to", "2012-03-01"], "yyyy-MM-dd"),
        (["--mode", "repair", "--repair-entity", ""], "must not be empty"),
        (["--mode", "full", "--rejects-uri", "x"], "--input is required with --mode full"),
        (["--mode", "incremental", "--input", "x.csv"], "--rejects-uri is required"),
        (["--mode", "full", "--input", "x.csv", "--rejects-uri", "x", "--repair-entity", "A"], "only go with"),
    ],
)
def test_repair_arguments_are_checked_with_clear_errors(extra, message, capsys):
    with pytest.raises(SystemExit) as exited:
        job.parse_args([*BASE, *extra])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_repair_arguments_select_entities_and_days():
    entities = ["--repair-entity", "A", "--repair-entity", "B", "--repair-entity", "A"]
    days = ["--repair-from", "2012-01-01", "--repair-to", "2012-01-31"]
    args = job.parse_args([*BASE, "--mode", "repair", *entities, *days])
    assert args.inputs == ()
    assert args.rejects_uri is None
    assert args.repair.describe() == {"entities": ["A", "B"], "from": "2012-01-01", "to": "2012-01-31"}
    only_days = job.parse_args([*BASE, "--mode", "repair", "--repair-from", "2012-01-01", "--repair-to", "2012-01-01"])
    assert only_days.repair.entities == ()
    assert only_days.repair.date_from == only_days.repair.date_to
