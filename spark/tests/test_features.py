"""Each rolling aggregate equals an independent pandas computation over the same generated data (gaps,
households joining late and leaving early, empty values, the leap day 2012-02-29), within the stated
tolerance: sum and mean within 1e-9 per value in the window, stddev within 1e-9, counts and max exact."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType

from feature_store.features import compute_features
from tools import synthetic


def typed_frame(spark, view, frame: pd.DataFrame):
    """The generator's rows as typed Spark rows (what raw_input accepts)."""
    schema = StructType(
        [StructField(view.entity_column, StringType()), StructField(view.event_date_column, DateType())]
        + [StructField(c.name, IntegerType() if c.type == "int" else DoubleType()) for c in view.source_columns]
    )
    records = []
    for row in frame.itertuples(index=False):
        values = row._asdict()
        records.append(
            [values["household_id"], dt.date.fromisoformat(values["day"])]
            + [
                None if pd.isna(values[c.name]) else (int(values[c.name]) if c.type == "int" else float(values[c.name]))
                for c in view.source_columns
            ]
        )
    return spark.createDataFrame(records, schema)


def pandas_reference(frame: pd.DataFrame, view) -> pd.DataFrame:
    """Plain pandas: time-based rolling windows of `window_days` days ending on each row's date."""
    out = []
    for entity, rows in frame.groupby("household_id", sort=True):
        rows = rows.sort_values("day")
        index = pd.DatetimeIndex(pd.to_datetime(rows["day"]))
        result = pd.DataFrame({"household_id": entity, "day": rows["day"].to_numpy()})
        for feature in view.features:
            series = pd.Series(rows[feature.source].to_numpy(dtype=float), index=index)
            if feature.kind == "passthrough":
                result[feature.name] = series.to_numpy()
                continue
            rolling = series.rolling(f"{feature.window_days}D")  # (t - w days, t]: includes t
            if feature.aggregate == "count":
                value = series.notna().astype(float).rolling(f"{feature.window_days}D").sum()
            elif feature.aggregate == "stddev":
                value = rolling.std(ddof=1)
            else:
                value = getattr(rolling, feature.aggregate)()
            result[feature.name] = value.to_numpy()
        out.append(result)
    return pd.concat(out, ignore_index=True)


@pytest.fixture(scope="module")
def generated():
    frame = synthetic.generate_frame(
        households=12,
        start=dt.date(2011, 11, 23),
        end=dt.date(2013, 4, 30),
        seed=11,
        missing_share=0.08,
        null_share=0.04,
    )
    assert (frame["day"] == "2012-02-29").any(), "the data must cover the leap day"
    assert frame["energy_sum"].isna().any(), "the data must hold empty values"
    return frame


def test_aggregates_match_pandas_reference(spark, view, generated):
    actual = (
        compute_features(typed_frame(spark, view, generated), view)
        .toPandas()
        .assign(day=lambda d: d["day"].astype(str))
        .sort_values(["household_id", "day"], ignore_index=True)
    )
    expected = pandas_reference(generated, view).sort_values(["household_id", "day"], ignore_index=True)
    assert list(actual.columns) == ["household_id", "day", *(f.name for f in view.features)]
    assert actual[["household_id", "day"]].equals(expected[["household_id", "day"]])
    for feature in view.features:
        got = actual[feature.name].to_numpy(dtype=float)
        want = expected[feature.name].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{feature.name}: nulls differ"
        if feature.kind == "passthrough" or feature.aggregate in ("count", "max"):
            np.testing.assert_array_equal(got, want, err_msg=feature.name)
        elif feature.aggregate in ("sum", "mean"):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9 * feature.window_days, err_msg=feature.name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=feature.name)


def test_window_ends_on_and_includes_the_rows_own_date(spark, view):
    """Values on day 0, 89 and 90: the 90-day window of day 89 holds day 0, the window of day 90 does not."""
    start = dt.date(2012, 1, 1)
    frame = pd.DataFrame(
        {
            "household_id": "MAC000002",
            "day": [start.isoformat(), (start + dt.timedelta(89)).isoformat(), (start + dt.timedelta(90)).isoformat()],
            **{c.name: [1.0, 2.0, 4.0] for c in view.source_columns},
        }
    )
    frame["energy_count"] = [1, 2, 4]
    rows = compute_features(typed_frame(spark, view, frame), view).orderBy("day").collect()
    assert [r["energy_sum_3m"] for r in rows] == [1.0, 3.0, 6.0]
    assert [r["energy_count_3m"] for r in rows] == [1, 2, 2]
    assert [r["energy_max_3m"] for r in rows] == [1.0, 2.0, 4.0]
    assert rows[0]["energy_std_3m"] is None  # fewer than 2 values
    assert rows[2]["energy_std_3m"] == pytest.approx(np.std([2.0, 4.0], ddof=1), abs=1e-12)


def test_a_day_without_a_value_stays_null_and_counts_nothing(spark, view):
    frame = pd.DataFrame({"household_id": ["MAC000003"] * 2, "day": ["2012-03-01", "2012-03-02"]})
    for column in view.source_columns:
        frame[column.name] = [np.nan, np.nan]
    frame["energy_count"] = [48, 48]
    rows = compute_features(typed_frame(spark, view, frame), view).orderBy("day").collect()
    for row in rows:
        assert row["energy_sum"] is None
        assert row["energy_sum_3m"] is None
        assert row["energy_mean_3m"] is None
        assert row["energy_max_3m"] is None
        assert row["energy_count_3m"] == 0


