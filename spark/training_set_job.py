"""Training-set job: labelled events + offline feature views -> a point-in-time correct training
set (Parquet or Delta) and a JSON manifest recording the Delta version read per view.

    spark-submit spark/training_set_job.py --events <uri> --events-format csv|parquet|delta \
      --entity-column household_id --event-time-column label_time \
      --view energy --feature-view <compiled energy.json uri> --offline-uri <uri> \
      --output <uri> --output-format parquet|delta --manifest-uri <uri> \
      [--same-day] [--max-age-days energy=30] [--version energy=3 | --versions-from <manifest>]

Semantics and reproducibility: docs/TRAINING_SETS.md. main() only wires extract -> transform -> load.
"""

from __future__ import annotations

import sys

# EMR's default Python is 3.9 (docs/AWS_CONTRACTS.md E11); say so before an import fails obscurely.
if sys.version_info < (3, 11):  # noqa: UP036 (the point: a clear message on the wrong interpreter)
    sys.exit("the training-set job needs Python 3.11 or later (spark.pyspark.python), not " + sys.version.split()[0])

import argparse
import json
import time
import traceback
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession

from feature_store.feature_view import FeatureViewError, parse_compiled_view
from feature_store.session import SessionSettings, build_spark_session
from feature_store.storage import InputNotFoundError, read_text, write_text
from feature_store.training_set import (
    TrainingSetError,
    ViewSpec,
    as_view_spec,
    build_training_set,
    fingerprint,
    latest_version,
    manifest_json,
    summarize_training_set,
)

EVENT_FORMATS = ("csv", "parquet", "delta")
OUTPUT_FORMATS = ("parquet", "delta")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="training_set_job.py",
        description="Point-in-time training set from the offline store",
    )
    parser.add_argument("--events", required=True, help="labels/events table URI")
    parser.add_argument("--events-format", required=True, choices=EVENT_FORMATS)
    parser.add_argument(
        "--events-version",
        type=int,
        help="Delta version of the events (delta format only)",
    )
    parser.add_argument("--entity-column", required=True, help="entity id column in the events")
    parser.add_argument(
        "--event-time-column",
        required=True,
        help="event date or timestamp column in the events",
    )
    parser.add_argument("--view", action="append", required=True, help="feature view (repeat)")
    parser.add_argument(
        "--feature-view",
        action="append",
        required=True,
        help="compiled feature-view (JSON) URI, one per --view, in the same order",
    )
    parser.add_argument("--offline-uri", required=True, help="offline store root (<root>/<view>)")
    parser.add_argument("--output", required=True, help="training-set output URI (overwritten)")
    parser.add_argument("--output-format", required=True, choices=OUTPUT_FORMATS)
    parser.add_argument("--manifest-uri", required=True, help="where to write the JSON manifest")
    parser.add_argument(
        "--same-day",
        action="store_true",
        help="allow feature rows dated on the event's date",
    )
    parser.add_argument("--preserve-order", action="store_true", help="write rows in the events' order (slower)")
    parser.add_argument(
        "--max-age-days",
        action="append",
        default=[],
        metavar="VIEW=DAYS",
        help="per view",
    )
    parser.add_argument(
        "--version",
        action="append",
        default=[],
        metavar="VIEW=N",
        help="pin a Delta version",
    )
    parser.add_argument(
        "--versions-from",
        metavar="MANIFEST_URI",
        help="pin every view to a manifest's versions",
    )
    args = parser.parse_args(argv)
    if len(args.feature_view) != len(args.view):
        parser.error("give exactly one --feature-view per --view, in the same order")
    if args.events_version is not None and args.events_format != "delta":
        parser.error("--events-version applies to --events-format delta only")
    try:
        args.max_age_days = _pairs(args.max_age_days, "--max-age-days")
        args.version = _pairs(args.version, "--version")
    except ValueError as err:
        parser.error(str(err))
    return args


def _pairs(items: Sequence[str], flag: str) -> dict[str, int]:
    pairs: dict[str, int] = {}
    for item in items:
        view, sep, value = item.partition("=")
        if not sep or not view or not value.strip().isdigit():
            raise ValueError(f"{flag} expects VIEW=N (a whole number), got {item!r}")
        pairs[view] = int(value)
    return pairs


# --- extract ---


def read_events(spark: SparkSession, uri: str, fmt: str, version: int | None) -> tuple[DataFrame, int | None]:
    """The events table, and for Delta the version read (pinned like the feature views)."""
    if fmt == "csv":
        return spark.read.option("header", True).option("inferSchema", True).csv(uri), None
    if fmt == "parquet":
        return spark.read.parquet(uri), None
    if version is None:
        version = latest_version(spark, uri)
    return spark.read.format("delta").option("versionAsOf", version).load(uri), version


def load_views(spark: SparkSession, names: Sequence[str], uris: Sequence[str]) -> tuple[list[ViewSpec], dict[str, str]]:
    """Reads each compiled view (as the feature job does); returns the specs and a content
    fingerprint per compiled view, recorded in the manifest."""
    specs, fingerprints = [], {}
    for name, uri in zip(names, uris, strict=True):
        text = read_text(spark, uri)
        spec = as_view_spec(parse_compiled_view(text, uri))
        if spec.name != name:
            raise TrainingSetError(f"--view {name} was given the file of view {spec.name!r}: {uri}")
        specs.append(spec)
        fingerprints[name] = fingerprint(text)
    return specs, fingerprints


