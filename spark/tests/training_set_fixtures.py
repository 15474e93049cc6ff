"""Test helpers for training sets: small offline Delta tables written directly (no feature job
needed) and an independent pandas as-of lookup the Spark result is checked against."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path

from conftest import VIEW_FILE
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from feature_store.feature_view import load_compiled_view
from feature_store.offline_store import table_uri, to_table_rows, write_rows
from feature_store.training_set import ViewSpec

# Two small views: one keyed like energy, one with another entity column name and date column.
ENERGY = ViewSpec(
    name="energy",
    entity_column="household_id",
    date_column="day",
    feature_names=("energy_sum", "energy_sum_3m", "energy_count_3m"),
)
WEATHER = ViewSpec(
    name="weather",
    entity_column="site",
    date_column="as_of",
    feature_names=("temperature",),
)

ENERGY_SCHEMA = T.StructType(
    [
        T.StructField("household_id", T.StringType()),
        T.StructField("day", T.DateType()),
        T.StructField("energy_sum", T.DoubleType()),
        T.StructField("energy_sum_3m", T.DoubleType()),
        T.StructField("energy_count_3m", T.LongType()),
        # Bookkeeping columns the feature job adds; the join must ignore them.
        T.StructField("updated_at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
    ]
)
WEATHER_SCHEMA = T.StructType(
    [
        T.StructField("site", T.StringType()),
        T.StructField("as_of", T.DateType()),
        T.StructField("temperature", T.DoubleType()),
    ]
)

START = dt.date(2013, 1, 1)


def energy_rows(seed: int, households: int = 6, days: int = 40, value_offset: float = 0.0):
    """Feature rows with gaps (missing days) and some null features, deterministic per seed."""
    rng = random.Random(seed)
    rows = []
    for h in range(households):
        for d in range(days):
            if rng.random() < 0.3:  # missing days: the as-of row is then older than yesterday
                continue
            day = START + dt.timedelta(days=d)
            value = None if rng.random() < 0.1 else round(rng.uniform(0, 20) + value_offset, 3)
            rows.append(
                (
                    f"MAC{h:06d}",
                    day,
                    value,
                    round(rng.uniform(0, 900), 3),
                    rng.randint(1, 90),
                    dt.datetime(2014, 1, 1),
                    "run-1",
                )
            )
    return rows


def write_delta(spark: SparkSession, rows, schema, uri: str, mode: str = "overwrite") -> None:
    spark.createDataFrame(rows, schema).coalesce(1).write.format("delta").mode(mode).save(uri)


def merge_delta(spark: SparkSession, rows, schema, uri: str, keys: Sequence[str]) -> None:
    """Upsert like the feature job does (MERGE on entity and date): makes a new table version."""
    from delta.tables import DeltaTable

    updates = spark.createDataFrame(rows, schema)
    condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    (
        DeltaTable.forPath(spark, uri)
        .alias("t")
        .merge(updates.alias("s"), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def reference_as_of(
    event_keys: Sequence[tuple[str | None, dt.date | None]],
    features: Sequence[dict],
    spec: ViewSpec,
    *,
    same_day: bool = False,
    max_age: int | None = None,
) -> list[tuple]:
    """Plain-Python as-of lookup, event by event over all rows: the obvious (slow) statement of
    the semantics. Returns per event the feature values then the feature date (None if none)."""
    out = []
    for entity, day in event_keys:
        best = None
        for rec in features:
            feature_day = rec[spec.date_column]
            if entity is None or day is None or rec[spec.entity_column] != entity:
                continue
            usable = feature_day <= day if same_day else feature_day < day
            if max_age is not None and (day - feature_day).days > max_age:
                usable = False
            if usable and (best is None or feature_day > best[spec.date_column]):
                best = rec
        if best is None:
            out.append((None,) * (len(spec.feature_names) + 1))
        else:
            out.append((*(best[f] for f in spec.feature_names), best[spec.date_column]))
    return out


def rows_of(df: DataFrame) -> list[tuple]:
    """Collects a DataFrame as a sorted list of tuples (nulls as None) for multiset comparison."""
    return sorted((tuple(r) for r in df.collect()), key=repr)


ENERGY_VIEW_FILE = Path(VIEW_FILE)
SPARK_TYPES = {"double": T.DoubleType(), "int": T.IntegerType(), "bigint": T.LongType()}


def write_full_energy_table(spark: SparkSession, offline_uri: str, households: int = 3, days: int = 30, seed: int = 11):
    """Merges rows with every feature of the real energy view into <offline_uri>/energy through the
    feature job's own offline writer (month partitions, bookkeeping columns, MERGE versions).
    Returns (view, the table version written)."""
    view = load_compiled_view(str(ENERGY_VIEW_FILE))
    rng = random.Random(seed)
    schema = T.StructType(
        [
            T.StructField(view.entity_column, T.StringType()),
            T.StructField(view.event_date_column, T.DateType()),
            *(T.StructField(f.name, SPARK_TYPES[f.type]) for f in view.features),
        ]
    )
    rows = [
        (
            f"MAC{h:06d}",
            START + dt.timedelta(days=d),
            *(rng.randint(0, 99) if f.type != "double" else round(rng.uniform(0, 50), 3) for f in view.features),
        )
        for h in range(households)
        for d in range(days)
        if rng.random() > 0.2
    ]
    table_rows = to_table_rows(spark.createDataFrame(rows, schema), None, view, dt.datetime(2014, 1, 1), f"seed-{seed}")
    date_range = (START, START + dt.timedelta(days=days))
    result = write_rows(spark, table_uri(offline_uri, view), table_rows, view, date_range)
    return view, result.version
