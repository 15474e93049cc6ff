"""The reader of compiled feature views (the JSON functions/commons/compiled-view.ts writes, compiled
once per session by conftest): it exposes the compiled facts unchanged, refuses anything that is not a
compiled view of its version, and puts the keyspace into the compiled CQL safely. The view rules
themselves are tested where they live, in tests/unit/feature-view.test.ts."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, VIEW_FILE

from feature_store.feature_view import (
    COMPILED_VIEW_VERSION,
    FeatureViewError,
    SourceColumn,
    load_compiled_view,
    parse_compiled_view,
)
from tools import synthetic


@pytest.fixture
def compiled() -> dict:
    """A fresh copy per test (tests edit it)."""
    with open(VIEW_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def test_reader_exposes_the_compiled_facts(view, compiled):
    assert view.name == "energy"
    assert (view.entity_column, view.event_date_column) == ("household_id", "day")
    assert view.entity_id_pattern == compiled["entity"]["id_pattern"]
    assert view.raw_header == (
        "household_id",
        "day",
        "energy_median",
        "energy_mean",
        "energy_max",
        "energy_count",
        "energy_std",
        "energy_sum",
        "energy_min",
    )
    assert view.source_types["energy_count"] == "int"
    assert len(view.features) == 22
    std_12m = next(f for f in view.features if f.name == "energy_std_12m")
    assert (std_12m.type, std_12m.kind, std_12m.source, std_12m.aggregate, std_12m.window_days) == (
        "double",
        "aggregate",
        "energy_sum",
        "stddev",
        365,
    )
    count_3m = next(f for f in view.features if f.name == "energy_count_3m")
    assert count_3m.type == "int"
    assert [(c.name, c.cql_type) for c in view.online_columns()] == [
        (c["name"], c["cql_type"]) for c in compiled["online"]["columns"]
    ]
    assert view.online_columns()[0].name == "entity_id"
    assert (view.online_table, view.ttl_seconds) == ("energy_features", 0)


def test_value_rules_of_the_energy_view(view):
    """The names raw_input.py relies on: SourceColumn.min/max (floats or None), max_future_days."""
    assert view.max_future_days == 1
    bounds = {c.name: (c.min, c.max) for c in view.source_columns}
    assert bounds == {
        "energy_median": (0.0, 100.0),
        "energy_mean": (0.0, 100.0),
        "energy_max": (0.0, 100.0),
        "energy_count": (0.0, 1440.0),
        "energy_std": (0.0, 100.0),
        "energy_sum": (0.0, 2000.0),
        "energy_min": (0.0, 100.0),
    }
    assert all(isinstance(c.min, float) and isinstance(c.max, float) for c in view.source_columns)


def test_unbounded_columns_read_as_none(compiled):
    compiled["source_columns"][0].update(min=None, max=None)
    compiled["event_date"]["max_future_days"] = 0
    view = parse_compiled_view(json.dumps(compiled), "x.json")
    assert view.source_columns[0] == SourceColumn("energy_median", "double", None, None)
    assert view.max_future_days == 0


def test_synthetic_rows_are_inside_the_declared_bounds(view):
    """The generator behind the local pipeline and the benchmarks must not produce rows the view rejects.
    60 households over the whole seed range (every season, partial-count days); the seed scale was checked
    by hand too (docs/SPARK_JOB.md)."""
    frame = synthetic.generate_frame(households=60)
    assert len(frame) > 20_000
    for column in view.source_columns:
        values = frame[column.name].dropna()
        assert values.min() >= column.min, column.name
        assert values.max() <= column.max, column.name


def test_create_table_cql_puts_the_keyspace_in_the_statement_only(compiled):
    compiled["description"] = "costs {keyspace} nothing"
    compiled["online"]["create_table_cql"] = compiled["online"]["create_table_cql"].replace(
        "AND comment = 'Daily", "AND comment = 'costs {keyspace} nothing. Daily"
    )
    view = parse_compiled_view(json.dumps(compiled), "x.json")
    cql = view.create_table_cql("feature_store")
    assert cql.startswith("CREATE TABLE IF NOT EXISTS feature_store.energy_features (\n  entity_id text PRIMARY KEY,")
    assert "comment = 'costs {keyspace} nothing." in cql
    assert view.create_keyspace_cql("ks_1").startswith("CREATE KEYSPACE IF NOT EXISTS ks_1 WITH replication")


@pytest.mark.parametrize("keyspace", ["Feature_Store", "ks; DROP TABLE x", "", "1ks"])
def test_keyspace_must_be_an_identifier(view, keyspace):
    with pytest.raises(FeatureViewError, match="not a lower-case CQL identifier"):
        view.create_table_cql(keyspace)


def test_shared_name_rules_come_from_the_compiled_view(view):
    # The forms functions/submit (newRunId) and functions/ingest (claimRunId) generate.
    assert view.is_run_id("20261126T184500Z-3f9a1c")
    assert view.is_run_id("20261126T184500Z-0123456789ab")
    assert not view.is_run_id("run:1")  # ':' would be read as a scheme in a Hadoop path
    assert not view.is_run_id("-x")
    assert not view.is_run_id("a" * 65)
    assert view.is_identifier("feature_store")
    assert not view.is_identifier("feature-store")


def test_a_view_file_instead_of_a_compiled_view_is_refused():
    path = f"{ROOT}/resources/feature-views/energy.yml"
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with pytest.raises(FeatureViewError, match=r"energy\.yml is not a compiled view .*npm run views:compile"):
        parse_compiled_view(text, path)


def test_another_format_version_is_refused(compiled):
    compiled["compiled_view_version"] = COMPILED_VIEW_VERSION + 1
    with pytest.raises(FeatureViewError, match=r"s3://a/energy\.json has compiled_view_version 2"):
        parse_compiled_view(json.dumps(compiled), "s3://a/energy.json")


def test_a_missing_field_is_named(compiled):
    del compiled["online"]["columns"]
    with pytest.raises(FeatureViewError, match="lacks field 'columns'"):
        parse_compiled_view(json.dumps(compiled), "x.json")


def test_derived_window_facts(view):
    assert view.max_window_days == 365
    assert [f.name for f in view.aggregate_features if f.aggregate == "count"] == [
        "energy_count_3m",
        "energy_count_6m",
        "energy_count_12m",
    ]
    assert load_compiled_view(VIEW_FILE) == view


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--run-id", "run:1", r"--run-id 'run:1' must match \^\[A-Za-z0-9\]"),
        ("--run-id", "r" * 65, "--run-id 'r+' must match"),
        ("--keyspace", "Feature-Store", r"--keyspace 'Feature-Store' must match \^\[a-z\]"),
    ],
)
def test_job_checks_its_names_with_the_compiled_patterns(spark, tmp_path, flag, value, message):
    """The job has no run-id or identifier rule of its own: load_view checks them against the view."""
    from jobs import job_args

    from feature_store import job
    from feature_store.raw_input import InputError

    argv = job_args(tmp_path, [str(tmp_path / "in.csv")], keyspace="feature_store")
    argv[argv.index(flag) + 1] = value
    with pytest.raises(InputError, match=message):
        job.load_view(spark, job.parse_args(argv))


def test_job_loads_the_compiled_view_it_is_given(spark, tmp_path, view):
    from jobs import job_args

    from feature_store import job

    assert (
        job.load_view(spark, job.parse_args(job_args(tmp_path, [str(tmp_path / "in.csv")], keyspace="feature_store")))
        == view
    )
