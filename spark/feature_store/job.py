"""The feature job, wired: pre-flight (online store reachable, an unfinished publish finished) →
extract (raw_input.read_text) → transform (raw_input.classify, features) → load (offline_store MERGE,
then publish.py to the online store). Mode `repair` instead removes wrong rows from both stores
(repair.py). The argument list (arguments.py) is a contract with the functions that start the job
(docs/SPARK_JOB.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from . import offline_store, online_store, publish, publish_log, raw_input, repair, storage
from .arguments import JobArgs, expand_arguments_manifest, parse_args
from .feature_view import FeatureView, parse_compiled_view
from .features import compute_features, features_around_new_rows
from .session import SessionSettings, build_spark_session, start_python_workers


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


@dataclass(frozen=True)
class JobClock:
    """The job's one reading of the clock: run start (summary), updated_at of the rows it changes
    (milliseconds: the online store keeps timestamps to the millisecond, and online must equal offline),
    and today's date for the future-date rule."""

    started_at: dt.datetime

    @property
    def updated_at(self) -> dt.datetime:
        at = self.started_at
        return at.replace(microsecond=at.microsecond // 1000 * 1000, tzinfo=None)

    @property
    def today(self) -> dt.date:
        return self.started_at.date()

    @staticmethod
    def now() -> JobClock:
        return JobClock(dt.datetime.now(dt.UTC))


def run(spark: SparkSession, args: JobArgs, summary: dict | None = None, clock: JobClock | None = None) -> dict:
    """Runs the job and returns the summary; raises InputError (or a store error) on failure, with
    what is known so far (counts, rejects, what was committed) left in `summary` for the failure report."""
    clock = clock or JobClock.now()
    timer = _Timer()
    summary = {} if summary is None else summary
    summary.update(
        {
            "run_id": args.run_id,
            "view": args.view,
            "mode": args.mode,
            "status": "running",
            "started_at": clock.started_at.isoformat(),
            "timings": timer.timings,
        }
    )
    if args.repair is None:
        summary["inputs"] = list(args.inputs)
    else:
        summary["repair"] = args.repair.describe()

    view = load_view(spark, args)
    start_python_workers(spark)
    # Before anything is committed: the online store answers and has the view's table (checked alongside
    # the reading and computing, which commit nothing; `reachable()` waits for the answer and raises its
    # error), and a publish an earlier run left unfinished is finished first (the stores never stay apart).
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ahead") as pool:
        check = pool.submit(online_store.check_reachable, spark, view, args.cassandra)
        stored_newest = _stored_newest_ahead(pool, spark, args, view)
        _run_checked(spark, args, view, summary, clock, timer, check.result, stored_newest)
    return _finish(summary, timer)


def _stored_newest_ahead(pool: ThreadPoolExecutor, spark, args: JobArgs, view: FeatureView) -> Callable[[], object]:
    """What an incremental run needs to know of its table before computing: its newest date
    (offline_store.newest_date), or NOT_READ when the run computes without reading it (no table yet, a
    full run, a view without windows). Asking builds the Delta snapshot's state, a few small jobs and the
    driver's reading of the log (~3 s of a one-day run, docs/PERFORMANCE.md), so it is asked at the start,
    in the background, alongside the pre-flight and the reading of the input, which commit nothing. The
    view's run lock (one run per view) means no commit lands in between. Returns the answer's getter: it
    waits for the answer, and raises the error the reading raised."""
    if args.repair is not None or args.mode != "incremental" or view.max_window_days <= 0:
        return lambda: offline_store.NOT_READ
    uri = offline_store.table_uri(args.offline_uri, view)

    def read() -> object:
        if not offline_store.table_exists(spark, uri):
            return offline_store.NOT_READ
        return offline_store.newest_date(spark, uri, view)

    return pool.submit(read).result


def _run_checked(
    spark,
    args: JobArgs,
    view: FeatureView,
    summary: dict,
    clock: JobClock,
    timer: _Timer,
    reachable: Callable[[], object],
    stored_newest: Callable[[], object],
):
    table_uri = offline_store.table_uri(args.offline_uri, view)
    log_uri = publish_log.log_uri(args.offline_uri, view)
    at = publish.Publication(view, table_uri, log_uri, args.cassandra, args.run_id, clock.updated_at)
    caught_up = publish.finish_pending(spark, at, before_publishing=reachable)
    if caught_up is not None:
        summary["recovered_publish"] = caught_up
    timer.lap("preflight_s")

    if args.repair is not None:
        reachable()
        _repair(spark, at, args.repair, summary, timer)
        summary["status"] = "succeeded"
        return

    files = storage.list_input_files(spark, list(args.inputs))
    raw_input.check_headers(spark, view, files)
    summary["input_files"] = files
    classified_input = raw_input.classify(raw_input.read_text(spark, view, files), view, clock.today)
    classified = classified_input.typed
    try:
        by_reason, accepted_days = raw_input.counts(classified, view)
        input_rows = sum(by_reason.values())
        accepted = by_reason.pop(None, 0)
        rejected = sum(by_reason.values())
        summary.update(
            input_rows=input_rows, accepted_rows=accepted, rejected_rows=rejected, rejected_by_reason=by_reason
        )
        if rejected:
            raw_input.rejected_rows(classified_input.rows, view).repartition(1).write.mode("overwrite").option(
                "header", "true"
            ).csv(args.rejects_uri)
            summary["rejects_uri"] = args.rejects_uri
        timer.lap("read_validate_s")

        if input_rows == 0:
            summary.update(status="empty", message="the inputs hold a header and no data rows: nothing written")
            return
        share = rejected / input_rows
        if share > args.max_reject_share:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))
            raise raw_input.InputError(
                f"{rejected} of {input_rows} rows rejected ({share:.2%}), above the limit of "
                f"{args.max_reject_share:.2%} ({reasons}); nothing was written. Rejected rows: {args.rejects_uri}"
            )
        if accepted == 0:
            summary.update(status="empty", message="every row was rejected: nothing written")
            return

        accepted_df = raw_input.accepted_rows(classified, view)
        computed = _feature_rows(
            spark, view, args, accepted_df, table_uri, clock.updated_at, accepted, accepted_days, stored_newest()
        )
        reachable()
        written = offline_store.write_rows(
            spark,
            table_uri,
            computed.rows,
            view,
            computed.days,
            computed=lambda: timer.lap("compute_s"),
            stored_newest=computed.stored_newest,
            offered=computed.offered,
        )
        summary["offline"] = {
            "table_uri": table_uri,
            "delta_version": written.version,
            "committed": written.inserted + written.updated > 0,
            "rows_written": written.rows,
            "rows_inserted": written.inserted,
            "rows_updated": written.updated,
            "rows_unchanged": written.unchanged,
            "compared_with_stored": written.compared,
            "entities_written": written.entities,
            "dates_written": written.dates,
            "first_date": written.first.isoformat(),
            "last_date": written.last.isoformat(),
        }
        timer.lap("offline_write_s")
        if written.inserted + written.updated == 0:
            summary["online"] = {"status": "unchanged", "delta_version": written.version, "rows_upserted": 0}
        else:
            # Said before publishing: if the publish dies, the failure summary names what Delta holds.
            summary["online"] = {"status": "pending", "delta_version": written.version}
            changes = written.changes
            if changes is None:
                # A table this run created holds exactly the features of the accepted rows: each entity's
                # newest date there is that of its newest accepted row (not found by a scan of the new version).
                changes = computed.bounds.select(view.entity_column, F.col("_last").alias("_from"))
            summary["online"] = publish.publish(spark, at, written.version, changes, latest=written.latest)
        timer.lap("online_write_s")
    finally:
        classified_input.release()
    summary["status"] = "succeeded"


