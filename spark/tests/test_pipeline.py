"""The whole job against real stores (local Delta table, local Cassandra): online rows equal the latest
offline rows, re-runs change nothing, an incremental run equals a full recompute, an older file
replayed after a newer one changes nothing online, every write timestamp lies in Keyspaces' window,
and a run that dies between the Delta commit and the end of its online write is finished by the next."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from jobs import job_args, run_job

from feature_store import online_store
from tools import synthetic

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
    offline = offline_rows(spark, tmp_path / "offline" / "energy")
    # The summary of the new table's first version: what it holds, told without reading it back.
    written = first["offline"]
    assert written["rows_written"] == written["rows_inserted"] == len(frame) == len(offline)
    assert written["entities_written"] == offline["household_id"].nunique() == frame["household_id"].nunique()
    assert written["dates_written"] == offline["day"].nunique()
    assert (written["first_date"], written["last_date"]) == (str(offline["day"].min()), str(offline["day"].max()))
    assert first["online"]["rows_upserted"] == frame["household_id"].nunique()
    online = normalise_online(online_rows(cassandra_session, keyspace, view))
    assert_same(online, normalise_online(latest_offline_as_online(offline, view)))

    table = tmp_path / "offline" / "energy"
    files_before = sorted(p.name for p in table.rglob("*.parquet"))
    code, second = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 0, second
    # Nothing changed: no Delta version committed, no file written, nothing published.
    assert second["offline"]["delta_version"] == first["offline"]["delta_version"]
    assert second["offline"]["committed"] is False
    assert sorted(p.name for p in table.rglob("*.parquet")) == files_before
    assert second["offline"]["rows_unchanged"] == len(frame)
    assert second["online"]["status"] == "unchanged"
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
    # New days: nothing stored is on or after them, so no stored row is read to compare with, and the
    # latest rows are the rows just written, published without reading the version back.
    assert summary["offline"]["compared_with_stored"] is False, summary["offline"]
    assert summary["online"]["read_back"] is False, summary["online"]
    # ... and counted by the write's own check, not again: one row per entity of the new days.
    assert summary["online"]["rows_upserted"] == pd.read_csv(latest)["household_id"].nunique(), summary["online"]

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
    assert summary["offline"]["compared_with_stored"] is True, summary["offline"]
    assert summary["offline"]["rows_updated"] == 0
    assert_same(normalise_online(online_rows(cassandra_session, keyspace, view)), online)

    # ... and publishes nothing: no row of the replay changed Delta, so no entity is re-written online.
    assert summary["online"]["rows_upserted"] == 0

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


def test_the_publish_reads_back_the_latest_rows_when_the_written_rows_are_not_them(
    spark, view, cassandra_session, keyspace, tmp_path
):
    """The publish takes the latest rows from the run's own write only when they provably are the latest
    (offline_store.write_rows); otherwise it reads them back from the committed version. Both ways, the
    online store ends equal to the latest offline rows."""
    history, _ = generate(tmp_path, "history.csv", dt.date(2012, 1, 1), dt.date(2013, 12, 31), households=4)
    offline = tmp_path / "offline"
    code, summary = run_job(spark, job_args(tmp_path, [history], offline=offline, keyspace=keyspace))
    assert code == 0, summary
    stored_days = pd.read_csv(history, dtype=str)

    def assert_online_is_latest_offline():
        assert_same(
            normalise_online(online_rows(cassandra_session, keyspace, view)),
            normalise_online(latest_offline_as_online(offline_rows(spark, offline / "energy"), view)),
        )

    def correct(name, days, column, value):
        frame = days.copy()
        frame[column] = value
        path = tmp_path / name
        frame.to_csv(path, index=False)
        argv = job_args(tmp_path, [path], mode="incremental", offline=offline, keyspace=keyspace)
        code, summary = run_job(spark, argv)
        assert code == 0, summary
        assert summary["offline"]["rows_updated"] > 0, summary["offline"]
        assert_online_is_latest_offline()
        return summary["online"]

    # Days more than a window before the newest day: the recomputed rows end in 2013-02, and the
    # entities' latest rows (2013-12) are stored rows this run did not offer.
    old = stored_days[stored_days["day"] < "2012-03-01"]
    assert correct("old-sums.csv", old, "energy_sum", "77.25")["read_back"] is True
    # Within reach of the window, but only a copied column changes: that day's rows change, the newest
    # recomputed rows keep their values (and their updated_at), so they cannot be taken from the write.
    recent = stored_days[stored_days["day"] == "2013-12-20"]
    assert correct("recent-median.csv", recent, "energy_median", "0.5")["read_back"] is True
    # A new day after them all: taken from the write.
    newest, _ = generate(tmp_path, "newest.csv", dt.date(2014, 1, 1), dt.date(2014, 1, 1), households=4, seed=9)
    code, summary = run_job(spark, job_args(tmp_path, [newest], mode="incremental", offline=offline, keyspace=keyspace))
    assert code == 0, summary
    assert summary["online"]["read_back"] is False, summary["online"]
    assert_online_is_latest_offline()


def write_timestamps(session, keyspace, view):
    """WRITETIME of every written cell of every online row, in microseconds."""
    columns = [c.name for c in view.online_columns() if c.name != "entity_id"]
    selected = ", ".join(f"WRITETIME({c})" for c in columns)
    stamps = []
    for row in session.execute(f"SELECT {selected} FROM {keyspace}.{view.online_table}"):
        stamps.extend(value for value in row if value is not None)
    return stamps


def test_a_backfill_of_old_days_writes_only_timestamps_keyspaces_accepts(
    spark, view, cassandra_session, keyspace, tmp_path
):
    """Keyspaces refuses client-side timestamps more than 2 days old or 5 minutes ahead of its clock
    (docs/AWS_CONTRACTS.md); data from 2011-2014 must still be publishable."""
    path, frame = generate(tmp_path, "old.csv", dt.date(2011, 11, 23), dt.date(2012, 2, 28))
    before = dt.datetime.now(dt.UTC)
    code, summary = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    after = dt.datetime.now(dt.UTC)
    assert code == 0, summary
    stamps = write_timestamps(cassandra_session, keyspace, view)
    assert len(stamps) >= frame["household_id"].nunique() * len(view.features)
    low = online_store.to_micros(before - online_store.TIMESTAMP_MAX_PAST)
    high = online_store.to_micros(after + online_store.TIMESTAMP_MAX_FUTURE)
    assert all(low <= stamp <= high for stamp in stamps), (min(stamps), max(stamps), low, high)
    # One publish, one timestamp; and the publish log records it for the next publish to pass.
    assert set(stamps) == {summary["online"]["write_timestamp_micros"]}
    # Deleting an entity's online row works (a DELETE at the server's time is newer than the publish).
    entity = frame["household_id"].iloc[0]
    cassandra_session.execute(f"DELETE FROM {keyspace}.{view.online_table} WHERE entity_id = %s", (entity,))
    found = cassandra_session.execute(
        f"SELECT entity_id FROM {keyspace}.{view.online_table} WHERE entity_id = %s", (entity,)
    ).all()
    assert found == []


def test_a_run_killed_during_its_online_write_is_finished_by_the_retry(
    spark, view, cassandra_session, keyspace, tmp_path, monkeypatch
):
    history, _ = generate(tmp_path, "history.csv", dt.date(2012, 1, 1), dt.date(2012, 6, 30))
    code, summary = run_job(spark, job_args(tmp_path, [history], keyspace=keyspace))
    assert code == 0, summary
    published = normalise_online(online_rows(cassandra_session, keyspace, view))

    # The next day's run commits Delta, then dies after writing half of its online rows.
    latest, _ = generate(tmp_path, "latest.csv", dt.date(2012, 7, 1), dt.date(2012, 7, 1), seed=5)
    real_write = online_store.write_online

    def dies_half_way(rows, view_, target):
        half = rows.orderBy("entity_id").limit(max(1, rows.count() // 2))
        real_write(half, view_, target)
        raise RuntimeError("executor lost (simulated kill during the online write)")

    monkeypatch.setattr(online_store, "write_online", dies_half_way)
    argv = job_args(tmp_path, [latest], mode="incremental", keyspace=keyspace)
    code, failed = run_job(spark, argv)
    assert code == 1
    assert failed["online"] == {"status": "pending", "delta_version": failed["offline"]["delta_version"]}
    assert "publishes it before anything else" in failed["stores"]
    offline = offline_rows(spark, tmp_path / "offline" / "energy")
    apart = normalise_online(online_rows(cassandra_session, keyspace, view))
    expected = normalise_online(latest_offline_as_online(offline, view))
    assert not apart.equals(expected)  # the stores are apart now
    assert (apart["feature_date"] == dt.date(2012, 7, 1)).any()
    assert (published["feature_date"] == dt.date(2012, 6, 30)).all()

    # The retry (Lambda/orchestrator re-runs the same step) finishes the publish first.
    monkeypatch.setattr(online_store, "write_online", real_write)
    code, retried = run_job(spark, argv)
    assert code == 0, retried
    assert retried["recovered_publish"]["delta_version"] == failed["offline"]["delta_version"]
    assert_same(normalise_online(online_rows(cassandra_session, keyspace, view)), expected)
    # The retry's own rows are the ones the failed attempt committed: nothing new to commit or publish.
    assert retried["offline"]["committed"] is False
    assert retried["online"]["status"] == "unchanged"


def test_an_unreachable_online_store_fails_the_run_before_delta_is_touched(spark, tmp_path):
    path, _ = generate(tmp_path, "raw.csv", dt.date(2012, 1, 1), dt.date(2012, 1, 31))
    argv = [*job_args(tmp_path, [path], keyspace="feature_store"), "--cassandra-port", "1"]
    started = dt.datetime.now(dt.UTC)
    code, summary = run_job(spark, argv)
    assert code == 1
    assert (dt.datetime.now(dt.UTC) - started).total_seconds() < 60
    assert "cannot reach the online store" in summary["error"]
    assert not (tmp_path / "offline" / "energy").exists()
