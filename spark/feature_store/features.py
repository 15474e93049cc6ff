"""Point-in-time features: for every (entity, date) row, each aggregate covers the `window_days` calendar
days ending on, and including, the row's own date: [date - window_days + 1, date]. Missing days shrink the
count instead of stretching the window.

One pass computes every feature: the rows are shuffled once so that each entity's rows share a partition,
and each partition is evaluated with numpy over Arrow batches (`_evaluate_partition`), sorted by (entity, day):
- count, sum, mean and stddev come from prefix sums: window(d) = prefix(d) - prefix(d - window_days), found
  by binary search on the sorted (entity, day) keys. The sums are exact integers: double inputs are
  fixed-point values with 9 decimals (ints are used as they are), so the subtraction loses nothing,
  stddev needs no centring (n*sum(q^2) - sum(q)^2 is exact, it cannot cancel), and a result does not
  depend on where the prefix starts. That is what makes an incremental run (which starts from a slice of
  history) produce the same bits as a full recompute. The only error is the 1e-9 rounding of each input,
  so against a plain floating-point reference: sum and mean within 1e-9 * n absolute, stddev within 1e-9.
- max has no prefix form: a doubling table of maxima over 2^k rows, then two overlapping lookups.
Aggregated double inputs must satisfy |x| <= 1e6 (int/bigint: |x| <= 1e15); rows outside are rejected
before they get here. With windows of at most 3,660 days every window's sum of q fits in an int64, so
int64 prefix sums are exact even where they wrap (two's-complement differences); sums of q^2 do not fit
and use Python integers.

`only` picks the rows to return (all rows still feed the windows): an incremental run or a repair
evaluates its history with the rows it writes but returns only those. `partials` are history rows merged
ahead of the kernel (`collapsed_history`): one row per stretch of days that every returned row's window
holds whole or not at all, carrying its count, sums and max, so a daily run ships a few rows per entity
instead of a year of them. The fixed-point rule (`fixed_point`) is Spark SQL, so both meet the same q."""

from __future__ import annotations

import itertools

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructField, StructType

from .feature_view import FeatureView

DAY_INDEX = "_day_index"
OUTPUT = "_output"
DOUBLE_SCALE = 10**9  # fixed-point decimals for double inputs
MAX_ABS_DOUBLE = 1e6
MAX_ABS_INTEGER = 10**15
CHUNK_ROWS = 50_000  # rows the kernel evaluates at a time (whole entities; see _evaluate_partition)
_KEY_SPAN = 1 << 32  # (entity code, day index) in one sortable int64; day indexes are < 2^31
_SPARK_TYPES = {"double": DoubleType(), "int": IntegerType(), "bigint": LongType(), "string": StringType()}
_ARROW_TYPES = {
    "double": lambda pa: pa.float64(),
    "int": lambda pa: pa.int32(),
    "bigint": lambda pa: pa.int64(),
    "string": lambda pa: pa.string(),
}


def max_abs_value(source_type: str) -> float:
    return MAX_ABS_DOUBLE if source_type == "double" else float(MAX_ABS_INTEGER)


def _scale(source_type: str) -> int:
    return DOUBLE_SCALE if source_type == "double" else 1


def fixed_point(value: Column, source_type: str) -> Column:
    """The exact integer q a source value is summed as (null stays null): ints as they are; doubles times
    10^9, rounded half away from zero: floor(|y|) plus one when the fraction is >= 0.5, every step exact
    in binary floating point (|y| <= 1e15 < 2^53). Spark's round() gives the same integers through a
    BigDecimal per value, several times slower."""
    if source_type != "double":
        return value.cast("long")
    scaled = F.abs(value * F.lit(float(DOUBLE_SCALE)))
    whole = F.floor(scaled)
    rounded = whole + (scaled - whole >= F.lit(0.5)).cast("long")
    return F.when(value < 0, -rounded).otherwise(rounded)


