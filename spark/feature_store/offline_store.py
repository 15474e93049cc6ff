"""The offline store: one Delta table per view at <offline-uri>/<view>, one row per (entity, date) with
every feature, plus updated_at/run_id of the run that last changed the row.

Partitioning: by month (a generated column `_feature_month` = yyyy-MM of the date). The seed workload is
~3.5M narrow rows (~150 MB of Parquet): partitioning by day would make ~830 tiny partitions, no
partitioning would make every daily MERGE scan and possibly rewrite files spanning all dates. Months give
~28 partitions of ~125k rows; a daily incremental MERGE touches one or two of them, history reads and
point-in-time training reads prune by date, and Delta derives the month filter from date predicates.

Writes are MERGE upserts on (entity, date). A matched row is only rewritten when a value differs, so a
re-run leaves the table's rows (including updated_at and run_id) exactly as they were."""

from __future__ import annotations

import datetime as dt
import os
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


def ensure_table(spark: SparkSession, uri: str, view: FeatureView) -> DeltaTable:
    builder = DeltaTable.createIfNotExists(spark).location(uri).addColumns(table_schema(view))
    builder = builder.addColumn(
        MONTH_COLUMN, "STRING", generatedAlwaysAs=f"date_format({view.event_date_column}, 'yyyy-MM')"
    )
    builder = builder.partitionedBy(MONTH_COLUMN).property("delta.appendOnly", "false")
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


def _values_differ(view: FeatureView) -> Column:
    """MERGE condition: target row t and source row s differ in a value (nulls compare equal). updated_at
    and run_id are not values: a row recomputed to the same values is left as it was."""
    entity, date = view.entity_column, view.event_date_column
    changed: Column = F.lit(False)
    for column in table_columns(view):
        if column not in (entity, date, UPDATED_AT, RUN_ID):
            changed = changed | ~F.col(f"t.{column}").eqNullSafe(F.col(f"s.{column}"))
    return changed


@dataclass(frozen=True)
class MergeResult:
    version: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int


def merge_rows(spark: SparkSession, uri: str, rows: DataFrame, view: FeatureView, date_range: tuple) -> MergeResult:
    """MERGE upsert on (entity, date); rows whose values are all equal are left untouched. Into a table
    that holds no rows yet (the first backfill) the rows are appended: same result, no join."""
    table = ensure_table(spark, uri, view)
    if table.detail().select("numFiles").first()[0] == 0:
        rows.select(*table_columns(view)).write.format("delta").mode("append").save(uri)
        last_commit = table.history(1).select("version", "operationMetrics").first()
        inserted = int((last_commit["operationMetrics"] or {}).get("numOutputRows", 0))
        return MergeResult(int(last_commit["version"]), inserted, 0, 0)
    condition = _same_key(view, date_range)
    assignments = {c: F.col(f"s.{c}") for c in table_columns(view)}
    (
        table.alias("t")
        .merge(rows.alias("s"), condition)
        .whenMatchedUpdate(condition=_values_differ(view), set=assignments)
        .whenNotMatchedInsert(values=assignments)
        .execute()
    )
    last_commit = table.history(1).select("version", "operationMetrics").first()
    metrics = last_commit["operationMetrics"] or {}
    inserted = int(metrics.get("numTargetRowsInserted", 0))
    updated = int(metrics.get("numTargetRowsUpdated", 0))
    source_rows = int(metrics.get("numSourceRows", inserted + updated))
    return MergeResult(int(last_commit["version"]), inserted, updated, source_rows - inserted - updated)


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


def current_version(spark: SparkSession, uri: str) -> int:
    return int(DeltaTable.forPath(spark, uri).history(1).select("version").first()[0])


def read_version(spark: SparkSession, uri: str, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(uri)


def read_history(
    spark: SparkSession,
    uri: str,
    view: FeatureView,
    bounds: DataFrame,
    lookback_days: int,
    lookahead_days: int,
    date_range: tuple,
    version: int | None = None,
) -> DataFrame:
    """Source rows already in the table that the new rows' features depend on (lookback) or that
    depend on the new rows (lookahead), per entity; in the same layout as accepted input rows.
    bounds: entity, _first, _last (the new rows' date range per entity); version: the table version
    to read (default: the newest)."""
    entity, date = view.entity_column, view.event_date_column
    first, last = date_range
    low = first - dt.timedelta(days=lookback_days)
    high = last + dt.timedelta(days=lookahead_days)
    source = spark.read.format("delta").load(uri) if version is None else read_version(spark, uri, version)
    table = source.where(
        (F.col(date) >= F.lit(low.isoformat()).cast("date")) & (F.col(date) <= F.lit(high.isoformat()).cast("date"))
    )
    locations = stored_sources(view)
    types = view.source_types
    columns = [F.col(entity), F.col(date)]
    for source in (c.name for c in view.source_columns):
        if source in locations:
            columns.append(F.col(locations[source]).cast(_SPARK_TYPES[types[source]]).alias(source))
        else:
            # Used by no feature: nothing to recompute from it.
            columns.append(F.lit(None).cast(_SPARK_TYPES[types[source]]).alias(source))
    joined = table.join(F.broadcast(bounds), entity).where(
        (F.col(date) >= F.date_sub(F.col("_first"), lookback_days))
        & (F.col(date) <= F.date_add(F.col("_last"), lookahead_days))
    )
    return joined.select(*columns)
