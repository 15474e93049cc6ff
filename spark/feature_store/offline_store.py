"""The offline store: one Delta table per view at <offline-uri>/<view>, one row per (entity, date) with
every feature, plus updated_at/run_id of the run that last changed the row.

Partitioning: by month (a generated column `_feature_month` = yyyy-MM of the date). The seed workload is
~3.5M narrow rows (~150 MB of Parquet): partitioning by day would make ~830 tiny partitions, no
partitioning would make every daily MERGE scan and possibly rewrite files spanning all dates. Months give
~28 partitions of ~125k rows; a daily incremental MERGE touches one or two of them, history reads and
point-in-time training reads prune by date, and Delta derives the month filter from date predicates.

Writes (write_rows) compare the computed rows with the stored ones first and commit only the rows that
are new or differ in a value: a re-run that changes nothing commits no version and rewrites no file, and
one that changes some rows leaves the others (including updated_at and run_id) exactly as they were."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from .feature_view import FeatureView

MONTH_COLUMN = "_feature_month"
UPDATED_AT = "updated_at"
RUN_ID = "run_id"
_SPARK_TYPES = {"double": "double", "int": "int", "bigint": "bigint", "string": "string"}


def table_uri(offline_uri: str, view: FeatureView) -> str:
    base = offline_uri.rstrip("/")
    if ":" not in base.split("/", 1)[0]:
        # A plain local path. Delta reads a relative location as a table *name* and refuses it.
        base = os.path.abspath(base)
    return f"{base}/{view.name}"


def stored_sources(view: FeatureView) -> dict[str, str]:
    """Where each source column a feature uses lives in the table: a passthrough feature that copies it,
    or a hidden `_source_<name>` column for a column only aggregates use. Incremental runs rebuild their
    history rows from these columns."""
    copies: dict[str, str] = {}
    for feature in view.features:
        if feature.kind == "passthrough":
            copies.setdefault(feature.source, feature.name)
    used = {f.source for f in view.features}
    return {s: copies.get(s, f"_source_{s}") for s in sorted(used)}


def hidden_source_columns(view: FeatureView) -> list[str]:
    return [column for source, column in stored_sources(view).items() if column == f"_source_{source}"]


def table_columns(view: FeatureView) -> list[str]:
    """Data columns in table order (the generated month column is not listed: Delta computes it)."""
    return [
        view.entity_column,
        view.event_date_column,
        *(f.name for f in view.features),
        *hidden_source_columns(view),
        UPDATED_AT,
        RUN_ID,
    ]


def table_schema(view: FeatureView) -> StructType:
    types = view.source_types
    return StructType(
        [
            StructField(view.entity_column, StringType(), False),
            StructField(view.event_date_column, DateType(), False),
            *(StructField(f.name, _spark_type(f.type), True) for f in view.features),
            *(StructField(c, _spark_type(types[c[len("_source_") :]]), True) for c in hidden_source_columns(view)),
            StructField(UPDATED_AT, TimestampType(), False),
            StructField(RUN_ID, StringType(), False),
        ]
    )


def _spark_type(name: str):
    return {"double": DoubleType(), "int": IntegerType(), "bigint": LongType(), "string": StringType()}[name]


# Windowed sums, means and standard deviations of double sources: practically every value is new, so a Parquet
# dictionary never pays for them. Parquet's writer still starts one per column chunk, hashes every value into it
# and, at the end, finds it larger than the plain values and re-encodes them (the same bytes on disk as without
# it, measured: 373.9 MB either way for 3.5M rows). For these columns the dictionary is off (a per-column Parquet
# option, set as a table property: Delta passes a table's properties to the Parquet writer of every write of it);
# counts, maxima and copied sources keep it, since their values repeat.
UNIQUE_VALUED_AGGREGATES = ("sum", "mean", "stddev")


def parquet_properties(view: FeatureView) -> dict[str, str]:
    """Table properties Delta hands to the Parquet writer: no dictionary for the unique-valued aggregates."""
    return {
        f"parquet.enable.dictionary#{f.name}": "false"
        for f in view.aggregate_features
        if f.aggregate in UNIQUE_VALUED_AGGREGATES and f.type == "double"
    }


def ensure_table(spark: SparkSession, uri: str, view: FeatureView) -> DeltaTable:
    builder = DeltaTable.createIfNotExists(spark).location(uri).addColumns(table_schema(view))
    builder = builder.addColumn(
        MONTH_COLUMN, "STRING", generatedAlwaysAs=f"date_format({view.event_date_column}, 'yyyy-MM')"
    )
    # File statistics for the key columns only (the first two: entity, date), the ones MERGE and point-in-time
    # reads prune on; statistics of every feature column cost write time and are never used.
    builder = (
        builder.partitionedBy(MONTH_COLUMN)
        .property("delta.appendOnly", "false")
        .property("delta.dataSkippingNumIndexedCols", "2")
    )
    for key, value in parquet_properties(view).items():
        builder = builder.property(key, value)
    return builder.execute()


def table_exists(spark: SparkSession, uri: str) -> bool:
    return DeltaTable.isDeltaTable(spark, uri)


def to_table_rows(
    features: DataFrame, raw_rows: DataFrame | None, view: FeatureView, updated_at, run_id: str
) -> DataFrame:
    """Feature rows in table layout; hidden source columns (if any) come from the raw rows."""
    df = features
    hidden = hidden_source_columns(view)
    if hidden:
        keys = [view.entity_column, view.event_date_column]
        sources = raw_rows.select(*keys, *(F.col(c[len("_source_") :]).alias(c) for c in hidden))
        df = df.join(sources, keys, "left")
    return df.select(
        *(F.col(c) for c in table_columns(view) if c not in (UPDATED_AT, RUN_ID)),
        F.lit(updated_at).cast("timestamp").alias(UPDATED_AT),
        F.lit(run_id).alias(RUN_ID),
    )


def _same_key(view: FeatureView, date_range: tuple) -> str:
    """MERGE condition: same (entity, date). Date bounds on the target let Delta skip months (and files)
    the source cannot touch."""
    entity, date = view.entity_column, view.event_date_column
    first, last = date_range
    return (
        f"t.{entity} = s.{entity} AND t.{date} = s.{date} "
        f"AND t.{date} >= DATE'{first.isoformat()}' AND t.{date} <= DATE'{last.isoformat()}'"
    )


def _values_differ(view: FeatureView, mine: str = "s.{}", stored: str = "t.{}") -> Column:
    """Whether a computed row and a stored row (column names from the two patterns) differ in a value
    (nulls compare equal). updated_at and run_id are not values: a row recomputed to the same values is
    left as it was."""
    entity, date = view.entity_column, view.event_date_column
    changed: Column = F.lit(False)
    for column in table_columns(view):
        if column not in (entity, date, UPDATED_AT, RUN_ID):
            changed = changed | ~F.col(mine.format(column)).eqNullSafe(F.col(stored.format(column)))
    return changed


@dataclass(frozen=True)
class LatestRows:
    """The latest row of each changed entity (table layout), one per entity, and how many there are
    (counted with the check that found them, so the publish need not count them again)."""

    rows: DataFrame
    count: int


@dataclass(frozen=True)
class WriteResult:
    """What one write did. version: the table version after it (unchanged when nothing changed: no
    commit). rows: the computed rows offered; inserted/updated: the rows committed; unchanged: rows equal
    to the stored ones, left alone. changes: (entity, _from), the newest committed date per entity, for
    the publish (None: every entity of a table this write created). latest: the committed latest row of
    every changed entity when the written rows show it (`_latest_written` says when), else None: the
    publish reads it back from the committed version. compared: whether the rows were compared with
    stored rows (False: the table held nothing on or after their first date, so all were new)."""

    version: int
    rows: int
    inserted: int
    updated: int
    unchanged: int
    entities: int
    dates: int
    first: dt.date | None
    last: dt.date | None
    changes: DataFrame | None
    latest: LatestRows | None = None
    compared: bool = False


@dataclass(frozen=True)
class Span:
    """What a set of table rows holds, for the run summary: rows, entities, dates, first and last date."""

    rows: int
    entities: int
    dates: int
    first: dt.date | None
    last: dt.date | None


NOT_READ = object()  # write_rows' stored_newest when the caller has not read it
_FOUND = "_stored"
_CHANGED = "_changed"
_NEWEST = "_newest"


def _span(view: FeatureView) -> list[Column]:
    """Aggregates of a set of table rows for the run summary: rows, entities, dates, first, last."""
    entity, date = view.entity_column, view.event_date_column
    return [
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(entity).alias("entities"),
        F.countDistinct(date).alias("dates"),
        F.min(date).alias("first"),
        F.max(date).alias("last"),
    ]


def write_rows(
    spark: SparkSession,
    uri: str,
    rows: DataFrame,
    view: FeatureView,
    date_range: tuple,
    computed: Callable[[], None] = lambda: None,
    stored_newest: dt.date | object | None = NOT_READ,
    offered: Span | None = None,
) -> WriteResult:
    """Writes the rows (table layout) that are new or differ in a value from the stored row with the same
    (entity, date); equal rows, with their updated_at and run_id, are left as they are. Nothing changed:
    no commit. Only new keys: an append. Otherwise one MERGE of the changed rows only, so it rewrites
    only the files that hold them. Into a table that does not exist yet the rows are appended as they are
    computed (one pass, nothing cached). date_range: first and last date of the rows (or wider bounds);
    computed() is called once the rows are evaluated (for a new table, that is once they are written);
    stored_newest: the table's newest_date when the caller has read it (one Delta metadata query less),
    else it is read here; offered: the Span of the rows when the caller knows it without evaluating them
    (a new table reports it instead of reading its first version back). The view's run lock (one run per
    view) means no other writer commits between those reads, the comparison and the commit."""
    if not table_exists(spark, uri):
        return _create_with_rows(spark, uri, rows, view, computed, offered)
    entity, date = view.entity_column, view.event_date_column
    columns = table_columns(view)
    values = [c for c in columns if c not in (entity, date, UPDATED_AT, RUN_ID)]
    first, last = date_range
    newest = newest_date(spark, uri, view) if stored_newest is NOT_READ else stored_newest
    against_stored = holds_rows_from(newest, first)
    if not against_stored:
        # Nothing stored on or after the rows' first date (a daily file of new days): every row is new,
        # and the table need not be read for the comparison.
        compared = rows.select(*columns, F.lit(False).alias(_FOUND), F.lit(True).alias(_CHANGED))
    else:
        stored = (
            spark.read.format("delta")
            .load(uri)
            .where(
                (F.col(date) >= F.lit(first.isoformat()).cast("date"))
                & (F.col(date) <= F.lit(last.isoformat()).cast("date"))
            )
            .select(entity, date, *(F.col(c).alias(f"_stored_{c}") for c in values), F.lit(True).alias(_FOUND))
        )
        differs = _values_differ(view, "{}", "_stored_{}")
        compared = (
            rows.select(*columns)
            .join(stored, [entity, date], "left")
            .select(
                *columns, F.col(_FOUND).isNotNull().alias(_FOUND), (F.col(_FOUND).isNull() | differs).alias(_CHANGED)
            )
        )
    # Checkpointed, not cached: the comparison reads the table, and a cached plan that reads a Delta table
    # is recomputed once the table changes (Delta invalidates it on commit), when every row would compare
    # equal to itself. A checkpoint holds the result of the comparison made before the commit.
    compared = compared.localCheckpoint(eager=True)
    computed()
    counts = compared.agg(
        *_span(view),
        F.sum((F.col(_CHANGED) & ~F.col(_FOUND)).cast("long")).alias("inserted"),
        F.sum((F.col(_CHANGED) & F.col(_FOUND)).cast("long")).alias("updated"),
    ).first()
    inserted, updated = int(counts["inserted"] or 0), int(counts["updated"] or 0)
    changed = compared.where(F.col(_CHANGED)).select(*columns)
    # For the publish: the newest committed date of each changed entity (_from), and its newest row offered.
    per_entity = (
        compared.groupBy(entity)
        .agg(F.max(F.when(F.col(_CHANGED), F.col(date))).alias("_from"), F.max(date).alias(_NEWEST))
        .where(F.col("_from").isNotNull())
        .localCheckpoint(eager=True)
    )
    changes = per_entity.select(entity, "_from")
    latest = _latest_written(view, changed, per_entity, newest) if inserted or updated else None
    if inserted and not updated:
        changed.write.format("delta").mode("append").save(uri)
    elif updated:
        (
            DeltaTable.forPath(spark, uri)
            .alias("t")
            .merge(changed.alias("s"), _same_key(view, date_range))
            .whenMatchedUpdate(set={c: F.col(f"s.{c}") for c in columns})
            .whenNotMatchedInsert(values={c: F.col(f"s.{c}") for c in columns})
            .execute()
        )
    return WriteResult(
        version=snapshot_version(spark, uri),
        rows=int(counts["rows"]),
        inserted=inserted,
        updated=updated,
        unchanged=int(counts["rows"]) - inserted - updated,
        entities=int(counts["entities"]),
        dates=int(counts["dates"]),
        first=counts["first"],
        last=counts["last"],
        changes=changes,
        latest=latest,
        compared=against_stored,
    )


def _latest_written(
    view: FeatureView, changed: DataFrame, per_entity: DataFrame, stored_newest: dt.date | None
) -> LatestRows | None:
    """The latest row of every changed entity once this write commits, taken from the changed rows when
    they show it, so the publish need not read the new version back (a snapshot of the new version and a
    scan: seconds of a daily run). They show it when (1) each changed entity's newest offered row is one
    this write changes: its committed row is exactly that row, updated_at and run_id included; and (2) the
    table holds no row dated after the earliest of those newest dates: no stored row, offered or not, is
    newer than an entity's newest offered row. (2) is stored_newest, read before the commit
    (newest_date). A daily file of new days meets both; a correction of a day older than the
    longest window, or a row recomputed to the values it had, does not: None, and the publish reads back."""
    entity, date = view.entity_column, view.event_date_column
    check = per_entity.agg(
        F.min(_NEWEST).alias("horizon"),
        F.sum((F.col("_from") != F.col(_NEWEST)).cast("long")).alias("stale"),
        F.count(F.lit(1)).alias("entities"),
    ).first()
    if check["horizon"] is None or check["stale"]:
        return None
    if stored_newest is not None and stored_newest > check["horizon"]:
        return None
    newest = per_entity.select(entity, F.col(_NEWEST).alias(date))
    # One row per entity: (entity, date) is unique among the changed rows.
    return LatestRows(changed.join(F.broadcast(newest), [entity, date]), int(check["entities"]))


def _create_with_rows(
    spark: SparkSession,
    uri: str,
    rows: DataFrame,
    view: FeatureView,
    computed: Callable[[], None],
    offered: Span | None,
) -> WriteResult:
    """A new table: the rows are appended as they are computed (nothing cached, no comparison); the
    counts are those offered, or else read back from the version written."""
    ensure_table(spark, uri, view)
    rows.select(*table_columns(view)).write.format("delta").mode("append").save(uri)
    computed()
    version = snapshot_version(spark, uri)
    if offered is None:
        counts = read_version(spark, uri, version).agg(*_span(view)).first()
        offered = Span(
            int(counts["rows"]), int(counts["entities"]), int(counts["dates"]), counts["first"], counts["last"]
        )
    return WriteResult(
        version=version,
        rows=offered.rows,
        inserted=offered.rows,
        updated=0,
        unchanged=0,
        entities=offered.entities,
        dates=offered.dates,
        first=offered.first,
        last=offered.last,
        changes=None,
    )


@dataclass(frozen=True)
class RepairResult:
    version: int
    rows_deleted: int
    rows_updated: int


def repair_rows(
    spark: SparkSession, uri: str, doomed: DataFrame, recomputed: DataFrame, view: FeatureView, date_range: tuple
) -> RepairResult:
    """One MERGE, so one commit: deletes the doomed rows (table layout, read from the table) and rewrites
    each recomputed row whose values differ. A reader sees the table before or after the repair, never
    half of it; a re-run finds nothing to delete and nothing different. date_range bounds every key of
    both sets, for pruning."""
    columns = table_columns(view)
    delete_flag = "_repair_delete"
    source = doomed.select(*columns, F.lit(True).alias(delete_flag)).unionByName(
        recomputed.select(*columns, F.lit(False).alias(delete_flag))
    )
    changed = _values_differ(view)
    table = DeltaTable.forPath(spark, uri)
    (
        table.alias("t")
        .merge(source.alias("s"), _same_key(view, date_range))
        .whenMatchedDelete(condition=F.col(f"s.{delete_flag}"))
        .whenMatchedUpdate(condition=~F.col(f"s.{delete_flag}") & changed, set={c: F.col(f"s.{c}") for c in columns})
        .execute()
    )
    last_commit = table.history(1).select("version", "operationMetrics").first()
    metrics = last_commit["operationMetrics"] or {}
    return RepairResult(
        int(last_commit["version"]),
        int(metrics.get("numTargetRowsDeleted", 0)),
        int(metrics.get("numTargetRowsUpdated", 0)),
    )


def snapshot_version(spark: SparkSession, uri: str) -> int:
    """The table's newest version, from Delta's log handle (DeltaLog.update: no Spark job). The public
    DeltaTable.history(1) and detail() each run a Spark job over the log: 4-8 s on a local table,
    measured, at every step that asked."""
    jvm = spark._jvm  # noqa: SLF001 - py4j gateway to Delta's log handle
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, uri)  # noqa: SLF001
    return int(log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).version())


def newest_date(spark: SparkSession, uri: str, view: FeatureView) -> dt.date | None:
    """The newest event date in the table (None: no rows), from Delta's file statistics: a metadata-only
    MAX where every file has them, a scan of the date column otherwise."""
    return spark.read.format("delta").load(uri).agg(F.max(view.event_date_column)).first()[0]


def holds_rows_from(newest: dt.date | None, day: dt.date) -> bool:
    """Whether a table whose newest date is `newest` (newest_date; None: no rows) holds a row dated on or
    after `day`. When it does not, rows dated from `day` on are all new and no stored row depends on them."""
    return newest is not None and newest >= day


def read_version(spark: SparkSession, uri: str, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(uri)


def read_around(
    spark: SparkSession,
    uri: str,
    view: FeatureView,
    bounds: DataFrame,
    date_range: tuple,
    version: int | None = None,
) -> tuple[DataFrame, DataFrame]:
    """The stored rows around changed days (bounds: entity, _first, _last per entity; date_range: the
    first and last changed day), for an incremental run and a repair alike. With W the longest window,
    only the rows dated _first.._last + W - 1 can change, and their windows reach back to _first - (W - 1).
    Returns (the windows' history: only the columns aggregates use; the rows that can change, with every
    source column)."""
    lookahead = view.max_window_days - 1
    history = read_history(spark, uri, view, bounds, lookahead, lookahead, date_range, version)
    rewritable = read_history(spark, uri, view, bounds, 0, lookahead, date_range, version, every_source=True)
    return history, rewritable


def read_history(
    spark: SparkSession,
    uri: str,
    view: FeatureView,
    bounds: DataFrame,
    lookback_days: int,
    lookahead_days: int,
    date_range: tuple,
    version: int | None = None,
    every_source: bool = False,
    keep_bounds: bool = False,
) -> DataFrame:
    """Source rows already in the table that the new rows' features depend on (lookback) or that
    depend on the new rows (lookahead), per entity; in the same layout as accepted input rows.
    bounds: entity, _first, _last (the new rows' date range per entity); version: the table version
    to read (default: the newest); every_source: read every source column (default: only the columns
    aggregates use, the ones a window needs; the others are null, a fraction of the width); keep_bounds:
    each row keeps its entity's _first and _last."""
    entity, date = view.entity_column, view.event_date_column
    first, last = date_range
    low = first - dt.timedelta(days=lookback_days)
    high = last + dt.timedelta(days=lookahead_days)
    source = spark.read.format("delta").load(uri) if version is None else read_version(spark, uri, version)
    locations = stored_sources(view)
    types = view.source_types
    windowed = {f.source for f in view.aggregate_features}
    columns = [F.col(entity), F.col(date)]
    for name in (c.name for c in view.source_columns):
        if name in locations and (every_source or name in windowed):
            columns.append(F.col(locations[name]).cast(_SPARK_TYPES[types[name]]).alias(name))
        else:  # used by no feature, or only copied by one (not read for a window)
            columns.append(F.lit(None).cast(_SPARK_TYPES[types[name]]).alias(name))
    dated = F.col(date).between(F.lit(low.isoformat()).cast("date"), F.lit(high.isoformat()).cast("date"))
    joined = (
        source.where(dated)
        .select(*columns)
        .join(F.broadcast(bounds), entity)
        .where(
            (F.col(date) >= F.date_sub(F.col("_first"), lookback_days))
            & (F.col(date) <= F.date_add(F.col("_last"), lookahead_days))
        )
    )
    kept = ("_first", "_last") if keep_bounds else ()
    return joined.select(entity, date, *(c.name for c in view.source_columns), *kept)