# Kernel input per aggregated source s: s itself (the value; a merged row: the max of its values) and
# Q.format(s), q or the sum of q. Merged rows add N (values present) and the sum of q^2 in three parts,
# Q2_PARTS, of |q| = a * 2^25 + b: sum(a^2), sum(a*b), sum(b^2), each within an int64 (|q| < 2^50, at
# most 2^12 rows), so q^2 = a^2 * 2^50 + a*b * 2^26 + b^2 sums exactly in int64 columns. Raw rows: null.
Q = "_q_{}"
N = "_n_{}"
Q2_PARTS = ("_qaa_{}", "_qab_{}", "_qbb_{}")
_LIMB_BITS = 25


def compute_features(
    rows: DataFrame,
    view: FeatureView,
    only: Column | None = None,
    returned: DataFrame | None = None,
    partials: DataFrame | None = None,
) -> DataFrame:
    """rows: entity, date and the typed source columns, one row per (entity, date); only: which rows to
    return (default: all); returned: the rows `only` marks, with their source columns (default:
    rows.where(only); a caller passes a frame that is cheaper to read when it has one); partials: merged
    history rows that feed windows only (`collapsed_history`), dated before every row of their entity in
    `rows`. Returns entity, date and every feature of the view, in view order, with the view's types.

    What travels to Python is only what the windows need: entity, day and the aggregated sources of every
    row. Passthrough features are copies of a source column of the rows returned: with every row returned
    they travel along; with `only` (an incremental run, a repair: a few rows returned out of a year of
    history) they are joined back from those rows instead, so the history is not shipped with null
    columns (every Arrow column costs its full width, nulls included)."""
    entity, date = view.entity_column, view.event_date_column
    windowed = sorted({f.source for f in view.aggregate_features})
    carried = [] if only is not None else sorted({f.source for f in view.features if f.kind == "passthrough"})
    shipped = [*windowed, *(s for s in carried if s not in windowed)]
    types = view.source_types
    selected = rows.select(
        F.col(entity),
        F.unix_date(F.col(date)).alias(DAY_INDEX),
        (F.lit(True) if only is None else F.coalesce(only, F.lit(False))).alias(OUTPUT),
        *(F.col(s) for s in shipped),
        *(fixed_point(F.col(s), types[s]).alias(Q.format(s)) for s in windowed),
    )
    if partials is not None:
        merged = [part.format(s) for s in windowed for part in (N, *Q2_PARTS)]
        selected = selected.select("*", *(F.lit(None).cast("long").alias(c) for c in merged)).unionByName(
            partials.select(*selected.columns, *merged)
        )
    computed = [f for f in view.features if f.kind == "aggregate" or only is None]
    schema = StructType(
        [StructField(entity, StringType(), False), StructField(DAY_INDEX, IntegerType(), False)]
        + [StructField(f.name, _SPARK_TYPES[f.type], True) for f in computed]
    )
    evaluate = _evaluate_partition(view, computed, partials is not None)
    features = selected.repartition(F.col(entity)).mapInArrow(evaluate, schema)
    features = features.select(
        F.col(entity), F.date_from_unix_date(F.col(DAY_INDEX)).alias(date), *(F.col(f.name) for f in computed)
    )
    if only is not None:
        copies = [f for f in view.features if f.kind == "passthrough"]
        if copies:
            copied = (rows.where(only) if returned is None else returned).select(
                F.col(entity), F.col(date), *(F.col(f.source).alias(f.name) for f in copies)
            )
            features = features.join(copied, [entity, date])
    return features.select(F.col(entity), F.col(date), *(F.col(f.name) for f in view.features))