# --- load ---


def write_output(df: DataFrame, uri: str, fmt: str) -> None:
    writer = df.write.mode("overwrite")
    if fmt == "delta":
        writer.format("delta").option("overwriteSchema", "true").save(uri)
    else:
        writer.parquet(uri)


def read_output(spark: SparkSession, uri: str, fmt: str) -> DataFrame:
    if fmt == "delta":
        return spark.read.format("delta").load(uri)
    return spark.read.parquet(uri)


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    """The whole job on a given session; returns the manifest it wrote."""
    versions = dict(args.version)
    if args.versions_from:
        pinned = _pinned_versions(read_text(spark, args.versions_from), args.versions_from)
        versions = {view: int(pinned[view]) for view in args.view if view in pinned} | versions
    # The request first (views match, cheap), then the data.
    specs, view_fingerprints = load_views(spark, args.view, args.feature_view)
    events, events_version = read_events(spark, args.events, args.events_format, args.events_version)

    training_set, manifest = build_training_set(
        spark,
        events,
        specs,
        args.offline_uri,
        event_time_column=args.event_time_column,
        entity_column=args.entity_column,
        same_day=args.same_day,
        max_age_days=args.max_age_days,
        versions=versions,
        preserve_order=args.preserve_order,
    )
    write_output(training_set, args.output, args.output_format)

    # Counts come from the written output (one cheap scan), not from re-running the joins.
    summary = summarize_training_set(read_output(spark, args.output, args.output_format), specs)
    events_rows = events.count()
    if summary["rows"] != events_rows:  # the join must never drop or add event rows
        raise RuntimeError(f"training set has {summary['rows']} rows for {events_rows} events")

    for name, stats in summary["views"].items():
        manifest["views"][name].update(stats)
        manifest["views"][name]["feature_view_uri"] = args.feature_view[args.view.index(name)]
        manifest["views"][name]["feature_view_sha256_16"] = view_fingerprints[name]
    manifest["events"] = {
        "uri": args.events,
        "format": args.events_format,
        "version": events_version,
        "rows": events_rows,
        "entity_column": args.entity_column,
        "event_time_column": args.event_time_column,
    }
    manifest["output"] = {
        "uri": args.output,
        "format": args.output_format,
        "rows": summary["rows"],
        "checksum": summary["checksum"],
        "columns": training_set.columns,
    }
    # The arguments that rebuild this exact set (identical checksum) by time travel.
    manifest["rebuild_args"] = [arg for name, v in manifest["versions"].items() for arg in ("--version", f"{name}={v}")]
    manifest["status"] = "succeeded"
    write_text(spark, args.manifest_uri, manifest_json(manifest))
    return manifest


def _pinned_versions(text: str, uri: str) -> dict:
    record = json.loads(text)
    if record.get("status") == "failed" or "versions" not in record:
        raise TrainingSetError(
            f"--versions-from {uri} is not the manifest of a training set that was built "
            f"({record.get('error', 'no versions in it')}); pin the versions of one that was"
        )
    return record["versions"]


def build_session() -> SparkSession:
    # Master, jars and memory come from spark-submit (EMR step or scripts/spark-submit.sh).
    return build_spark_session(SessionSettings(app_name="training-set"))


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> int:
    """Exit status as the feature job's: 0 built; 2 invalid arguments (argparse, nothing written);
    3 the request is refused as a whole (unknown column, a view file for another view, a missing
    input); 1 anything else. For 3 and 1 the manifest URI receives a failure record
    (`status: failed`, the error), so a caller finds out why where it would find the manifest."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    own_session = spark is None
    spark = spark or build_session()
    started = time.monotonic()
    try:
        manifest = run(spark, args)
    except (TrainingSetError, FeatureViewError, InputNotFoundError) as error:
        _fail(spark, args, str(error), started)
        return 3
    except Exception as error:  # noqa: BLE001 - any store failure ends the run with a failure record
        traceback.print_exc()
        _fail(spark, args, f"{type(error).__name__}: {error}", started)
        return 1
    finally:
        if own_session:
            spark.stop()
    print(json.dumps({"status": "succeeded", "output": manifest["output"], "versions": manifest["versions"]}))
    return 0


def _fail(spark: SparkSession, args: argparse.Namespace, message: str, started: float) -> None:
    print(f"training-set job failed: {message}", file=sys.stderr)
    record = {
        "status": "failed",
        "error": message,
        "views": list(args.view),
        "events": args.events,
        "output": args.output,
        "seconds": round(time.monotonic() - started, 3),
    }
    try:
        write_text(spark, args.manifest_uri, json.dumps(record, indent=2, sort_keys=True) + "\n")
    except Exception as error:  # noqa: BLE001 - the original failure is what matters
        print(f"could not write the failure record to {args.manifest_uri}: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
