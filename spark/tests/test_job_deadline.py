"""EMR steps have no timeout of their own (docs/AWS_CONTRACTS.md): the job ends itself after
--timeout-minutes, with exit status 124 and a failure summary, in a real spark-submit process."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time

from conftest import ROOT
from jobs import job_args

from tools import synthetic


def test_a_run_past_its_timeout_ends_with_124_and_a_failure_summary(keyspace, tmp_path):
    frame = synthetic.generate_frame(households=20, start=dt.date(2012, 1, 1), end=dt.date(2012, 12, 31), seed=4)
    path = tmp_path / "raw.csv"
    synthetic.write_csv(frame, str(path))
    argv = [*job_args(tmp_path, [path], keyspace=keyspace), "--timeout-minutes", "0.01"]
    started = time.monotonic()
    result = subprocess.run(
        [os.path.join(ROOT, "scripts", "spark-submit.sh"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPARK_DRIVER_MEMORY": "1g"},
    )
    assert result.returncode == 124, result.stderr[-2000:]
    summary_path = argv[argv.index("--summary-uri") + 1]
    with open(summary_path, encoding="utf-8") as handle:
        summary = json.load(handle)
    assert summary["status"] == "failed"
    assert summary["error"] == "timed out after 0.01 minutes (--timeout-minutes)"
    assert time.monotonic() - started < 120