def _evaluate_partition(view: FeatureView, computed, merged_rows: bool = False):
    """The mapInArrow function: all rows of the entities of one partition in (Arrow batches), the
    computed features of the rows marked OUTPUT out. merged_rows: the batches carry the N and Q2_PARTS
    columns (non-null on merged history rows). Plain data only in the closure (it is pickled to the Python
    workers). Arrow throughout: no pandas frames, no Python string objects."""
    entity = view.entity_column
    types = view.source_types
    features = [(f.name, f.type, f.kind, f.source, f.aggregate, int(f.window_days or 0)) for f in computed]

    def evaluate(batches):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        batches = [b for b in batches if b.num_rows]
        if not batches:
            return
        part = pa.Table.from_batches(batches)
        codes = pc.dictionary_encode(part.column(entity)).combine_chunks().indices.to_numpy().astype(np.int64)
        days = part.column(DAY_INDEX).to_numpy()
        order = np.argsort(codes * _KEY_SPAN + days, kind="stable")
        entities = codes[order]
        key = entities * _KEY_SPAN + days[order]
        output = part.column(OUTPUT).to_numpy()[order]
        # Whole entities at a time, about CHUNK_ROWS rows each: the tables of one chunk (prefix sums,
        # max levels, results) are freed before the next, so a worker's memory does not grow with the
        # partition. No window crosses an entity, so chunks at entity boundaries change no result.
        starts = np.flatnonzero(np.diff(entities, prepend=-1))
        first_at = np.minimum(np.searchsorted(starts, np.arange(0, len(key), CHUNK_ROWS)), len(starts) - 1)
        for low, high in itertools.pairwise(np.unique([*starts[first_at], len(key)])):
            kept = np.flatnonzero(output[low:high])
            if len(kept) == 0:
                continue
            rows = order[low:high]
            returned = rows[kept]  # positions in `part` of the rows returned, in key order
            names = [entity, DAY_INDEX]
            arrays = [part.column(entity).take(returned).combine_chunks(), pa.array(days[returned], pa.int32())]
            windows = WindowTables(np, key[low:high], kept)
            columns = {}
            for name, feature_type, kind, source, aggregate, window in features:
                if kind == "passthrough":
                    copied = part.column(source).take(returned).combine_chunks()
                    arrays.append(copied.cast(_ARROW_TYPES[feature_type](pa)))
                else:
                    if source not in columns:
                        columns[source] = SourceColumnTables(
                            np, _terms(np, pa, pc, part, source, rows, merged_rows), types[source], windows
                        )
                    value = columns[source].aggregate(aggregate, window)
                    arrays.append(_as_arrow(pa, np, value, feature_type))
                names.append(name)
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    return evaluate


def _terms(np, pa, pc, part, source: str, rows, merged_rows: bool) -> dict:
    """One source's per-row terms in key order (rows: positions in `part`): value (float64, NaN: none; the
    max input), n (values present), q (fixed-point sum) and, for q^2, the merged rows' exact sums (mask and
    Python integers) or None."""
    values = pc.fill_null(part.column(source).take(rows).cast(pa.float64()), np.nan).to_numpy()
    q = pc.fill_null(part.column(Q.format(source)).take(rows), 0).to_numpy().astype(np.int64)
    n = (~np.isnan(values)).astype(np.int64)
    merged = None
    if merged_rows:
        counts = part.column(N.format(source)).take(rows)
        mask = pc.is_valid(counts).to_numpy()
        if mask.any():
            n[mask] = pc.fill_null(counts, 0).to_numpy()[mask]
            aa, ab, bb = (
                pc.fill_null(part.column(c.format(source)).take(rows), 0).to_numpy()[mask].astype(object)
                for c in Q2_PARTS
            )
            merged = (mask, (aa << (2 * _LIMB_BITS)) + (ab << (_LIMB_BITS + 1)) + bb)
    return {"value": values, "n": n, "q": q, "merged_q2": merged}


class WindowTables:
    """Where each kept row's windows start, per window length, over the sorted (entity, day) keys."""

    def __init__(self, np, key, kept) -> None:
        self._np, self._key, self.kept = np, key, kept
        self._starts: dict[int, object] = {}

    def start(self, days: int):
        if days not in self._starts:
            self._starts[days] = self._np.searchsorted(self._key, self._key[self.kept] - (days - 1), side="left")
        return self._starts[days]


