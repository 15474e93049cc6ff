"""The arguments manifest (docs/SPARK_JOB.md, "Arguments manifest"): when listing a run's inputs or repair
entities would pass EMR's 10,240-character step limit, the step passes `--arguments-manifest <uri>` instead
and the job reads the lists from that JSON object through Hadoop's file systems (s3:// on EMR, a path here),
then checks them exactly as if they had been listed."""

from __future__ import annotations

import json

import pytest

from feature_store import job, storage
from feature_store.arguments import expand_arguments_manifest

BASE = ["--view", "energy", "--feature-view", "v.json", "--offline-uri", "o", "--summary-uri", "s", "--run-id", "r"]


def write_manifest(tmp_path, body) -> str:
    path = tmp_path / "runs" / "energy" / "r" / "arguments.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body) if not isinstance(body, str) else body, encoding="utf-8")
    return str(path)


def test_a_500_file_manifest_gives_the_run_its_inputs_in_order(spark, tmp_path):
    inputs = [f"s3://raw/raw/energy/{i:04d}-{'k' * 1000}.csv" for i in range(500)]
    manifest = write_manifest(tmp_path, {"inputs": inputs})
    argv = [*BASE, "--mode", "full", "--rejects-uri", "x", "--arguments-manifest", manifest]

    first = job.parse_args(argv)
    assert first.arguments_manifest == manifest
    assert first.inputs == ()

    expanded = expand_arguments_manifest(argv, lambda uri: storage.read_text(spark, uri))
    args = job.parse_args(expanded)
    assert args.inputs == tuple(inputs)
    assert args.arguments_manifest is None
    assert args.mode == "full"
    assert args.rejects_uri == "x"
    # argparse's other spelling of the flag works the same.
    joined = [*BASE, "--mode", "full", "--rejects-uri", "x", f"--arguments-manifest={manifest}"]
    assert job.parse_args(expand_arguments_manifest(joined, lambda uri: storage.read_text(spark, uri))) == args


def test_a_repair_manifest_gives_the_entities_and_keeps_the_listed_days(spark, tmp_path):
    manifest = write_manifest(tmp_path, {"repair_entities": ["MAC000002", "MAC000003"]})
    days = ["--repair-from", "2013-01-01", "--repair-to", "2013-01-31"]
    argv = [*BASE, "--mode", "repair", *days, "--arguments-manifest", manifest]
    args = job.parse_args(expand_arguments_manifest(argv, lambda uri: storage.read_text(spark, uri)))
    assert args.repair.describe() == {"entities": ["MAC000002", "MAC000003"], "from": "2013-01-01", "to": "2013-01-31"}


@pytest.mark.parametrize(
    ("mode", "body", "message"),
    [
        ("full", "not json", "is not JSON"),
        ("full", ["a.csv"], "must be a JSON object"),
        ("full", {"inputs": []}, "non-empty list"),
        ("full", {"inputs": ["a.csv", 3]}, "non-empty list of non-empty strings"),
        ("full", {"inputs": ["a.csv"], "extra": 1}, "unknown key"),
        ("full", {"repair_entities": ["A"]}, "needs inputs"),
        ("repair", {"inputs": ["a.csv"]}, "needs repair_entities"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_it(spark, tmp_path, mode, body, message):
    manifest = write_manifest(tmp_path, body)
    rejects = ["--rejects-uri", "x"] if mode == "full" else []
    argv = [*BASE, "--mode", mode, *rejects, "--arguments-manifest", manifest]
    with pytest.raises(ValueError, match=message) as refused:
        expand_arguments_manifest(argv, lambda uri: storage.read_text(spark, uri))
    assert manifest in str(refused.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "full", "--rejects-uri", "x", "--input", "a.csv"], "not both"),
        (["--mode", "repair", "--repair-entity", "A"], "not both"),
    ],
)
def test_a_manifest_and_listed_values_exclude_each_other(extra, message, capsys):
    with pytest.raises(SystemExit) as exited:
        job.parse_args([*BASE, *extra, "--arguments-manifest", "m.json"])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_manifest_ends_the_run_with_3_and_a_failure_summary(spark, tmp_path):
    summary_path = tmp_path / "summary.json"
    manifest = str(tmp_path / "runs" / "energy" / "r" / "arguments.json")
    argv = [
        "--view",
        "energy",
        "--mode",
        "incremental",
        "--arguments-manifest",
        manifest,
        "--feature-view",
        str(tmp_path / "energy.json"),
        "--offline-uri",
        str(tmp_path / "offline"),
        "--rejects-uri",
        str(tmp_path / "rejects"),
        "--summary-uri",
        str(summary_path),
        "--run-id",
        "r",
    ]
    assert job.main(argv, spark=spark) == 3
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["status"] == "failed"
    assert manifest in summary["error"]
    assert summary["arguments_manifest"] == manifest
