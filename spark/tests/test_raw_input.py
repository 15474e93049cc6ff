"""Malformed inputs: each gives the stated outcome and message, every rejected row lands in the rejects
output with its reason, and the raw file is never modified."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from jobs import job_args, rejects, run_job

from tools import synthetic

SMALL = {"households": 4, "start": dt.date(2012, 2, 20), "end": dt.date(2012, 3, 10), "seed": 3}


def write(tmp_path, name, malformed=None, share=0.05, **options):
    frame = synthetic.generate_frame(**{**SMALL, **options})
    path = tmp_path / name
    synthetic.write_csv(frame, str(path), malformed=malformed, share=share)
    return path, frame


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_header_mismatch_fails_naming_missing_and_extra_columns(spark, keyspace, tmp_path):
    path, _ = write(tmp_path, "bad-header.csv", "bad_header")
    code, summary = run_job(spark, job_args(tmp_path, [path], keyspace=keyspace))
    assert code == 3
    assert summary["status"] == "failed"
    assert "missing columns: energy_sum" in summary["error"]
    assert "unexpected columns: energy_total, tariff" in summary["error"]


def test_zero_byte_file_fails_and_header_only_file_writes_nothing(spark, keyspace, tmp_path):
    empty, _ = write(tmp_path, "empty.csv", "empty")
    code, summary = run_job(spark, job_args(tmp_path, [empty], keyspace=keyspace))
    assert code == 3
    assert "is empty: no header line" in summary["error"]

    header_only, _ = write(tmp_path, "header-only.csv", "header_only")
    code, summary = run_job(spark, job_args(tmp_path, [header_only], keyspace=keyspace))
    assert code == 0
    assert summary["status"] == "empty"
    assert summary["input_rows"] == 0
    assert not (tmp_path / "offline" / "energy").exists()


@pytest.mark.parametrize(
    ("kind", "reason", "detail"),
    [
        ("bad_numbers", "bad_number", "energy_sum is not a double"),
        ("bad_dates", "bad_date", "day is not a yyyy-MM-dd calendar date"),
        ("bad_ids", "bad_entity_id", "household_id does not match"),
    ],
)
def test_bad_rows_are_rejected_with_their_reason_and_the_run_fails_above_the_limit(
    spark, keyspace, tmp_path, kind, reason, detail
):
    path, frame = write(tmp_path, f"{kind}.csv", kind, share=0.05)
    before = digest(path)
    argv = job_args(tmp_path, [path], max_reject_share=0.01, keyspace=keyspace)
    code, summary = run_job(spark, argv)
    bad = summary["rejected_by_reason"][reason]
    assert code == 3
    assert bad >= 1
    assert summary["input_rows"] == len(frame)
    assert f"{bad} of {len(frame)} rows rejected" in summary["error"]
    assert "above the limit of 1.00%" in summary["error"]
    assert "offline" not in summary
    rows = rejects(spark, argv)
    assert len(rows) == bad
    assert all(r["reject_reason"] == reason and detail in r["reject_detail"] for r in rows)
    assert all(r["source_file"].endswith(f"{kind}.csv") for r in rows)
    assert digest(path) == before, "the raw file must never be modified"


def test_every_copy_of_a_duplicated_key_and_null_keys_are_rejected(spark, keyspace, tmp_path):
    duplicates, _ = write(tmp_path, "dups.csv", "duplicates", share=0.05)
    nulls, _ = write(tmp_path, "nulls.csv", "null_keys", share=0.1, start=dt.date(2012, 4, 1), end=dt.date(2012, 4, 30))
    argv = job_args(tmp_path, [duplicates, nulls], max_reject_share=0.0, keyspace=keyspace)
    code, summary = run_job(spark, argv)
    assert code == 3
    copies = summary["rejected_by_reason"]["duplicate_key"]
    assert copies >= 2
    assert copies % 2 == 0
    assert summary["rejected_by_reason"]["null_entity"] >= 1
    assert summary["rejected_by_reason"]["null_date"] >= 1
    rows = rejects(spark, argv)
    dup_keys = [(r["household_id"], r["day"]) for r in rows if r["reject_reason"] == "duplicate_key"]
    assert len(dup_keys) == copies
    assert len(set(dup_keys)) == copies // 2


def test_each_field_rule_on_hand_written_lines(spark, view, tmp_path):
    from feature_store.raw_input import REASON, classify, read_text

    path = tmp_path / "dates.csv"
    header = ",".join(synthetic.HEADER)
    lines = [
        "MAC000002,2012-02-29,1,1,1,48,1,1,1",
        "MAC000002,2013-02-29,1,1,1,48,1,1,1",
        "MAC000002,2013-02-30,1,1,1,48,1,1,1",
        "MAC000002,2013-1-5,1,1,1,48,1,1,1",
        "MAC000002,2013-04-31,1,1,1,48,1,1,1",
        "MAC000002,2013-13-01,1,1,1,48,1,1,1",
        "MAC000002,2013-00-10,1,1,1,48,1,1,1",
        "MAC000002,2013-01-06,1,1,1,4.5,1,1,1",
        "MAC000002,2013-01-07,1,1,1,48,NaN,1,1",
        "MAC000002,2013-01-08,1,1,1,48,,,1",
        "MAC000002,2013-01-09,1,1,1,48,1,2e6,1",
        "MAC000002,2013-01-10,1,1",
    ]
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    rows = classify(read_text(spark, view, [str(path)]), view, dt.date(2026, 1, 1)).rows.orderBy("day").collect()
    reasons = {r["day"]: r[REASON] for r in rows}
    assert reasons == {
        "2012-02-29": None,
        "2013-02-29": "bad_date",
        "2013-02-30": "bad_date",
        "2013-1-5": "bad_date",
        "2013-04-31": "bad_date",
        "2013-13-01": "bad_date",
        "2013-00-10": "bad_date",
        "2013-01-06": "bad_number",
        "2013-01-07": "bad_number",
        "2013-01-08": None,  # empty fields are nulls, not errors
        "2013-01-09": "out_of_range",
        "2013-01-10": "malformed_line",
    }


def test_rows_dated_after_today_plus_the_views_allowance_are_future_dates(spark, view, tmp_path):
    """A future-dated row would be an entity's latest vector until the calendar passed it (issue 9)."""
    from feature_store.raw_input import DETAIL, REASON, classify, read_text

    assert view.max_future_days == 1
    path = tmp_path / "future.csv"
    days = ["2013-01-09", "2013-01-10", "2013-01-11", "2013-01-12", "2104-01-01"]
    lines = [f"MAC000002,{day},1,1,1,48,1,1,1" for day in days]
    path.write_text(",".join(synthetic.HEADER) + "\n" + "\n".join(lines) + "\n")
    rows = classify(read_text(spark, view, [str(path)]), view, dt.date(2013, 1, 10)).rows.collect()
    assert {r["day"]: r[REASON] for r in rows} == {
        "2013-01-09": None,
        "2013-01-10": None,
        "2013-01-11": None,  # tomorrow: within max_future_days (time zones of the senders)
        "2013-01-12": "future_date",
        "2104-01-01": "future_date",
    }
    assert "after 2013-01-11" in next(r[DETAIL] for r in rows if r["day"] == "2104-01-01")


