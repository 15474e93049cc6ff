"""The whole job against real stores (local Delta table, local Cassandra): online rows equal the latest
offline rows, re-runs change nothing, an incremental run equals a full recompute, and an older file
replayed after a newer one changes nothing online."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from conftest import CASSANDRA_PORT
from jobs import job_args, run_job

from feature_store import synthetic
from feature_store.online_store import CassandraTarget, write_online
from feature_store.online_store import online_rows as online_store_rows

KEY = ["household_id", "day"]
RUN_COLUMNS = ["updated_at", "run_id"]


def offline_rows(spark, path) -> pd.DataFrame:
    frame = spark.read.format("delta").load(str(path)).drop("_feature_month").toPandas()
    return frame.sort_values(KEY, ignore_index=True)


def online_rows(session, keyspace, view) -> pd.DataFrame:
    names = [c.name for c in view.online_columns()]
    rows = session.execute(f"SELECT {', '.join(names)} FROM {keyspace}.{view.online_table}")
    frame = pd.DataFrame([list(r) for r in rows], columns=names)
    frame["feature_date"] = frame["feature_date"].map(
        lambda d: dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + d.days_from_epoch)
    )
    return frame.sort_values("entity_id", ignore_index=True)


def latest_offline_as_online(offline: pd.DataFrame, view) -> pd.DataFrame:
    latest = offline.sort_values(KEY).groupby("household_id", as_index=False).tail(1)
    frame = latest.rename(columns={"household_id": "entity_id", "day": "feature_date"})
    return frame[[c.name for c in view.online_columns()]].sort_values("entity_id", ignore_index=True)


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame):
    """Exact equality, nulls included (NaN == NaN, None == NaN)."""
    pd.testing.assert_frame_equal(
        actual.astype(object).where(actual.notna(), None).reset_index(drop=True),
        expected.astype(object).where(expected.notna(), None).reset_index(drop=True),
        check_dtype=False,
        check_exact=True,
    )


def normalise_online(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["updated_at"] = pd.to_datetime(out["updated_at"]).dt.tz_localize(None)
    return out


def generate(tmp_path, name, start, end, households=6, seed=21):
    frame = synthetic.generate_frame(
        households=households, start=start, end=end, seed=seed, missing_share=0.05, null_share=0.03
    )
    path = tmp_path / name
    synthetic.write_csv(frame, str(path))
    return path, frame


def test_full_run_then_rerun_leaves_both_stores_unchanged(spark, view, cassandra_session, keyspace, tmp_path):
    path, frame = generate(tmp_path, "raw.csv", dt.date(2012, 1, 1), dt.date(2012, 12, 31))
    code, first = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 0, first
    assert first["offline"]["rows_written"] == len(frame)
    assert first["online"]["rows_upserted"] == frame["household_id"].nunique()
    offline = offline_rows(spark, tmp_path / "offline" / "energy")
    online = normalise_online(online_rows(cassandra_session, keyspace, view))
    assert_same(online, normalise_online(latest_offline_as_online(offline, view)))

    code, second = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 0, second
    assert second["offline"]["delta_version"] > first["offline"]["delta_version"]
    assert second["offline"]["rows_unchanged"] == len(frame)
    assert_same(offline_rows(spark, tmp_path / "offline" / "energy"), offline)
    assert_same(normalise_online(online_rows(cassandra_session, keyspace, view)), online)


def test_incremental_run_equals_full_recompute_and_old_replays_change_nothing_online(
    spark, view, cassandra_session, keyspace, make_keyspace, tmp_path
):
    history, _ = generate(tmp_path, "history.csv", dt.date(2012, 1, 1), dt.date(2012, 11, 30))
    latest, _ = generate(tmp_path, "latest.csv", dt.date(2012, 12, 1), dt.date(2012, 12, 31), seed=22)
    incremental_offline = tmp_path / "incremental"
    code, summary = run_job(spark, job_args(tmp_path, [history], offline=incremental_offline, keyspace=keyspace))
    assert code == 0, summary
    code, summary = run_job(
        spark, job_args(tmp_path, [latest], mode="incremental", offline=incremental_offline, keyspace=keyspace)
    )
    assert code == 0, summary

    # The reference: everything at once, into its own table and keyspace.
    full_offline, full_keyspace = tmp_path / "full", make_keyspace()
    code, summary = run_job(spark, job_args(tmp_path, [history, latest], offline=full_offline, keyspace=full_keyspace))
    assert code == 0, summary
    incremental = offline_rows(spark, incremental_offline / "energy")
    full = offline_rows(spark, full_offline / "energy")
    assert_same(incremental.drop(columns=RUN_COLUMNS), full.drop(columns=RUN_COLUMNS))
    online = normalise_online(online_rows(cassandra_session, keyspace, view))
    assert_same(online, normalise_online(latest_offline_as_online(incremental, view)))
    full_online = normalise_online(online_rows(cassandra_session, full_keyspace, view))
    assert_same(online.drop(columns=["updated_at"]), full_online.drop(columns=["updated_at"]))

    # An older file replayed as it was changes nothing online (nor offline).
    code, summary = run_job(
        spark, job_args(tmp_path, [history], mode="incremental", offline=incremental_offline, keyspace=keyspace)
    )
    assert code == 0, summary
    assert summary["offline"]["rows_updated"] == 0
    assert_same(normalise_online(online_rows(cassandra_session, keyspace, view)), online)

    # Rows of an older date written online later (what a late replay of old days sends) lose against the
    # newer feature_date already there: the per-row write timestamp comes from the feature date.
    older = spark.read.format("delta").load(str(incremental_offline / "energy")).where("day = DATE'2012-06-30'")
    assert older.count() > 0
    target = CassandraTarget(keyspace, port=CASSANDRA_PORT)
    write_online(online_store_rows(older, view, job_start_epoch_seconds=2_000_000_000), view, target)
    assert_same(normalise_online(online_rows(cassandra_session, keyspace, view)), online)

    # Changed values for old days: rows whose windows reach them are recomputed; online still equals the
    # latest offline row and keeps its (newest) feature date.
    changed = pd.read_csv(history, dtype=str)
    changed = changed[changed["day"] < "2012-06-01"]
    changed["energy_sum"] = "99.5"
    changed_path = tmp_path / "changed-old.csv"
    changed.to_csv(changed_path, index=False)
    code, summary = run_job(
        spark, job_args(tmp_path, [changed_path], mode="incremental", offline=incremental_offline, keyspace=keyspace)
    )
    assert code == 0, summary
    assert summary["offline"]["rows_updated"] > 0
    after = normalise_online(online_rows(cassandra_session, keyspace, view))
    assert_same(
        after, normalise_online(latest_offline_as_online(offline_rows(spark, incremental_offline / "energy"), view))
    )
    assert list(after["feature_date"]) == list(online["feature_date"])
