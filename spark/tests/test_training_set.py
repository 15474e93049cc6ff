"""Training sets: the point-in-time join against an independent row-by-row reference, its edge
cases (no history, duplicates, timestamps, max age), and rebuilds by Delta version."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from pyspark.sql import types as T
from training_set_fixtures import (
    ENERGY,
    ENERGY_SCHEMA,
    ENERGY_VIEW_FILE,
    START,
    WEATHER,
    WEATHER_SCHEMA,
    energy_rows,
    merge_delta,
    reference_as_of,
    rows_of,
    write_delta,
    write_full_energy_table,
)

from feature_store.training_set import (
    TrainingSetError,
    build_training_set,
    summarize_training_set,
)

EVENT_SCHEMA = T.StructType(
    [
        T.StructField("household_id", T.StringType()),
        T.StructField("event_day", T.DateType()),
        T.StructField("label", T.DoubleType()),
    ]
)


# Household H1 has rows on the day before and on TS_DAY only (for the timestamp cases).
TS_DAY = dt.date(2013, 3, 10)


@pytest.fixture(scope="module")
def offline(spark, tmp_path_factory):
    """An offline store written once for the module (Delta writes are the slow part): the energy
    view with gaps, null features and bookkeeping columns, and a weather view keyed by site."""
    root = tmp_path_factory.mktemp("offline")
    rows = [
        *energy_rows(seed=7),
        ("H1", TS_DAY - dt.timedelta(days=1), 1.0, 1.0, 1, None, None),
        ("H1", TS_DAY, 2.0, 2.0, 2, None, None),
    ]
    write_delta(spark, rows, ENERGY_SCHEMA, str(root / "energy"))
    weather = [("LDN", START + dt.timedelta(days=d), float(d)) for d in range(0, 30, 2)]
    write_delta(spark, weather, WEATHER_SCHEMA, str(root / "weather"))
    return str(root), rows


def random_events(seed: int, n: int = 250) -> list[tuple]:
    """Events over known households, unknown ones and null keys/dates, with exact duplicates."""
    rng = random.Random(seed)
    entities = [f"MAC{h:06d}" for h in range(6)] + ["MAC999999", None]
    events = []
    for i in range(n):
        day = None if rng.random() < 0.03 else START + dt.timedelta(days=rng.randint(-3, 48))
        events.append((rng.choice(entities), day, float(i % 2)))
    events += events[:20]  # duplicated label rows must all come back
    rng.shuffle(events)
    return events


def feature_dicts(rows) -> list[dict]:
    names = [f.name for f in ENERGY_SCHEMA.fields]
    return [dict(zip(names, r, strict=True)) for r in rows]


def expected_rows(events, features, spec, *, days, same_day=False, max_age=None):
    reference = reference_as_of(
        [(e[0], d) for e, d in zip(events, days, strict=True)],
        features,
        spec,
        same_day=same_day,
        max_age=max_age,
    )
    return [tuple(e) + r for e, r in zip(events, reference, strict=True)]


@pytest.mark.parametrize(
    ("same_day", "max_age", "preserve_order"),
    [(False, None, True), (False, None, False), (True, None, False), (False, 3, False), (True, 0, False)],
    ids=["strictly-before-ordered", "strictly-before", "same-day", "max-age-3", "same-day-max-age-0"],
)
def test_join_matches_row_by_row_reference(spark, offline, same_day, max_age, preserve_order):
    """Protects the core semantics: per event, the newest feature row strictly before (or on,
    with same_day) the event date and within max age; every event row kept, duplicates included,
    and in input order when asked."""
    root, rows = offline
    events = random_events(seed=1)
    df, manifest = build_training_set(
        spark,
        spark.createDataFrame(events, EVENT_SCHEMA),
        [ENERGY],
        root,
        event_time_column="event_day",
        same_day=same_day,
        max_age_days=None if max_age is None else {"energy": max_age},
        preserve_order=preserve_order,
    )
    actual = [tuple(r) for r in df.collect()]
    expected = expected_rows(
        events,
        feature_dicts(rows),
        ENERGY,
        days=[e[1] for e in events],
        same_day=same_day,
        max_age=max_age,
    )
    if preserve_order:
        assert actual == expected  # same rows, same order, duplicates included
    else:
        assert sorted(actual, key=repr) == sorted(expected, key=repr)
    assert manifest["versions"] == {"energy": 0}

    # Independently of the reference: no feature row from the event's day (or later) leaks in.
    for row in actual:
        event_day, feature_day = row[1], row[-1]
        if feature_day is not None:
            assert feature_day <= event_day if same_day else feature_day < event_day
            if max_age is not None:
                assert (event_day - feature_day).days <= max_age
    # The cases exercised are not vacuous: some events have features and some do not.
    with_features = sum(r[-1] is not None for r in actual)
    assert 0 < with_features < len(actual)


def test_max_age_nulls_features_that_are_otherwise_available(spark, offline):
    """Protects max age: an event whose latest usable row is too old gets nulls, not that row."""
    root, _ = offline
    events = spark.createDataFrame([("MAC000000", START + dt.timedelta(days=200), 1.0)], EVENT_SCHEMA)
    unbounded, _ = build_training_set(spark, events, [ENERGY], root, event_time_column="event_day")
    bounded, _ = build_training_set(
        spark,
        events,
        [ENERGY],
        root,
        event_time_column="event_day",
        max_age_days={"energy": 30},
    )
    assert unbounded.first()["energy__feature_date"] is not None
    row = bounded.first()
    assert row["energy__feature_date"] is None
    assert row["energy__energy_sum_3m"] is None
    assert row["label"] == 1.0


def test_entities_without_history_keep_their_row_with_null_features(spark, offline):
    """Protects left-join semantics: unknown entities, null ids and events before any history."""
    root, _ = offline
    events = [
        ("MAC999999", START + dt.timedelta(days=10), 1.0),
        (None, START + dt.timedelta(days=10), 0.0),
        ("MAC000001", START, 1.0),  # the first feature day: nothing strictly before it
        ("MAC000001", START - dt.timedelta(days=5), 0.0),
    ]
    df, _ = build_training_set(
        spark,
        spark.createDataFrame(events, EVENT_SCHEMA),
        [ENERGY],
        root,
        event_time_column="event_day",
        preserve_order=True,
    )
    result = df.collect()
    assert [tuple(r)[:3] for r in result] == events
    for row in result:
        assert all(row[c] is None for c in df.columns[3:]), row


def test_timestamp_events_use_the_event_date_in_utc(spark, offline):
    """Protects timestamp handling: an event late on day D may not use the row dated D; one just
    after midnight on D+1 may. String timestamps with an offset are converted to UTC first."""
    root, _ = offline
    day = TS_DAY
    schema = "household_id string, ts timestamp, label double"
    events = spark.createDataFrame(
        [
            ("H1", dt.datetime(2013, 3, 10, 23, 59, 59), 1.0),
            ("H1", dt.datetime(2013, 3, 11, 0, 0, 1), 2.0),
        ],
        schema,
    )
    df, _ = build_training_set(spark, events, [ENERGY], root, event_time_column="ts", preserve_order=True)
    assert [r["energy__energy_sum"] for r in df.collect()] == [1.0, 2.0]
    assert df.schema["ts"].dataType == T.TimestampType()  # the events' column is unchanged

    as_strings = spark.createDataFrame(
        [("H1", "2013-03-10T23:30:00-05:00", 1.0), ("H1", "2013-03-10 12:00:00", 0.0)],
        "household_id string, ts string, label double",
    )
    df, _ = build_training_set(spark, as_strings, [ENERGY], root, event_time_column="ts", preserve_order=True)
    # 23:30 at UTC-5 is 04:30 UTC on the 11th: the row dated the 10th is usable.
    assert [r["energy__feature_date"] for r in df.collect()] == [
        day,
        day - dt.timedelta(days=1),
    ]


def test_several_views_are_prefixed_and_keyed_by_their_own_entity(spark, offline):
    """Protects multi-view sets: each view joins on its own entity column, columns never clash,
    and each view records its own feature date and version."""
    root, _ = offline
    events = spark.createDataFrame(
        [("MAC000002", "LDN", START + dt.timedelta(days=21), 1.0)],
        "household_id string, site string, event_day date, label double",
    )
    df, manifest = build_training_set(spark, events, [ENERGY, WEATHER], root, event_time_column="event_day")
    row = df.first()
    assert (row["weather__temperature"], row["weather__feature_date"]) == (20.0, START + dt.timedelta(days=20))
    assert {"energy__energy_sum_3m", "energy__feature_date"} <= set(df.columns)
    assert set(manifest["versions"]) == {"energy", "weather"}


def test_rebuild_with_recorded_versions_is_identical_and_without_sees_new_data(spark, tmp_path):
    """Protects reproducibility: after a MERGE adds a Delta version (updated and new rows),
    the manifest's versions rebuild the same set; no versions picks the new data up."""
    root = str(tmp_path)
    uri = f"{root}/energy"
    rows = energy_rows(seed=3, households=3, days=20)
    write_delta(spark, rows, ENERGY_SCHEMA, uri)
    events = spark.createDataFrame(random_events(seed=5, n=80), EVENT_SCHEMA)

    first, manifest = build_training_set(spark, events, [ENERGY], root, event_time_column="event_day")
    first_rows = rows_of(first)
    first_summary = summarize_training_set(first, [ENERGY])

    # Later run of the feature job: every value changes and days 20..49 appear.
    newer = energy_rows(seed=3, households=3, days=50, value_offset=1000.0)
    merge_delta(spark, newer, ENERGY_SCHEMA, uri, keys=("household_id", "day"))

    rebuilt, again = build_training_set(
        spark,
        events,
        [ENERGY],
        root,
        event_time_column="event_day",
        versions=manifest["versions"],
    )
    assert rows_of(rebuilt) == first_rows
    assert summarize_training_set(rebuilt, [ENERGY]) == first_summary
    assert again["versions"] == {"energy": 0}

    latest, latest_manifest = build_training_set(spark, events, [ENERGY], root, event_time_column="event_day")
    assert latest_manifest["versions"] == {"energy": 1}
    assert rows_of(latest) != first_rows
    new_days = [r["energy__feature_date"] for r in latest.collect() if r["energy__feature_date"]]
    assert max(new_days) >= START + dt.timedelta(days=20)


