"""The feature job: extract (raw CSV → validated rows) → transform (point-in-time features) → load
(Delta MERGE, then the latest row per entity to Cassandra/Keyspaces). Mode `repair` instead removes
wrong rows from both stores (repair.py). `main` only wires the steps; the argument list is a contract
with the submit function (docs/SPARK_JOB.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from . import offline_store, online_store, publish_log, raw_input, repair, storage
from .feature_view import FeatureView, parse_compiled_view
from .features import compute_features
from .session import SessionSettings, build_spark_session

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INPUT_MODES = ("full", "incremental")


@dataclass(frozen=True)
class JobArgs:
    view: str
    inputs: tuple[str, ...]
    mode: str
    feature_view: str
    offline_uri: str
    rejects_uri: str | None  # None in mode repair (it reads no input)
    summary_uri: str
    run_id: str
    cassandra: online_store.CassandraTarget = field(default_factory=online_store.CassandraTarget)
    max_reject_share: float = 0.01
    timeout_minutes: float | None = None
    repair: repair.RepairSelection | None = None  # mode repair only


def parse_args(argv: list[str]) -> JobArgs:
    parser = argparse.ArgumentParser(
        prog="feature_job.py", description="Computes a feature view's features into the offline and online stores."
    )
    parser.add_argument("--view", required=True)
    parser.add_argument("--input", action="append", dest="inputs", help="repeatable; modes full and incremental")
    parser.add_argument("--mode", required=True, choices=(*_INPUT_MODES, "repair"))
    parser.add_argument("--feature-view", required=True)
    parser.add_argument("--offline-uri", required=True)
    parser.add_argument("--rejects-uri", help="modes full and incremental")
    parser.add_argument(
        "--repair-entity", action="append", dest="repair_entities", help="repeatable; mode repair: an entity to remove"
    )
    parser.add_argument("--repair-from", help="mode repair: first day to remove, yyyy-MM-dd (inclusive)")
    parser.add_argument("--repair-to", help="mode repair: last day to remove, yyyy-MM-dd (inclusive)")
    parser.add_argument("--summary-uri", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--keyspace", default="feature_store")
    parser.add_argument("--cassandra-host", default="127.0.0.1")
    parser.add_argument("--cassandra-port", type=int, default=9042)
    parser.add_argument("--cassandra-datacenter", default="datacenter1")
    parser.add_argument("--cassandra-profile")
    parser.add_argument("--max-reject-share", type=float, default=0.01)
    parser.add_argument(
        "--timeout-minutes",
        type=float,
        help="end the run (exit 124, failure summary) after this long; EMR steps have no timeout of their own",
    )
    ns = parser.parse_args(argv)
    if not 0 <= ns.max_reject_share <= 1:
        parser.error("--max-reject-share must be between 0 and 1")
    if not 1 <= ns.cassandra_port <= 65535:
        parser.error("--cassandra-port must be between 1 and 65535")
    if ns.timeout_minutes is not None and not 0 < ns.timeout_minutes <= 7 * 24 * 60:
        parser.error("--timeout-minutes must be more than 0 and at most a week")
    selection = _repair_selection(parser, ns)
    return JobArgs(
        view=ns.view,
        inputs=tuple(ns.inputs or ()),
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
        timeout_minutes=ns.timeout_minutes,
        repair=selection,
    )


def _repair_selection(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> repair.RepairSelection | None:
    """The input arguments of full/incremental runs and the selection of a repair exclude each other."""
    repair_given = [
        flag
        for flag, value in (
            ("--repair-entity", ns.repair_entities),
            ("--repair-from", ns.repair_from),
            ("--repair-to", ns.repair_to),
        )
        if value is not None
    ]
    if ns.mode in _INPUT_MODES:
        if not ns.inputs:
            parser.error(f"--input is required with --mode {ns.mode}")
        if ns.rejects_uri is None:
            parser.error(f"--rejects-uri is required with --mode {ns.mode}")
        if repair_given:
            parser.error(f"{', '.join(repair_given)} only go with --mode repair")
        return None
    if ns.inputs:
        parser.error("--mode repair reads no input: remove --input")
    if ns.rejects_uri is not None:
        parser.error("--mode repair rejects no rows: remove --rejects-uri")
    if not ns.repair_entities and ns.repair_from is None and ns.repair_to is None:
        parser.error("--mode repair needs --repair-entity and/or --repair-from with --repair-to")
    if (ns.repair_from is None) != (ns.repair_to is None):
        parser.error("--repair-from and --repair-to go together (a closed date range)")
    entities = tuple(dict.fromkeys(ns.repair_entities or ()))
    if any(not e for e in entities):
        parser.error("--repair-entity must not be empty")
    date_from = _day(parser, "--repair-from", ns.repair_from)
    date_to = _day(parser, "--repair-to", ns.repair_to)
    if date_from is not None and date_from > date_to:
        parser.error(f"--repair-from {date_from} is after --repair-to {date_to}")
    return repair.RepairSelection(entities=entities, date_from=date_from, date_to=date_to)


def _day(parser: argparse.ArgumentParser, flag: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        parser.error(f"{flag} {value!r} is not a day in the form yyyy-MM-dd")


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
    # Before anything is committed: the online store answers and has the view's table, and a publish an
    # earlier run left unfinished is finished first (the stores never stay apart).
    online_store.check_reachable(spark, view, args.cassandra)
    table_uri = offline_store.table_uri(args.offline_uri, view)
    log_uri = publish_log.log_uri(args.offline_uri, view)
    caught_up = _finish_pending_publish(spark, view, args, table_uri, log_uri, clock)
    if caught_up is not None:
        summary["recovered_publish"] = caught_up
    timer.lap("preflight_s")

    if args.repair is not None:
        _repair(spark, view, args, args.repair, table_uri, log_uri, clock, summary, timer)
        summary["status"] = "succeeded"
        return _finish(summary, timer)

    files = storage.list_input_files(spark, list(args.inputs))
    raw_input.check_headers(spark, view, files)
    summary["input_files"] = files
    classified_input = raw_input.read_and_classify(spark, view, files, today=clock.today)
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
        rows, _ = _feature_rows(spark, view, args, accepted_df, table_uri, clock.updated_at)
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
            # Said before publishing: if the publish dies, the failure summary names what Delta holds.
            summary["online"] = {"status": "pending", "delta_version": merge.version}
            timer.lap("offline_write_s")
            changes = _changed_by_run(spark, view, table_uri, merge.version, args.run_id, written)
            summary["online"] = _publish(spark, view, args, table_uri, merge.version, changes, clock, log_uri)
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


def _repair(
    spark,
    view: FeatureView,
    args: JobArgs,
    selection: repair.RepairSelection,
    table_uri: str,
    log_uri: str,
    clock: JobClock,
    summary: dict,
    timer: _Timer,
) -> None:
    """Deletes the selected rows and recomputes the rows whose windows held them, in one Delta commit,
    then publishes: the latest remaining row of every entity that lost rows, or an online delete for an
    entity left with none. The entities are in the publish log before the commit, so a publish that
    dies after it is finished, deletes included, by the next run."""
    selection.check(view)
    entity, date = view.entity_column, view.event_date_column
    if not offline_store.table_exists(spark, table_uri):
        summary["offline"] = {"table_uri": table_uri, "delta_version": None, "rows_deleted": 0, "rows_updated": 0}
        summary["message"] = "the view has no Delta table yet: nothing to repair"
        return
    version = offline_store.current_version(spark, table_uri)
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
            spark, table_uri, version, view, doomed, (first, last), clock.updated_at, args.run_id
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
    summary["online"] = _publish(spark, view, args, table_uri, result.version, None, clock, log_uri, entities)
    timer.lap("online_write_s")


def _changed_by_run(spark, view: FeatureView, table_uri: str, version: int, run_id: str, written) -> DataFrame:
    """Entities whose rows this run inserted or changed (a MERGE leaves equal rows, and their run_id,
    untouched), with the newest changed date: (entity, _from). A re-run that changes nothing publishes
    nothing."""
    entity, date = view.entity_column, view.event_date_column
    return (
        offline_store.read_version(spark, table_uri, version)
        .where(
            (F.col(date) >= F.lit(written["first"].isoformat()).cast("date"))
            & (F.col(date) <= F.lit(written["last"].isoformat()).cast("date"))
            & (F.col(offline_store.RUN_ID) == F.lit(run_id))
        )
        .groupBy(entity)
        .agg(F.max(date).alias("_from"))
    )


def _finish_pending_publish(
    spark, view: FeatureView, args: JobArgs, table_uri: str, log_uri: str, clock: JobClock
) -> dict | None:
    """Re-publishes what an earlier run committed to Delta but did not finish publishing: every entity
    with a row changed after the logged publish (all of them when there is no log yet), from the newest
    Delta version. None when the online store is already up to date."""
    if not offline_store.table_exists(spark, table_uri):
        return None
    version = offline_store.current_version(spark, table_uri)
    previous = publish_log.read(spark, log_uri)
    if previous is not None and previous.delta_version >= version:
        return None
    entity, date = view.entity_column, view.event_date_column
    table = offline_store.read_version(spark, table_uri, version)
    since = publish_log.changed_since(previous)
    if since is not None:
        table = table.where(F.col(offline_store.UPDATED_AT) > F.lit(since.replace(tzinfo=None)).cast("timestamp"))
    changes = table.groupBy(entity).agg(F.max(date).alias("_from"))
    repaired = previous.repaired_entities if previous is not None else ()
    published = _publish(spark, view, args, table_uri, version, changes, clock, log_uri, repaired)
    return {"from_delta_version": previous.delta_version if previous else None, **published}


def _publish(
    spark,
    view: FeatureView,
    args: JobArgs,
    table_uri: str,
    version: int,
    changes: DataFrame | None,
    clock: JobClock,
    log_uri: str,
    repaired: tuple[str, ...] | list[str] = (),
) -> dict:
    """Writes the latest row of every changed entity, read from the committed Delta version, with one
    write timestamp after every earlier publish's; then records the version in the publish log.
    repaired: entities a repair removed rows of (their latest remaining row may be of any date); those
    left with no row at all have their online row deleted, at the same timestamp, after the writes."""
    previous = publish_log.read(spark, log_uri)
    now = dt.datetime.now(dt.UTC)
    write_micros = publish_log.next_write_micros(online_store.to_micros(now), previous)
    online_store.check_write_timestamp(write_micros, now)
    entity = view.entity_column
    if repaired:
        anywhere = spark.createDataFrame([(e,) for e in repaired], [entity]).select(
            entity, F.lit(dt.date.min.isoformat()).cast("date").alias("_from")
        )
        changes = anywhere if changes is None else changes.unionByName(anywhere)
        changes = changes.groupBy(entity).agg(F.min("_from").alias("_from"))
    latest = _latest_rows(spark, view, table_uri, version, changes)
    online = online_store.online_rows(latest, view, write_micros).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        online_count = online.count()
        gone = set(repaired) - {r["entity_id"] for r in online.select("entity_id").collect()} if repaired else set()
        if online_count:
            online_store.write_online(online, view, args.cassandra)
    finally:
        online.unpersist()
    if gone:
        with online_store.DriverSession(spark, args.cassandra) as session:
            session.delete_entities(view.online_table, sorted(gone), write_micros)
    publish_log.write(
        spark,
        log_uri,
        publish_log.PublishRecord(
            view=view.name,
            delta_version=version,
            updated_at=clock.updated_at.isoformat(),
            write_micros=write_micros,
            run_id=args.run_id,
            published_at=dt.datetime.now(dt.UTC).isoformat(),
        ),
    )
    return {
        "status": "published",
        "keyspace": args.cassandra.keyspace,
        "table": view.online_table,
        "delta_version": version,
        "rows_upserted": online_count,
        "entities_deleted": len(gone),
        "write_timestamp_micros": write_micros,
        "publish_log": log_uri,
    }


def _latest_rows(spark, view: FeatureView, table_uri: str, version: int, changes: DataFrame) -> DataFrame:
    """The latest row of each changed entity in a committed Delta version, so the online row equals the
    offline row (including updated_at of the run that last changed it). changes: (entity, _from), the
    newest changed date; the latest row is at or after it."""
    entity, date = view.entity_column, view.event_date_column
    low = None if changes is None else changes.agg(F.min("_from")).first()[0]
    if low is None:
        return offline_store.read_version(spark, table_uri, version).limit(0)
    table = offline_store.read_version(spark, table_uri, version).where(
        F.col(date) >= F.lit(low.isoformat()).cast("date")
    )
    candidates = table.join(F.broadcast(changes), entity).where(F.col(date) >= F.col("_from"))
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
    deadline = _start_deadline(spark, args, summary, started)
    try:
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