def test_counts_give_rows_per_reason_and_the_accepted_rows_distinct_dates(spark, view, tmp_path):
    """The run summary's counts: every row under its reason, and the distinct dates of the accepted rows
    only (a new table's `dates_written`), not of rejected ones."""
    from feature_store.raw_input import classify, counts, read_text

    path = tmp_path / "counts.csv"
    lines = [
        "MAC000002,2013-01-01,1,1,1,48,1,1,1",
        "MAC000003,2013-01-01,1,1,1,48,1,1,1",
        "MAC000002,2013-01-02,1,1,1,48,1,1,1",
        "MAC000004,2013-01-03,1,1,1,48,1,x,1",  # bad number, on a day no accepted row has
        "MAC000004,2104-01-01,1,1,1,48,1,1,1",  # future date
        "MAC000005,2013-01-04,1,1,1,48,1,1,1",  # duplicated: both copies rejected, and the day with them
        "MAC000005,2013-01-04,1,1,1,48,1,1,1",
    ]
    path.write_text(",".join(synthetic.HEADER) + "\n" + "\n".join(lines) + "\n")
    classified = classify(read_text(spark, view, [str(path)]), view, dt.date(2013, 1, 10)).typed
    by_reason, accepted_days = counts(classified, view)
    assert by_reason == {None: 3, "bad_number": 1, "future_date": 1, "duplicate_key": 2}
    assert accepted_days == 2


def test_values_outside_the_views_declared_bounds_are_out_of_range(spark, view, tmp_path):
    from feature_store.raw_input import DETAIL, REASON, classify, read_text

    bounds = {c.name: (c.min, c.max) for c in view.source_columns}
    assert bounds["energy_count"][0] == 0
    assert bounds["energy_std"][0] == 0
    path = tmp_path / "bounds.csv"
    lines = [
        "MAC000002,2013-01-01,1,1,1,-1,1,1,1",  # negative count
        "MAC000002,2013-01-02,1,1,1,48,-0.5,1,1",  # negative stddev
        "MAC000002,2013-01-03,1e308,1,1,48,1,1,1",  # absurd passthrough value
        "MAC000002,2013-01-04,0,0,0,0,0,0,0",  # the bounds themselves are allowed
        "MAC000002,2013-01-05,1,1,1,48,1,1,1",
    ]
    path.write_text(",".join(synthetic.HEADER) + "\n" + "\n".join(lines) + "\n")
    rows = classify(read_text(spark, view, [str(path)]), view, dt.date(2014, 1, 1)).rows.collect()
    assert {r["day"]: r[REASON] for r in rows} == {
        "2013-01-01": "out_of_range",
        "2013-01-02": "out_of_range",
        "2013-01-03": "out_of_range",
        "2013-01-04": None,
        "2013-01-05": None,
    }
    details = {r["day"]: r[DETAIL] for r in rows}
    assert "energy_count is below" in details["2013-01-01"]
    assert "energy_median is above" in details["2013-01-03"]


def test_inputs_are_read_literally_never_glob_expanded(spark, view, keyspace, tmp_path):
    """An S3 key may contain glob characters; the job reads exactly the object named (issue 10)."""
    folder = tmp_path / "raw"
    folder.mkdir()
    named, frame = write(folder, "day[1]*.csv")
    write(folder, "day1x.csv", start=dt.date(2012, 3, 11), end=dt.date(2012, 3, 20))  # what a glob would add
    code, summary = run_job(spark, job_args(tmp_path, [named], keyspace=keyspace))
    assert code == 0, summary
    assert summary["input_files"] == [f"file:{named}"]
    assert summary["input_rows"] == len(frame)
