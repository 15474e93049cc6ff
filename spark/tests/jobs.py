"""Helpers for tests that run the whole job against temporary stores."""

from __future__ import annotations

import json
import os
import uuid

from conftest import CASSANDRA_PORT, VIEW_FILE

from feature_store import job
from feature_store.online_store import CassandraTarget


def job_args(tmp_path, inputs, keyspace, mode="full", offline=None, max_reject_share=0.01, run_id=None):
    """Arguments of one run; `keyspace` must exist with the view's table (the job checks it first)."""
    run_id = run_id or f"t-{uuid.uuid4().hex[:8]}"
    argv = ["--view", "energy"]
    for uri in inputs if isinstance(inputs, list | tuple) else [inputs]:
        argv += ["--input", str(uri)]
    argv += [
        "--mode",
        mode,
        "--feature-view",
        VIEW_FILE,
        "--offline-uri",
        str(offline or tmp_path / "offline"),
        "--rejects-uri",
        str(tmp_path / "rejects" / run_id),
        "--summary-uri",
        str(tmp_path / "runs" / f"{run_id}.json"),
        "--run-id",
        run_id,
        "--keyspace",
        keyspace,
        "--cassandra-port",
        str(CASSANDRA_PORT),
        "--max-reject-share",
        str(max_reject_share),
    ]
    return argv


def run_job(spark, argv):
    """Runs main() in-process on the shared session; returns (exit code, summary read back)."""
    code = job.main(argv, spark=spark)
    summary_path = argv[argv.index("--summary-uri") + 1]
    with open(summary_path, encoding="utf-8") as handle:
        return code, json.load(handle)


def rejects(spark, argv):
    path = argv[argv.index("--rejects-uri") + 1]
    if not os.path.exists(path):
        return []
    return [r.asDict() for r in spark.read.option("header", "true").csv(path).collect()]


__all__ = ["CassandraTarget", "job_args", "rejects", "run_job"]
