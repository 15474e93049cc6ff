"""Where the offline table of a view lives, for every form of --offline-uri the job accepts."""

import os

import pytest
from conftest import VIEW_FILE

from feature_store.feature_view import load_compiled_view
from feature_store.offline_store import ensure_table, table_uri


@pytest.fixture(scope="module")
def view():
    return load_compiled_view(VIEW_FILE)


@pytest.mark.parametrize(
    ("offline_uri", "expected"),
    [
        ("s3://bucket/delta", "s3://bucket/delta/energy"),
        ("s3a://bucket/delta/", "s3a://bucket/delta/energy"),
        ("file:/tmp/offline", "file:/tmp/offline/energy"),
        ("/tmp/offline/", "/tmp/offline/energy"),
    ],
)
def test_table_uri_keeps_uris_and_absolute_paths(view, offline_uri, expected):
    assert table_uri(offline_uri, view) == expected


def test_relative_offline_path_is_made_absolute_so_delta_accepts_it(spark, view, tmp_path, monkeypatch):
    # Delta reads a relative location as a table name ("offline/energy is not a valid name").
    monkeypatch.chdir(tmp_path)
    uri = table_uri("offline", view)
    assert uri == os.path.join(str(tmp_path), "offline", "energy")
    ensure_table(spark, uri, view)
    assert os.path.isdir(os.path.join(tmp_path, "offline", "energy", "_delta_log"))


def column_encodings(table_dir) -> dict[str, set[str]]:
    """Every encoding each column has in any data file of the table (Parquet footers)."""
    import pyarrow.parquet as pq

    found: dict[str, set[str]] = {}
    for path in table_dir.rglob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            for index in range(metadata.num_columns):
                column = metadata.row_group(group).column(index)
                found.setdefault(column.path_in_schema, set()).update(column.encodings)
    return found


def test_unique_valued_aggregates_are_written_without_a_parquet_dictionary(spark, view, tmp_path):
    """Sums, means and standard deviations are written plain, by the table's first write and by every later
    write (a table property, which Delta hands to the Parquet writer), even where a dictionary would pay;
    counts, maxima, copied sources and keys keep their dictionaries."""
    import datetime as dt

    from feature_store.offline_store import parquet_properties, table_schema, write_rows

    plain = {key.split("#", 1)[1] for key in parquet_properties(view)}
    assert plain == {
        f.name for f in view.aggregate_features if f.aggregate in ("sum", "mean", "stddev") and f.type == "double"
    }
    assert plain
    assert len(plain) < len(view.features)
    schema = table_schema(view)

    def rows(day: dt.date, count: int):
        values = []
        for i in range(count):
            row = []
            for field in schema.fields:
                kind = field.dataType.typeName()
                if field.name == view.entity_column:
                    row.append(f"h{i % 7}")
                elif field.name == view.event_date_column:
                    row.append(day - dt.timedelta(days=i // 7))
                elif kind == "double":  # few distinct values: a dictionary would pay, so only the option stops it
                    row.append((i % 3) * 0.5)
                elif kind == "integer":
                    row.append(i % 3)
                elif kind == "timestamp":
                    row.append(dt.datetime(2026, 1, 1))
                else:
                    row.append("run")
            values.append(tuple(row))
        return spark.createDataFrame(values, schema)

    uri = str(tmp_path / "energy")
    day = dt.date(2013, 3, 31)
    write_rows(spark, uri, rows(day, 700), view, (day - dt.timedelta(days=100), day))
    first = column_encodings(tmp_path / "energy")
    later = dt.date(2013, 4, 1)
    write_rows(spark, uri, rows(later, 7), view, (later, later))
    both = column_encodings(tmp_path / "energy")
    assert list((tmp_path / "energy").glob("_feature_month=2013-04/*.parquet"))  # the second write's files
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    for encodings in (first, both):
        for name in plain:
            assert not encodings[name] & dictionary, (name, encodings[name])
        for name in (view.entity_column, *(f.name for f in view.features if f.name not in plain)):
            assert encodings[name] & dictionary, (name, encodings[name])
