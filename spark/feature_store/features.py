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

max is the one aggregate without an exact running form; it uses the sliding date-range frame.
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
    df = rows.withColumn(DAY_INDEX, F.datediff(F.col(date), F.lit("1970-01-01").cast("date")))

    # Fixed-point inputs and their squares, once per aggregated source column.
    needs_sum = {f.source for f in aggregates if f.aggregate in ("sum", "mean", "stddev")}
    needs_square = {f.source for f in aggregates if f.aggregate == "stddev"}
    for source in sorted(needs_sum):
        df = df.withColumn(f"_q_{source}", _fixed_point(F.col(source), types[source]))
    for source in sorted(needs_square):
        df = df.withColumn(f"_q2_{source}", F.col(f"_q_{source}") * F.col(f"_q_{source}"))

    ordered = Window.partitionBy(entity).orderBy(DAY_INDEX)
    upto_today = ordered.rangeBetween(Window.unboundedPreceding, 0)

    def running(kind: str, source: str, frame: Window) -> Column:
        if kind == "n":
            return F.count(F.col(source)).over(frame)
        return F.coalesce(F.sum(F.col(f"_{kind}_{source}")).over(frame), F.lit(0).cast(_EXACT))

    # Running sums up to today, and up to the day before each window starts.
    parts: dict[tuple[str, str, int], Column] = {}
    for feature in aggregates:
        if feature.aggregate == "max":
            continue
        kinds = (
            ["n"] + (["q"] if feature.source in needs_sum else []) + (["q2"] if feature.source in needs_square else [])
        )
        before_window = ordered.rangeBetween(Window.unboundedPreceding, -int(feature.window_days))
        for kind in kinds:
            key = (kind, feature.source, int(feature.window_days))
            if key not in parts:
                parts[key] = running(kind, feature.source, upto_today) - F.coalesce(
                    running(kind, feature.source, before_window), F.lit(0)
                )

    selected = [F.col(entity), F.col(date), *(F.col(c.name) for c in view.source_columns)]
    df = df.select(
        *selected,
        F.col(DAY_INDEX),
        *(value.alias(f"_{kind}_{source}_{w}") for (kind, source, w), value in parts.items()),
        *(
            F.max(F.col(f.source)).over(ordered.rangeBetween(-(int(f.window_days) - 1), 0)).alias(f"_max_{f.name}")
            for f in aggregates
            if f.aggregate == "max"
        ),
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
