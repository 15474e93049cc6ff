"""Point-in-time features: for every (entity, date) row, each aggregate covers the `window_days` calendar
days ending on, and including, the row's own date: [date - window_days + 1, date]. Windows are date
ranges over an epoch-day index (rangeBetween), so missing days shrink the count instead of stretching
the window.

sum, count, mean and stddev come from running sums, not from re-aggregating every window:
window(d) = running(d) - running(d - window_days), both growing frames that Spark evaluates in one pass.
The running sums are exact integers: double inputs are fixed-point values with 9 decimals (ints are
used as they are) held in DECIMAL(38,0), so the subtraction loses nothing, stddev needs no centring
(n*sum(q^2) - sum(q)^2 is exact, it cannot cancel), and the result does not depend on where the running
sum starts. That is what makes an incremental run (which starts from a slice of history) produce the
same bits as a full recompute. The only error is the 1e-9 rounding of each input, so against a
plain floating-point reference: sum and mean within 1e-9 * n absolute, stddev within 1e-9 absolute.
Aggregated double inputs must satisfy |x| <= 1e6 (int/bigint: |x| <= 1e15) to stay inside
DECIMAL(38,0); rows outside are rejected before they get here.

max is the one aggregate without an exact running form: see _with_rolling_maxima.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from .feature_view import FeatureView

DAY_INDEX = "_day_index"
DOUBLE_SCALE = 10**9  # fixed-point decimals for double inputs
MAX_ABS_DOUBLE = 1e6
MAX_ABS_INTEGER = 10**15
_EXACT = DecimalType(38, 0)
_SPARK_TYPES = {"double": "double", "int": "int", "bigint": "bigint", "string": "string"}


def max_abs_value(source_type: str) -> float:
    return MAX_ABS_DOUBLE if source_type == "double" else float(MAX_ABS_INTEGER)


def _scale(source_type: str) -> int:
    return DOUBLE_SCALE if source_type == "double" else 1


def _fixed_point(column: Column, source_type: str) -> Column:
    if source_type == "double":
        return F.round(column * F.lit(float(DOUBLE_SCALE))).cast(_EXACT)
    return column.cast(_EXACT)


def compute_features(rows: DataFrame, view: FeatureView) -> DataFrame:
    """rows: entity, date and the typed source columns, one row per (entity, date).
    Returns entity, date and every feature of the view, in view order, with the view's types."""
    entity, date = view.entity_column, view.event_date_column
    types = view.source_types
    aggregates = view.aggregate_features
    maxima = [f for f in aggregates if f.aggregate == "max"]
    df = rows.withColumn(DAY_INDEX, F.datediff(F.col(date), F.lit("1970-01-01").cast("date")))
    # One shuffle: every row of an entity in one partition, in date order. The max step (Python) and
    # the running sums (Spark windows) both rely on it; the window reuses this partitioning.
    df = df.repartition(F.col(entity)).sortWithinPartitions(entity, DAY_INDEX)
    if maxima:
        df = _with_rolling_maxima(df, maxima, entity, types)

    # Fixed-point inputs and their squares, once per aggregated source column.
    needs_sum = {f.source for f in aggregates if f.aggregate in ("sum", "mean", "stddev")}
    needs_square = {f.source for f in aggregates if f.aggregate == "stddev"}
    for source in sorted(needs_sum):
        df = df.withColumn(f"_q_{source}", _fixed_point(F.col(source), types[source]))
    for source in sorted(needs_square):
        df = df.withColumn(f"_q2_{source}", F.col(f"_q_{source}") * F.col(f"_q_{source}"))

    ordered = Window.partitionBy(entity).orderBy(DAY_INDEX)
    upto_today = ordered.rangeBetween(Window.unboundedPreceding, 0)
    running_sources = sorted({f.source for f in aggregates if f.aggregate != "max"})
    kinds = {
        s: ["n"] + (["q"] if s in needs_sum else []) + (["q2"] if s in needs_square else []) for s in running_sources
    }

    # Pass 1: running totals up to each row (one growing frame; exact decimal additions happen only here).
    running = []
    for source in running_sources:
        for kind in kinds[source]:
            value = F.col(source) if kind == "n" else F.col(f"_{kind}_{source}")
            total = F.count(value) if kind == "n" else F.sum(value)
            running.append(total.over(upto_today).alias(f"_run_{kind}_{source}"))
    df = df.select("*", *running)

    # Pass 2: the running total as of the day before each window starts: the last running total among
    # rows dated <= date - window_days (another growing frame; no arithmetic per row).
    windows = sorted({(f.source, int(f.window_days)) for f in aggregates if f.aggregate != "max"})
    window_parts = []
    for source, days in windows:
        before = ordered.rangeBetween(Window.unboundedPreceding, -days)
        for kind in kinds[source]:
            name = f"_run_{kind}_{source}"
            zero = F.lit(0) if kind == "n" else F.lit(0).cast(_EXACT)
            earlier = F.coalesce(F.last(F.col(name)).over(before), zero)
            current = F.coalesce(F.col(name), zero)
            window_parts.append((current - earlier).alias(f"_{kind}_{source}_{days}"))
    df = df.select(
        F.col(entity),
        F.col(date),
        *(F.col(c.name) for c in view.source_columns),
        *(F.col(f"_max_{f.name}") for f in maxima),
        *window_parts,
    )

    outputs = []
    for feature in view.features:
        if feature.kind == "passthrough":
            value = F.col(feature.source)
        elif feature.aggregate == "max":
            value = F.col(f"_max_{feature.name}")
        else:
            value = _window_value(feature.aggregate, feature.source, int(feature.window_days), types[feature.source])
        outputs.append(value.cast(_SPARK_TYPES[feature.type]).alias(feature.name))
    return df.select(F.col(entity), F.col(date), *outputs)


