"""Load, online: publishing a committed Delta version to the online store (Keyspaces / Cassandra), as a
resumable step. What is published is, for every entity a run changed, its latest row in the Delta version
the run committed (read back from that version, or taken from the run's own write when that provably
holds it: offline_store.write_rows), with one write timestamp from the job's clock kept above every
earlier publish's (online_store.py says why; publish_log.py keeps the record).
A run first finishes what an earlier run committed and did not publish (`finish_pending`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from . import offline_store, online_store, publish_log
from .feature_view import FeatureView


@dataclass(frozen=True)
class Publication:
    """What one run publishes to and as: the view, its Delta table and publish log, the online store,
    and the run's id and updated_at (recorded in the log)."""

    view: FeatureView
    table_uri: str
    log_uri: str
    target: online_store.CassandraTarget
    run_id: str
    updated_at: dt.datetime


def finish_pending(
    spark: SparkSession, at: Publication, before_publishing: Callable[[], object] = lambda: None
) -> dict | None:
    """Re-publishes what an earlier run committed to Delta but did not finish publishing: every entity
    with a row changed after the logged publish (all of them when there is no log yet), from the newest
    Delta version. None when the online store is already up to date."""
    if not offline_store.table_exists(spark, at.table_uri):
        return None
    version = offline_store.snapshot_version(spark, at.table_uri)
    previous = publish_log.read(spark, at.log_uri)
    if previous is not None and previous.delta_version >= version:
        return None
    entity, date = at.view.entity_column, at.view.event_date_column
    table = offline_store.read_version(spark, at.table_uri, version)
    since = publish_log.changed_since(previous)
    if since is not None:
        table = table.where(F.col(offline_store.UPDATED_AT) > F.lit(since.replace(tzinfo=None)).cast("timestamp"))
    changes = table.groupBy(entity).agg(F.max(date).alias("_from"))
    before_publishing()
    repaired = previous.repaired_entities if previous is not None else ()
    published = publish(spark, at, version, changes, repaired)
    return {"from_delta_version": previous.delta_version if previous else None, **published}


def publish(
    spark: SparkSession,
    at: Publication,
    version: int,
    changes: DataFrame | None,
    repaired: tuple[str, ...] | list[str] = (),
    latest: offline_store.LatestRows | None = None,
) -> dict:
    """Writes the latest row of every changed entity, read from the committed Delta version, with one
    write timestamp after every earlier publish's; then records the version in the publish log.
    repaired: entities a repair removed rows of (their latest remaining row may be of any date); those
    left with no row at all have their online row deleted, at the same timestamp, after the writes.
    latest: those rows and their count, when the run's write already shows them
    (offline_store.WriteResult.latest): nothing is read back or counted."""
    view = at.view
    previous = publish_log.read(spark, at.log_uri)
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
    read_back = latest is None
    rows = latest_rows(spark, view, at.table_uri, version, changes) if read_back else latest.rows
    online = online_store.online_rows(rows, view, write_micros)
    if latest is not None and not repaired:
        # The run's own rows, counted already: written as they are, with no cache and no count.
        online_count, gone = latest.count, set()
        if online_count:
            online_store.write_online(online, view, at.target)
    else:
        online = online.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            online_count = online.count()
            gone = set(repaired) - {r["entity_id"] for r in online.select("entity_id").collect()} if repaired else set()
            if online_count:
                online_store.write_online(online, view, at.target)
        finally:
            online.unpersist()
    if gone:
        with online_store.DriverSession(spark, at.target) as session:
            session.delete_entities(view.online_table, sorted(gone), write_micros)
    publish_log.write(
        spark,
        at.log_uri,
        publish_log.PublishRecord(
            view=view.name,
            delta_version=version,
            updated_at=at.updated_at.isoformat(),
            write_micros=write_micros,
            run_id=at.run_id,
            published_at=dt.datetime.now(dt.UTC).isoformat(),
        ),
    )
    return {
        "status": "published",
        "keyspace": at.target.keyspace,
        "table": view.online_table,
        "delta_version": version,
        "rows_upserted": online_count,
        "read_back": read_back,
        "entities_deleted": len(gone),
        "write_timestamp_micros": write_micros,
        "publish_log": at.log_uri,
    }


def latest_rows(
    spark: SparkSession, view: FeatureView, table_uri: str, version: int, changes: DataFrame | None
) -> DataFrame:
    """The latest row of each changed entity in a committed Delta version, so the online row equals the
    offline row (including updated_at of the run that last changed it). changes: (entity, _from), the
    newest changed date; the latest row is at or after it."""
    entity, date = view.entity_column, view.event_date_column
    newest_first = Window.partitionBy(entity).orderBy(F.col(date).desc())
    low = None if changes is None else changes.agg(F.min("_from")).first()[0]
    if low is None:
        return offline_store.read_version(spark, table_uri, version).limit(0)
    table = offline_store.read_version(spark, table_uri, version).where(
        F.col(date) >= F.lit(low.isoformat()).cast("date")
    )
    candidates = table.join(F.broadcast(changes), entity).where(F.col(date) >= F.col("_from"))
    return (
        candidates.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank", "_from")
    )