def test_summary_counts_rows_without_features_per_view(spark, offline):
    """Protects the manifest's null counts: rows without a usable row, nulls per feature."""
    root, _ = offline
    events = spark.createDataFrame(
        [
            ("MAC999999", START + dt.timedelta(days=9), 1.0),
            ("MAC000000", START + dt.timedelta(days=45), 0.0),
        ],
        EVENT_SCHEMA,
    )
    df, _ = build_training_set(spark, events, [ENERGY], root, event_time_column="event_day")
    stats = summarize_training_set(df, [ENERGY])
    assert stats["rows"] == 2
    assert stats["views"]["energy"]["rows_without_features"] == 1
    assert stats["views"]["energy"]["null_counts"]["energy_sum_3m"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_age_days": {"energy": 0}}, "unless same_day"),
        ({"max_age_days": {"other": 3}}, "not requested"),
        ({"versions": {"energy": -1}}, "Delta version"),
        ({"event_time_column": "nope"}, "no column 'nope'"),
        ({"entity_column": "nope"}, "no entity column"),
    ],
)
def test_invalid_requests_fail_before_reading(spark, offline, kwargs, message):
    """Protects early, named errors for bad options (no Spark job is started for them)."""
    root, _ = offline
    events = spark.createDataFrame([], EVENT_SCHEMA)
    options = {"event_time_column": "event_day"} | kwargs
    with pytest.raises(TrainingSetError, match=message):
        build_training_set(spark, events, [ENERGY], root, **options)


