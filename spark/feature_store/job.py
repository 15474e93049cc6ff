"""The feature job: extract (raw CSV → validated rows) → transform (point-in-time features) → load
(Delta MERGE, then the latest row per entity to Cassandra/Keyspaces). `main` only wires the steps;
the argument list is a contract with the submit function (docs/SPARK_JOB.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import traceback
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from . import offline_store, online_store, raw_input, storage
from .feature_view import FeatureView, parse_compiled_view
from .features import compute_features
from .session import SessionSettings, build_spark_session


@dataclass(frozen=True)
class JobArgs:
    view: str
    inputs: tuple[str, ...]
    mode: str
    feature_view: str
    offline_uri: str
    rejects_uri: str
    summary_uri: str
    run_id: str
    cassandra: online_store.CassandraTarget = field(default_factory=online_store.CassandraTarget)
    max_reject_share: float = 0.01


def parse_args(argv: list[str]) -> JobArgs:
    parser = argparse.ArgumentParser(
        prog="feature_job.py", description="Computes a feature view's features into the offline and online stores."
    )
    parser.add_argument("--view", required=True)
    parser.add_argument("--input", required=True, action="append", dest="inputs", help="repeatable")
    parser.add_argument("--mode", required=True, choices=("full", "incremental"))
    parser.add_argument("--feature-view", required=True)
    parser.add_argument("--offline-uri", required=True)
    parser.add_argument("--rejects-uri", required=True)
    parser.add_argument("--summary-uri", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--keyspace", default="feature_store")
    parser.add_argument("--cassandra-host", default="127.0.0.1")
    parser.add_argument("--cassandra-port", type=int, default=9042)
    parser.add_argument("--cassandra-datacenter", default="datacenter1")
    parser.add_argument("--cassandra-profile")
    parser.add_argument("--max-reject-share", type=float, default=0.01)
    ns = parser.parse_args(argv)
    if not 0 <= ns.max_reject_share <= 1:
        parser.error("--max-reject-share must be between 0 and 1")
    if not 1 <= ns.cassandra_port <= 65535:
        parser.error("--cassandra-port must be between 1 and 65535")
    return JobArgs(
        view=ns.view,
        inputs=tuple(ns.inputs),
        mode=ns.mode,
        feature_view=ns.feature_view,
        offline_uri=ns.offline_uri,
        rejects_uri=ns.rejects_uri,
        summary_uri=ns.summary_uri,
        run_id=ns.run_id,
        cassandra=online_store.CassandraTarget(
            keyspace=ns.keyspace,
            host=ns.cassandra_host,
            port=ns.cassandra_port,
            datacenter=ns.cassandra_datacenter,
            profile_path=ns.cassandra_profile,
        ),
        max_reject_share=ns.max_reject_share,
    )


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self._started, 3)
        self._started = now


def load_view(spark: SparkSession, args: JobArgs) -> FeatureView:
    """Reads the compiled view and checks the arguments whose rules it carries (run id, keyspace)."""
    view = parse_compiled_view(storage.read_text(spark, args.feature_view), args.feature_view)
    if view.name != args.view:
        raise raw_input.InputError(f"--view {args.view} does not match the view file {args.feature_view} ({view.name})")
    if not view.is_run_id(args.run_id):
        raise raw_input.InputError(f"--run-id {args.run_id!r} must match {view.run_id_pattern}")
    if not view.is_identifier(args.cassandra.keyspace):
        raise raw_input.InputError(f"--keyspace {args.cassandra.keyspace!r} must match {view.identifier_pattern}")
    return view


def run(spark: SparkSession, args: JobArgs, summary: dict | None = None) -> dict:
    """Runs the job and returns the summary; raises InputError (or a store error) on failure, with
    what is known so far (counts, rejects) left in `summary` for the failure report."""
    started_at = dt.datetime.now(dt.UTC)
    job_start_epoch_seconds = int(started_at.timestamp())
    # Milliseconds: the online store keeps timestamps to the millisecond, and online must equal offline.
    updated_at = started_at.replace(microsecond=started_at.microsecond // 1000 * 1000, tzinfo=None)
    timer = _Timer()
    summary = {} if summary is None else summary
    summary.update(
        {
            "run_id": args.run_id,
            "view": args.view,
            "mode": args.mode,
            "status": "running",
            "started_at": started_at.isoformat(),
            "inputs": list(args.inputs),
            "timings": timer.timings,
        }
    )

    view = load_view(spark, args)
    files = storage.list_input_files(spark, list(args.inputs))
    raw_input.check_headers(spark, view, files)
    summary["input_files"] = files
    classified_input = raw_input.read_and_classify(spark, view, files)
    classified = classified_input.rows
    try:
        by_reason = {r[raw_input.REASON]: r["count"] for r in classified.groupBy(raw_input.REASON).count().collect()}
        input_rows = sum(by_reason.values())
        accepted = by_reason.pop(None, 0)
        rejected = sum(by_reason.values())
        summary.update(
            input_rows=input_rows, accepted_rows=accepted, rejected_rows=rejected, rejected_by_reason=by_reason
        )
        raw_input.rejected_rows(classified, view).repartition(1).write.mode("overwrite").option("header", "true").csv(
            args.rejects_uri
        )
        summary["rejects_uri"] = args.rejects_uri
        timer.lap("read_validate_s")

        if input_rows == 0:
            summary.update(status="empty", message="the inputs hold a header and no data rows: nothing written")
            return _finish(summary, timer)
        share = rejected / input_rows
        if share > args.max_reject_share:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))
            raise raw_input.InputError(
                f"{rejected} of {input_rows} rows rejected ({share:.2%}), above the limit of "
                f"{args.max_reject_share:.2%} ({reasons}); nothing was written. Rejected rows: {args.rejects_uri}"
            )
        if accepted == 0:
            summary.update(status="empty", message="every row was rejected: nothing written")
            return _finish(summary, timer)

        accepted_df = raw_input.accepted_rows(classified, view)
        table_uri = offline_store.table_uri(args.offline_uri, view)
        rows, _ = _feature_rows(spark, view, args, accepted_df, table_uri, updated_at)
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            written = rows.agg(
                F.count(F.lit(1)).alias("rows"),
                F.countDistinct(view.entity_column).alias("entities"),
                F.countDistinct(view.event_date_column).alias("dates"),
                F.min(view.event_date_column).alias("first"),
                F.max(view.event_date_column).alias("last"),
            ).first()
            timer.lap("compute_s")
            merge = offline_store.merge_rows(spark, table_uri, rows, view, (written["first"], written["last"]))
            summary["offline"] = {
                "table_uri": table_uri,
                "delta_version": merge.version,
                "rows_written": written["rows"],
                "rows_inserted": merge.rows_inserted,
                "rows_updated": merge.rows_updated,
                "rows_unchanged": merge.rows_unchanged,
                "entities_written": written["entities"],
                "dates_written": written["dates"],
                "first_date": written["first"].isoformat(),
                "last_date": written["last"].isoformat(),
            }
            timer.lap("offline_write_s")

            latest = _latest_rows(spark, view, table_uri, merge.version, rows)
            online = online_store.online_rows(latest, view, job_start_epoch_seconds).persist(
                StorageLevel.MEMORY_AND_DISK
            )
            try:
                online_count = online.count()
                online_store.write_online(online, view, args.cassandra)
            finally:
                online.unpersist()
            summary["online"] = {
                "keyspace": args.cassandra.keyspace,
                "table": view.online_table,
                "rows_upserted": online_count,
                "writetime": "feature_epoch_day * 86400000000 + job_start_epoch_seconds",
                "job_start_epoch_seconds": job_start_epoch_seconds,
            }
            timer.lap("online_write_s")
        finally:
            rows.unpersist()
    finally:
        classified_input.release()
    summary["status"] = "succeeded"
    return _finish(summary, timer)


def _feature_rows(spark, view: FeatureView, args: JobArgs, accepted: DataFrame, table_uri: str, updated_at):
    """Feature rows to write, in table layout, and the date range of the new rows."""
    entity, date = view.entity_column, view.event_date_column
    bounds = accepted.groupBy(entity).agg(F.min(date).alias("_first"), F.max(date).alias("_last"))
    first_last = bounds.agg(F.min("_first").alias("first"), F.max("_last").alias("last")).first()
    date_range = (first_last["first"], first_last["last"])
    window = view.max_window_days
    if args.mode == "incremental" and window > 0 and offline_store.table_exists(spark, table_uri):
        # History the new rows need (lookback) and rows whose windows now include them (lookahead).
        history = offline_store.read_history(spark, table_uri, view, bounds, window - 1, window - 1, date_range)
        history = history.join(accepted.select(entity, date), [entity, date], "left_anti")
        combined = accepted.unionByName(history)
        features = compute_features(combined, view)
        affected = features.join(F.broadcast(bounds), entity).where(
            (F.col(date) >= F.col("_first")) & (F.col(date) <= F.date_add(F.col("_last"), window - 1))
        )
        features = affected.drop("_first", "_last")
        sources = combined
    else:
        features = compute_features(accepted, view)
        sources = accepted
    return offline_store.to_table_rows(features, sources, view, updated_at, args.run_id), date_range


def _latest_rows(spark, view: FeatureView, table_uri: str, version: int, written: DataFrame) -> DataFrame:
    """The latest row per written entity, read back from the Delta version just committed, so the
    online row equals the offline row (including updated_at of the run that last changed it)."""
    entity, date = view.entity_column, view.event_date_column
    keys = written.groupBy(entity).agg(F.max(date).alias("_from"))
    low = keys.agg(F.min("_from")).first()[0]
    table = offline_store.read_version(spark, table_uri, version).where(
        F.col(date) >= F.lit(low.isoformat()).cast("date")
    )
    candidates = table.join(F.broadcast(keys), entity).where(F.col(date) >= F.col("_from"))
    newest_first = Window.partitionBy(entity).orderBy(F.col(date).desc())
    return (
        candidates.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank", "_from")
    )


def _finish(summary: dict, timer: _Timer) -> dict:
    summary["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    summary["timings"] = timer.timings
    summary["timings"]["total_s"] = round(sum(timer.timings.values()), 3)
    return summary


def write_summary(spark: SparkSession, uri: str, summary: dict) -> None:
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    print(text)
    storage.write_text(spark, uri, text + "\n")


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = spark or build_spark_session(SessionSettings(app_name=f"feature-job-{args.view}-{args.run_id}"))
    started = time.monotonic()
    summary: dict = {}
    try:
        run(spark, args, summary)
    except (raw_input.InputError, storage.InputNotFoundError, ValueError) as error:
        _fail(spark, args, summary, str(error), started)
        return 3
    except Exception as error:  # noqa: BLE001 - any store failure ends the run with a summary
        traceback.print_exc()
        _fail(spark, args, summary, f"{type(error).__name__}: {error}", started)
        return 1
    write_summary(spark, args.summary_uri, summary)
    return 0


def _fail(spark: SparkSession, args: JobArgs, summary: dict, message: str, started: float) -> None:
    print(f"feature job failed: {message}", file=sys.stderr)
    summary.update(run_id=args.run_id, view=args.view, mode=args.mode, inputs=list(args.inputs))
    summary.update(status="failed", error=message, finished_at=dt.datetime.now(dt.UTC).isoformat())
    summary.setdefault("timings", {})["total_s"] = round(time.monotonic() - started, 3)
    try:
        write_summary(spark, args.summary_uri, summary)
    except Exception as error:  # noqa: BLE001 - the original failure is what matters
        print(f"could not write the summary to {args.summary_uri}: {error}", file=sys.stderr)