@dataclass(frozen=True)
class _FeatureRows:
    """rows: the feature rows to write, in table layout; days: the date range they fall in; stored_newest:
    the table's newest date when it was read (else offline_store.NOT_READ); bounds: entity, _first, _last
    of the accepted rows (checkpointed); offered: their Span when they are the features of every accepted
    row, one each (known without evaluating them), else None."""

    rows: DataFrame
    days: tuple
    stored_newest: object
    bounds: DataFrame
    offered: offline_store.Span | None


def _feature_rows(
    spark,
    view: FeatureView,
    args: JobArgs,
    accepted: DataFrame,
    table_uri: str,
    updated_at,
    row_count: int,
    day_count: int,
    newest: object,
) -> _FeatureRows:
    """The feature rows of the accepted rows (`row_count` of them, on `day_count` distinct dates). An
    incremental run (`newest`: its table's newest date, from _stored_newest_ahead; NOT_READ for any other
    run) reads from Delta the history the new rows need and the later rows whose windows now hold them (up
    to the longest window - 1 days after the last new day); when the table holds nothing on or after the
    first new day, only the history."""
    entity, date = view.entity_column, view.event_date_column
    # One row per entity, used three times (range, history filter, output filter): computed once.
    bounds = accepted.groupBy(entity).agg(F.min(date).alias("_first"), F.max(date).alias("_last")).localCheckpoint()
    first_last = bounds.agg(
        F.min("_first").alias("first"), F.max("_last").alias("last"), F.count(F.lit(1)).alias("entities")
    ).first()
    new_days = (first_last["first"], first_last["last"])
    window = view.max_window_days
    if newest is not offline_store.NOT_READ:
        if offline_store.holds_rows_from(newest, new_days[0]):
            history, later = offline_store.read_around(spark, table_uri, view, bounds, new_days)
            written_days = (new_days[0], new_days[1] + dt.timedelta(days=window - 1))
        else:  # every new day is after the stored ones (a daily file): no stored row changes
            history = offline_store.read_history(
                spark, table_uri, view, bounds, window - 1, 0, new_days, keep_bounds=True
            )
            later = None
            written_days = new_days
        features, sources = features_around_new_rows(accepted, history, later, bounds, view)
        offered = None
    else:
        features, sources, written_days = compute_features(accepted, view), accepted, new_days
        offered = offline_store.Span(row_count, int(first_last["entities"]), day_count, *new_days)
    table_rows = offline_store.to_table_rows(features, sources, view, updated_at, args.run_id)
    return _FeatureRows(table_rows, written_days, newest, bounds, offered)