class SourceColumnTables:
    """One source column's prefix sums and max table, built on first use."""

    def __init__(self, np, terms: dict, source_type: str, windows: WindowTables) -> None:
        """terms: `_terms` of the source, in key order."""
        self._np, self._type, self._windows = np, source_type, windows
        self._terms = terms
        self._values = terms["value"]
        self._prefix: dict[str, object] = {}
        self._max_levels = None

    def _prefix_of(self, kind: str):
        """Prefix sums with a leading zero: n (present values), q (fixed-point values, int64 that may wrap),
        q2 (squares, Python integers; a merged row: its exact sum of squares)."""
        np = self._np
        if kind not in self._prefix:
            if kind in ("n", "q"):
                terms = self._terms[kind]
            else:
                q = self._terms["q"].astype(object)
                terms = q * q
                if self._terms["merged_q2"] is not None:
                    mask, sums = self._terms["merged_q2"]
                    terms[mask] = sums
            zero = np.zeros(1, dtype=terms.dtype) if kind != "q2" else np.array([0], dtype=object)
            with np.errstate(over="ignore"):
                self._prefix[kind] = np.concatenate([zero, np.cumsum(terms, dtype=terms.dtype)])
        return self._prefix[kind]

    def _window_sum(self, kind: str, days: int):
        np = self._np
        prefix = self._prefix_of(kind)
        with np.errstate(over="ignore"):
            return prefix[self._windows.kept + 1] - prefix[self._windows.start(days)]

    def aggregate(self, aggregate: str, days: int):
        np = self._np
        if aggregate == "max":
            return self._window_max(days)
        n = self._window_sum("n", days)
        if aggregate == "count":
            return n
        scale = float(_scale(self._type))
        q = self._window_sum("q", days)
        if aggregate == "sum":
            if self._type != "double":
                return q, n > 0  # an integer sum stays an integer
            return np.where(n > 0, q.astype(np.float64) / scale, np.nan)
        nf = n.astype(np.float64)
        if aggregate == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(n > 0, q.astype(np.float64) / scale / nf, np.nan)
        # stddev (sample): sqrt((n*S2 - S1^2) / (n*(n-1))) with exact S1, S2; the numerator is >= 0 exactly.
        q2 = self._window_sum("q2", days)
        numerator = n.astype(object) * q2 - q.astype(object) * q.astype(object)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = numerator.astype(np.float64) / (nf * (nf - 1.0)) / float(_scale(self._type) ** 2)
            return np.where(n >= 2, np.sqrt(variance), np.nan)

    def _window_max(self, days: int):
        """Max over each kept row's window: a doubling table of maxima over 2^k rows (NaN: no value), then
        the max of two overlapping blocks that cover the window."""
        np = self._np
        kept, starts = self._windows.kept, self._windows.start(days)
        lengths = kept - starts + 1
        if self._max_levels is None:
            self._max_levels = [self._values]
        levels = self._max_levels
        while (1 << len(levels)) <= lengths.max():
            previous, step = levels[-1], 1 << (len(levels) - 1)
            shifted = np.concatenate([np.full(step, np.nan), previous[:-step]])
            levels.append(np.fmax(previous, shifted))
        result = np.full(len(kept), np.nan)
        exponent = np.floor(np.log2(lengths)).astype(np.int64)
        for k in np.unique(exponent):
            rows = np.nonzero(exponent == k)[0]
            table = levels[k]
            result[rows] = np.fmax(table[kept[rows]], table[starts[rows] + (1 << k) - 1])
        return result


def _as_arrow(pa, np, value, feature_type: str):
    """A feature's values as the Arrow array of its Spark type (NaN or a mask: null)."""
    if feature_type in ("int", "bigint"):
        if isinstance(value, tuple):
            integers, valid = value
        elif value.dtype.kind == "f":
            valid = ~np.isnan(value)
            integers = np.where(valid, value, 0)
        else:
            integers, valid = value, np.ones(len(value), dtype=bool)
        width = np.int32 if feature_type == "int" else np.int64
        return pa.array(integers.astype(width), mask=~valid)
    if isinstance(value, tuple):
        integers, valid = value
        value = np.where(valid, integers.astype(np.float64), np.nan)
    value = value.astype(np.float64)
    return pa.array(value, mask=np.isnan(value))


def features_around_new_rows(
    accepted: DataFrame, history: DataFrame, written: DataFrame, bounds: DataFrame, view: FeatureView
) -> tuple[DataFrame, DataFrame]:
    """An incremental run's features: the new rows plus the stored history around them (stored rows with
    the key of a new one are replaced by it), evaluated together, returning only the rows dated from each
    entity's first new day to its last new day + the longest window - 1 (the rows whose windows hold a new
    day). history: the stored rows the windows need (the aggregated sources are enough); written: the
    stored rows that can be returned, with every source column (offline_store.read_history), or None when
    no stored row is dated on or after the first new day (then only the new rows are returned, and history
    holds no new key and carries each entity's _first and _last, for collapsed_history); bounds: entity,
    _first, _last. Returns (features, the source rows of the rows returned)."""
    entity, date = view.entity_column, view.event_date_column
    if written is None:
        partials = collapsed_history(history, view)
        return rows_around(accepted, accepted, bounds, view, partials), accepted
    keys = accepted.select(entity, date)
    combined = accepted.unionByName(history.join(keys, [entity, date], "left_anti"))
    sources = accepted.unionByName(written.join(keys, [entity, date], "left_anti"))
    return rows_around(combined, sources, bounds, view), sources