def test_job_writes_output_and_manifest_and_rebuilds_from_it(spark, tmp_path):
    """Protects the CLI: CSV events with timestamps in, the real energy view file, Parquet out,
    a manifest with versions and counts whose versions rebuild the same content (checksum)."""
    import training_set_job

    root = str(tmp_path / "offline")
    _, version = write_full_energy_table(spark, root)
    events_csv = tmp_path / "events.csv"
    events_csv.write_text(
        "household_id,label_time,label\n"
        "MAC000001,2013-01-20 08:00:00,1\n"
        "MAC000001,2013-01-20 08:00:00,1\n"
        "MAC999999,2013-01-21 09:00:00,0\n"
    )

    def job_args(name: str, *extra: str) -> list[str]:
        return [
            *("--events", str(events_csv), "--events-format", "csv"),
            *("--entity-column", "household_id", "--event-time-column", "label_time"),
            *(
                "--view",
                "energy",
                "--feature-view",
                str(ENERGY_VIEW_FILE),
                "--offline-uri",
                root,
            ),
            *("--output", str(tmp_path / name), "--output-format", "parquet"),
            *(
                "--manifest-uri",
                str(tmp_path / f"{name}.json"),
                "--max-age-days",
                "energy=10",
            ),
            *extra,
        ]

    first = training_set_job.run(spark, training_set_job.parse_args(job_args("a")))
    written = json.loads((tmp_path / "a.json").read_text())
    assert written == json.loads(json.dumps(first, default=str))
    assert written["output"]["rows"] == written["events"]["rows"] == 3
    energy = written["views"]["energy"]
    assert (energy["version"], energy["max_age_days"]) == (version, 10)
    assert (energy["rows_with_features"], energy["rows_without_features"]) == (2, 1)
    assert written["rebuild_args"] == ["--version", f"energy={version}"]
    output = spark.read.parquet(str(tmp_path / "a"))
    assert output.columns[:3] == ["household_id", "label_time", "label"]
    assert "energy__energy_std_12m" in output.columns
    assert "_feature_month" not in output.columns
    assert output.count() == 3

    # A new version of the table, then a rebuild pinned to the manifest: same content.
    _, newer = write_full_energy_table(spark, root, seed=12)
    assert newer > version
    second = training_set_job.run(
        spark,
        training_set_job.parse_args(job_args("b", "--versions-from", str(tmp_path / "a.json"))),
    )
    assert second["versions"] == {"energy": version}
    assert second["output"]["checksum"] == first["output"]["checksum"]