def _with_rolling_maxima(df: DataFrame, maxima, entity: str, types: dict[str, str]) -> DataFrame:
    """Adds `_max_<feature>`: the max over the date range [date - window_days + 1, date] of the entity.
    Max has no running form, and Spark's sliding frames re-aggregate the whole window for every row
    (O(rows x window)); here each partition (whole entities, date-ordered) is processed with numpy in
    O(rows x log window): a doubling table of maxima over 2^k rows, then two overlapping lookups."""
    from pyspark.sql.types import DoubleType, IntegerType, LongType, StructField, StructType

    spark_types = {"double": DoubleType(), "int": IntegerType(), "bigint": LongType()}
    schema = StructType(
        df.schema.fields + [StructField(f"_max_{f.name}", spark_types[types[f.source]], True) for f in maxima]
    )
    specs = [(f"_max_{f.name}", f.source, int(f.window_days), types[f.source]) for f in maxima]

    def per_partition(batches):
        import numpy as np
        import pandas as pd

        frames = list(batches)
        if not frames:
            return
        part = pd.concat(frames, ignore_index=True)
        entity_codes = pd.factorize(part[entity])[0].astype(np.int64)
        # Rows arrive sorted by (entity, day); a composite key keeps entities apart in one sorted axis.
        key = entity_codes * 10_000_000 + part[DAY_INDEX].to_numpy(dtype=np.int64)
        order = np.argsort(key, kind="stable")
        part, key = part.iloc[order].reset_index(drop=True), key[order]
        positions = np.arange(len(part))
        for name, source, days, source_type in specs:
            values = part[source].to_numpy(dtype=np.float64, na_value=np.nan)
            starts = np.searchsorted(key, key - (days - 1), side="left")
            lengths = positions - starts + 1
            levels = [values]
            while (1 << len(levels)) <= lengths.max():
                previous, step = levels[-1], 1 << (len(levels) - 1)
                shifted = np.concatenate([np.full(step, np.nan), previous[:-step]])
                levels.append(np.fmax(previous, shifted))
            result = np.full(len(part), np.nan)
            exponent = np.floor(np.log2(lengths)).astype(np.int64)
            for k in np.unique(exponent):
                rows = np.nonzero(exponent == k)[0]
                table = levels[k]
                result[rows] = np.fmax(table[rows], table[starts[rows] + (1 << k) - 1])
            if source_type == "double":
                part[name] = result
            else:
                part[name] = pd.array(np.where(np.isnan(result), 0, result).astype(np.int64), dtype="Int64").where(
                    ~np.isnan(result), pd.NA
                )
        yield part

    return df.mapInPandas(per_partition, schema)


def _window_value(aggregate: str, source: str, window: int, source_type: str) -> Column:
    n = F.col(f"_n_{source}_{window}")
    if aggregate == "count":
        return n
    q = F.col(f"_q_{source}_{window}")
    scale = float(_scale(source_type))
    if aggregate == "sum":
        exact_sum = q.cast("bigint") if source_type != "double" else q.cast("double") / F.lit(scale)
        return F.when(n > 0, exact_sum)
    if aggregate == "mean":
        return F.when(n > 0, q.cast("double") / F.lit(scale) / n.cast("double"))
    # stddev (sample): sqrt((n*S2 - S1^2) / (n*(n-1))) with exact S1, S2; the numerator is >= 0 exactly.
    q2 = F.col(f"_q2_{source}_{window}")
    numerator = n.cast(_EXACT) * q2 - q * q
    variance = numerator.cast("double") / (n.cast("double") * (n - 1).cast("double")) / F.lit(scale * scale)
    return F.when(n >= 2, F.sqrt(variance))


def features_around_new_rows(
    accepted: DataFrame, history: DataFrame, bounds: DataFrame, view: FeatureView
) -> tuple[DataFrame, DataFrame]:
    """An incremental run's features: the new rows plus the stored history around them (history rows
    with the same key are replaced by the new ones), computed together, keeping only the rows dated from
    each entity's first new day to its last new day + the longest window - 1 (the rows whose windows hold
    a new day). bounds: entity, _first, _last. Returns (features, the source rows they came from)."""
    entity, date = view.entity_column, view.event_date_column
    window = view.max_window_days
    history = history.join(accepted.select(entity, date), [entity, date], "left_anti")
    combined = accepted.unionByName(history)
    affected = (
        compute_features(combined, view)
        .join(F.broadcast(bounds), entity)
        .where((F.col(date) >= F.col("_first")) & (F.col(date) <= F.date_add(F.col("_last"), window - 1)))
        .drop("_first", "_last")
    )
    return affected, combined