def rows_around(
    rows: DataFrame, sources: DataFrame, bounds: DataFrame, view: FeatureView, partials: DataFrame | None = None
) -> DataFrame:
    """Features of the rows whose windows hold a day in [_first, _last] of their entity (bounds: entity,
    _first, _last), evaluated over all of `rows` and `partials` (which together must hold the windows'
    history: the aggregated sources are enough). sources: rows with every source column, holding at
    least the rows returned; partials: merged history rows (`collapsed_history`)."""
    entity, date = view.entity_column, view.event_date_column
    window = view.max_window_days

    def marked(frame: DataFrame) -> tuple[DataFrame, Column]:
        flagged = frame.join(F.broadcast(bounds), entity, "left")
        return flagged, (F.col(date) >= F.col("_first")) & (F.col(date) <= F.date_add(F.col("_last"), window - 1))

    flagged, only = marked(rows)
    candidates, candidate_only = marked(sources)
    return compute_features(flagged, view, only, candidates.where(candidate_only), partials)


def collapsed_history(history: DataFrame, view: FeatureView) -> DataFrame:
    """Stored rows that only feed the windows of rows dated _first.._last of their entity (history: entity,
    date, the aggregated sources, and _first, _last: the entity's new days; every row dated before
    _first), merged where no such window tells them apart, in the kernel's layout (compute_features'
    `partials`).

    A window of w days of a row dated d starts at d - w + 1, so with d in [_first, _last] the history days
    in [_first - w + 1, _last - w + 1] (for each window length w) are the only ones a window may start on;
    they stay single rows. The days between two of them are in every such window or in none, so each
    stretch becomes one row dated on its last day (the day before the next possible start, or before
    _first): its count, its sum of q, its sum of q^2 (Q2_PARTS) and its max. A one-day file with windows
    of 90, 180 and 365 days: at most seven rows per entity (three single days, four stretches) instead of
    364."""
    entity, date = view.entity_column, view.event_date_column
    types = view.source_types
    windowed = sorted({f.source for f in view.aggregate_features})
    lengths = sorted({int(f.window_days) for f in view.aggregate_features})
    day, first, last = F.col(date), F.col("_first"), F.col("_last")
    single = day >= first
    for w in lengths:
        single = single | day.between(F.date_sub(first, w - 1), F.date_sub(last, w - 1))
    next_start = F.least(first, *(F.when(F.date_sub(first, w - 1) > day, F.date_sub(first, w - 1)) for w in lengths))
    stretch = F.when(single, day).otherwise(F.date_sub(next_start, 1))
    # q once per row, in a projection of its own (Spark keeps it: it feeds several aggregates).
    history = history.select(
        entity,
        stretch.alias("_stretch"),
        *windowed,
        *(fixed_point(F.col(s), types[s]).alias(Q.format(s)) for s in windowed),
    )
    sums = []
    for s in windowed:
        q = F.col(Q.format(s))
        high, low = F.shiftright(F.abs(q), _LIMB_BITS), F.abs(q).bitwiseAND((1 << _LIMB_BITS) - 1)
        sums += [
            F.max(s).alias(s),
            F.sum(q).alias(Q.format(s)),
            F.count(s).alias(N.format(s)),
            *(
                F.sum(x * y).alias(part.format(s))
                for (x, y), part in zip(((high, high), (high, low), (low, low)), Q2_PARTS, strict=True)
            ),
        ]
    merged = history.groupBy(entity, "_stretch").agg(*sums)
    return merged.select(
        F.col(entity),
        F.unix_date(F.col("_stretch")).alias(DAY_INDEX),
        F.lit(False).alias(OUTPUT),
        *(c for c in merged.columns if c not in (entity, "_stretch")),
    )