def test_job_rejects_a_view_file_for_another_view(spark, tmp_path):
    """Protects the pairing of --view and --feature-view (same order, same name)."""
    import training_set_job

    args = training_set_job.parse_args(
        [
            *("--events", str(tmp_path), "--events-format", "parquet"),
            *("--entity-column", "household_id", "--event-time-column", "t"),
            *("--view", "weather", "--feature-view", str(ENERGY_VIEW_FILE)),
            *("--offline-uri", str(tmp_path), "--output", str(tmp_path / "o")),
            *("--output-format", "parquet", "--manifest-uri", str(tmp_path / "m.json")),
        ]
    )
    with pytest.raises(TrainingSetError, match="file of view 'energy'"):
        training_set_job.load_views(spark, args.view, args.feature_view)


def test_a_refused_request_exits_3_with_a_failure_record_where_the_manifest_goes(spark, tmp_path):
    """The training-set job has the feature job's entry shape: exit 3 for a request refused as a
    whole, and a failure record at --manifest-uri; a rebuild pinned to that record is refused too."""
    import training_set_job

    argv = [
        *("--events", str(tmp_path), "--events-format", "parquet"),
        *("--entity-column", "household_id", "--event-time-column", "t"),
        *("--view", "weather", "--feature-view", str(ENERGY_VIEW_FILE)),
        *("--offline-uri", str(tmp_path), "--output", str(tmp_path / "o")),
        *("--output-format", "parquet", "--manifest-uri", str(tmp_path / "m.json")),
    ]
    assert training_set_job.main(argv, spark=spark) == 3
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["status"] == "failed"
    assert "file of view 'energy'" in record["error"]

    pinned = [*argv[:-1], str(tmp_path / "m2.json"), "--versions-from", str(tmp_path / "m.json")]
    pinned[pinned.index("weather")] = "energy"
    assert training_set_job.main(pinned, spark=spark) == 3
    assert (
        "is not the manifest of a training set that was built"
        in json.loads((tmp_path / "m2.json").read_text())["error"]
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["--max-age-days", "energy"],
        ["--version", "energy=-1"],
        ["--view", "weather"],  # two views, one --feature-view
    ],
)
def test_job_arguments_are_checked(bad):
    """Protects argument validation: malformed VIEW=N pairs and unpaired views exit with usage."""
    import training_set_job

    base = [
        *("--events", "e", "--events-format", "csv", "--entity-column", "household_id"),
        *(
            "--event-time-column",
            "t",
            "--view",
            "energy",
            "--feature-view",
            "energy.json",
        ),
        *("--offline-uri", "o", "--output", "out", "--output-format", "parquet"),
        *("--manifest-uri", "m.json"),
    ]
    with pytest.raises(SystemExit):
        training_set_job.parse_args(base + bad)