def _repair(spark, at: publish.Publication, selection: repair.RepairSelection, summary: dict, timer: _Timer) -> None:
    """Deletes the selected rows and recomputes the rows whose windows held them, in one Delta commit,
    then publishes: the latest remaining row of every entity that lost rows, or an online delete for an
    entity left with none. The entities are in the publish log before the commit, so a publish that
    dies after it is finished, deletes included, by the next run."""
    view, table_uri, log_uri = at.view, at.table_uri, at.log_uri
    selection.check(view)
    entity, date = view.entity_column, view.event_date_column
    if not offline_store.table_exists(spark, table_uri):
        summary["offline"] = {"table_uri": table_uri, "delta_version": None, "rows_deleted": 0, "rows_updated": 0}
        summary["message"] = "the view has no Delta table yet: nothing to repair"
        return
    version = offline_store.snapshot_version(spark, table_uri)
    doomed = repair.selected_rows(spark, table_uri, version, view, selection).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        per_entity = doomed.groupBy(entity).agg(F.min(date).alias("first"), F.max(date).alias("last")).collect()
        timer.lap("select_s")
        if not per_entity:
            summary["offline"] = {
                "table_uri": table_uri,
                "delta_version": version,
                "rows_deleted": 0,
                "rows_updated": 0,
            }
            summary["online"] = {"status": "unchanged", "rows_upserted": 0, "entities_deleted": 0}
            summary["message"] = "no row matches the selection: nothing changed"
            return
        entities = sorted(r[entity] for r in per_entity)
        first, last = min(r["first"] for r in per_entity), max(r["last"] for r in per_entity)
        recomputed = repair.recomputed_rows(
            spark, table_uri, version, view, doomed, (first, last), at.updated_at, at.run_id
        )
        timer.lap("compute_s")
        previous = publish_log.read(spark, log_uri)
        if previous is None or previous.delta_version != version:
            # The pre-flight publish just recorded this version; anything else means another writer.
            raise online_store.OnlineStoreError(
                f"the publish log {log_uri} does not record Delta version {version} of {table_uri}: "
                "another run is writing this view; retry when it has finished"
            )
        publish_log.write_repair_pending(spark, log_uri, previous, entities)
        lookahead = dt.timedelta(days=max(view.max_window_days - 1, 0))
        result = offline_store.repair_rows(spark, table_uri, doomed, recomputed, view, (first, last + lookahead))
    finally:
        doomed.unpersist()
    summary["offline"] = {
        "table_uri": table_uri,
        "delta_version": result.version,
        "rows_deleted": result.rows_deleted,
        "rows_updated": result.rows_updated,
        "entities_repaired": len(entities),
        "first_date": first.isoformat(),
        "last_date": last.isoformat(),
    }
    summary["online"] = {"status": "pending", "delta_version": result.version}
    timer.lap("offline_write_s")
    summary["online"] = publish.publish(spark, at, result.version, None, entities)
    timer.lap("online_write_s")


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
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    spark = spark or build_spark_session(SessionSettings(app_name=f"feature-job-{args.view}-{args.run_id}"))
    started = time.monotonic()
    summary: dict = {}
    deadline = _start_deadline(spark, args, summary, started)
    try:
        if args.arguments_manifest is not None:
            # The step could not list them (EMR's 10,240 characters): read them, then check them as listed.
            summary["arguments_manifest"] = args.arguments_manifest
            args = parse_args(expand_arguments_manifest(argv, lambda uri: storage.read_text(spark, uri)))
        run(spark, args, summary)
    except (raw_input.InputError, storage.InputNotFoundError, ValueError) as error:
        _fail(spark, args, summary, str(error), started)
        return 3
    except Exception as error:  # noqa: BLE001 - any store failure ends the run with a summary
        traceback.print_exc()
        _fail(spark, args, summary, f"{type(error).__name__}: {error}", started)
        return 1
    finally:
        if deadline is not None:
            deadline.cancel()
    write_summary(spark, args.summary_uri, summary)
    return 0