def test_evaluating_a_partition_in_chunks_of_entities_changes_no_value(view, generated, monkeypatch):
    """The kernel evaluates a partition a few whole entities at a time to bound a worker's memory; the
    chunk size must not change a single bit (no window crosses an entity), whatever order rows arrive in."""
    import pyarrow as pa

    from feature_store import features

    frame = generated.sample(frac=1.0, random_state=3).reset_index(drop=True)
    days = (pd.to_datetime(frame["day"]) - pd.Timestamp("1970-01-01")).dt.days.astype("int32")
    columns = {
        "household_id": pa.array(frame["household_id"]),
        features.DAY_INDEX: pa.array(days),
        features.OUTPUT: pa.array(np.arange(len(frame)) % 3 != 0),  # some rows only feed windows
    }
    for column in view.source_columns:
        values = frame[column.name].to_numpy(dtype=float)
        typed = pa.array(values, mask=np.isnan(values))
        columns[column.name] = typed.cast(pa.int32()) if column.type == "int" else typed
        # The fixed-point q compute_features adds (any consistent q serves a test of chunking).
        scale = features.DOUBLE_SCALE if column.type == "double" else 1
        q = np.round(np.nan_to_num(values) * scale).astype(np.int64)
        columns[features.Q.format(column.name)] = pa.array(q, mask=np.isnan(values))
    batches = pa.table(columns).to_batches(max_chunksize=97)

    def evaluated(chunk_rows: int) -> pd.DataFrame:
        monkeypatch.setattr(features, "CHUNK_ROWS", chunk_rows)
        out = features._evaluate_partition(view, list(view.features))(iter(batches))
        table = pa.Table.from_batches(list(out))
        return table.to_pandas().sort_values(["household_id", features.DAY_INDEX], ignore_index=True)

    whole, chunked = evaluated(10**9), evaluated(41)
    assert len(whole) == int((np.arange(len(frame)) % 3 != 0).sum())
    assert whole["household_id"].nunique() == frame["household_id"].nunique()
    pd.testing.assert_frame_equal(whole, chunked, check_exact=True)


@pytest.mark.parametrize("new_days", [1, 9])
def test_history_merged_into_stretches_gives_the_bits_of_the_rows_it_merges(spark, view, generated, new_days):
    """A daily run ships each entity's history merged into stretches of days (collapsed_history); the
    features of the new days must equal, bit for bit, those computed with every history row. Negative and
    large values (up to the 1e6 limit) test the exact sums of q^2 in parts."""
    from pyspark.sql import functions as F

    from feature_store.features import collapsed_history, rows_around

    frame = generated.copy()
    rng = np.random.default_rng(5)
    flip = rng.random(len(frame)) < 0.3
    frame.loc[flip, "energy_sum"] = -frame.loc[flip, "energy_sum"]
    frame.loc[rng.random(len(frame)) < 0.05, "energy_sum"] = 999_999.123456789
    first = dt.date(2013, 3, 1)
    last = first + dt.timedelta(days=new_days - 1)
    rows = typed_frame(spark, view, frame)
    new = rows.where(F.col("day").between(first, last))
    bounds = new.groupBy("household_id").agg(F.min("day").alias("_first"), F.max("day").alias("_last"))
    history = rows.where(F.col("day") < first).join(bounds, "household_id")
    merged = collapsed_history(history, view)
    # Per entity: the days a window may start on (3 lengths x new days) stay single; the stretches between
    # them, before _first and before the oldest start become one row each.
    assert merged.count() <= bounds.count() * (3 * new_days + 4) < history.count()

    def ordered(features) -> pd.DataFrame:
        return features.toPandas().sort_values(["household_id", "day"], ignore_index=True)

    actual = ordered(rows_around(new, new, bounds, view, merged))
    expected = ordered(compute_features(rows, view).where(F.col("day").between(first, last)))
    assert len(actual) == new.count() > 0
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


def test_fixed_point_rounds_the_double_product_half_away_from_zero(spark):
    """q = round(x * 10^9) half away from zero, of the double product exactly as it is; the reference
    is Python's decimal arithmetic on the same product."""
    from decimal import ROUND_HALF_UP, Decimal

    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StructField, StructType

    from feature_store.features import fixed_point

    rng = np.random.default_rng(7)
    values = [0.0, -0.0, 2.5e-9, -2.5e-9, 1.5e-9, 0.5e-9, 1e6, -1e6, 123.4567891235, -0.0000000015, None]
    values += [float(v) for v in (*rng.uniform(-1e6, 1e6, 2000), *rng.uniform(-1e-6, 1e-6, 2000))]
    # Products that land exactly on a half: (k + 0.5) / 2^m scaled back by 10^9 is not exact, so build
    # them from the product side and keep those whose division round-trips.
    for k in range(1, 400):
        y = k + 0.5
        x = y / 1e9
        if x * 1e9 == y:
            values += [x, -x]
    frame = spark.createDataFrame([(v,) for v in values], StructType([StructField("x", DoubleType())]))
    got = [r["q"] for r in frame.select(fixed_point(F.col("x"), "double").alias("q")).collect()]
    want = [None if v is None else int(Decimal(v * 1e9).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for v in values]
    assert sum(1 for v in values if v is not None and (v * 1e9) % 1 == 0.5) > 50, "the ties must be tested"
    assert got == want