TIMEOUT_EXIT_CODE = 124  # as timeout(1)


def _start_deadline(spark: SparkSession, args: JobArgs, summary: dict, started: float) -> threading.Timer | None:
    """Ends the process once --timeout-minutes have passed: cancels the Spark jobs, writes the failure
    summary (saying what was committed) and exits 124. A run cut short after its Delta commit is
    finished by the next run's pending-publish step, like any other interrupted publish."""
    if args.timeout_minutes is None:
        return None

    def expire() -> None:
        message = f"timed out after {args.timeout_minutes:g} minutes (--timeout-minutes)"
        try:
            spark.sparkContext.cancelAllJobs()
            _fail(spark, args, summary, message, started)
        finally:
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(TIMEOUT_EXIT_CODE)

    timer = threading.Timer(args.timeout_minutes * 60, expire)
    timer.daemon = True
    timer.start()
    return timer


def _fail(spark: SparkSession, args: JobArgs, summary: dict, message: str, started: float) -> None:
    print(f"feature job failed: {message}", file=sys.stderr)
    summary.update(run_id=args.run_id, view=args.view, mode=args.mode)
    if args.repair is None:
        summary["inputs"] = list(args.inputs)
    else:
        summary["repair"] = args.repair.describe()
    summary.update(status="failed", error=message, finished_at=dt.datetime.now(dt.UTC).isoformat())
    online = summary.get("online") or {}
    if online.get("status") == "pending":
        summary["stores"] = (
            f"Delta version {online['delta_version']} is committed but its online publish did not finish: "
            "the next run of this view (a retry, or the next file) publishes it before anything else"
        )
    summary.setdefault("timings", {})["total_s"] = round(time.monotonic() - started, 3)
    try:
        write_summary(spark, args.summary_uri, summary)
    except Exception as error:  # noqa: BLE001 - the original failure is what matters
        print(f"could not write the summary to {args.summary_uri}: {error}", file=sys.stderr)
