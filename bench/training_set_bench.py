"""Training-set benchmark: 1M labelled events joined point-in-time against a seed-scale offline
energy table (5,560 households, ~820 days, ~3.5M rows, the view's 22 features), on this machine.

    .local/venv/bin/python bench/training_set_bench.py [--events 1000000] [--reuse]

Generates the offline Delta table and the events (Parquet) under .local/bench/training-set (kept
with --reuse), then runs the training-set job's run() in-process, timing it and sampling the RSS
of this Python process plus the Spark JVM. Writes bench/results/training-set-<utc>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "spark"))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import training_set_job
from feature_store.feature_view import load_compiled_view
from feature_store.offline_store import ensure_table
from feature_store.session import SessionSettings, build_spark_session, local_jars

# The job reads the view compiled (scripts/compile-views.ts); main() compiles it first.
COMPILED_VIEWS_DIR = ROOT / ".local/compiled-views"
VIEW_FILE = COMPILED_VIEWS_DIR / "energy.json"
FIRST_DAY = "2011-11-23"


def session(driver_memory: str, shuffle_partitions: int) -> SparkSession:
    return build_spark_session(
        SessionSettings(
            app_name="training-set-bench",
            master="local[2]",
            jars=local_jars(),
            driver_memory=driver_memory,
            shuffle_partitions=shuffle_partitions,
            extra_conf={
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
            },
        )
    )


def generate_offline(spark: SparkSession, uri: str, entities: int, days: int) -> None:
    """One row per (household, day) from a per-household start day (households join the trial
    over time, as in the seed data), with every feature column of the energy view, in the feature
    job's own table layout (offline_store.ensure_table: month partitions, bookkeeping columns)."""
    view = load_compiled_view(str(VIEW_FILE))
    grid = spark.range(0, entities * days, numPartitions=8)
    household = (F.col("id") / days).cast("long")
    day_index = F.col("id") % days
    start = F.pmod(F.xxhash64(household), F.lit(days * 46 // 100))  # mean span ~ 0.77 * days
    rows = grid.select(
        F.format_string("MAC%06d", household).alias("household_id"),
        F.date_add(F.lit(FIRST_DAY).cast("date"), day_index.cast("int")).alias("day"),
        day_index.alias("_d"),
        start.alias("_start"),
    ).where(F.col("_d") >= F.col("_start"))
    columns = [
        (F.rand(seed=i) * 5000).cast("double" if f.type == "double" else "int").alias(f.name)
        for i, f in enumerate(view.features)
    ]
    table = rows.select(
        "household_id",
        "day",
        *columns,
        F.current_timestamp().alias("updated_at"),
        F.lit("bench").alias("run_id"),
    )
    ensure_table(spark, uri, view)
    table.write.format("delta").mode("append").save(uri)


def generate_events(spark: SparkSession, uri: str, n: int, entities: int, days: int) -> None:
    """Events at random times over the whole period; 1% of ids are unknown to the store."""
    ids = F.floor(F.rand(seed=101) * entities * 1.01).cast("long")
    seconds = (F.rand(seed=102) * days * 86400).cast("long")
    spark.range(0, n, numPartitions=4).select(
        F.format_string("MAC%06d", ids).alias("household_id"),
        F.timestamp_seconds(F.unix_timestamp(F.lit(FIRST_DAY), "yyyy-MM-dd") + seconds).alias("label_time"),
        (F.rand(seed=103) > 0.5).cast("int").alias("label"),
    ).write.mode("overwrite").parquet(uri)


class RssSampler:
    """Peak resident memory of this process and its descendants (the Spark JVM), every 200 ms."""

    def __init__(self) -> None:
        self.peak_total = self.peak_jvm = self.peak_python = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree() -> dict[int, tuple[int, int]]:
        """pid -> (ppid, rss bytes) for every process."""
        page = os.sysconf("SC_PAGE_SIZE")
        procs = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                procs[int(entry)] = (int(fields[1]), int(fields[21]) * page)
            except (OSError, IndexError):
                continue
        return procs

    def sample(self) -> None:
        procs = self._tree()
        me = os.getpid()
        python = procs.get(me, (0, 0))[1]
        children, frontier = set(), {me}
        while frontier:
            frontier = {p for p, (pp, _) in procs.items() if pp in frontier} - children
            children |= frontier
        jvm = sum(procs[p][1] for p in children if p in procs)
        self.peak_python = max(self.peak_python, python)
        self.peak_jvm = max(self.peak_jvm, jvm)
        self.peak_total = max(self.peak_total, python + jvm)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=5560)
    parser.add_argument("--days", type=int, default=820)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--work-dir", default=str(ROOT / ".local/bench/training-set"))
    parser.add_argument("--reuse", action="store_true", help="keep previously generated inputs")
    parser.add_argument("--max-age-days", type=int, default=None)
    parser.add_argument("--preserve-order", action="store_true", help="time the input-order variant")
    args = parser.parse_args()

    subprocess.run(
        [str(ROOT / "node_modules/.bin/tsx"), "scripts/compile-views.ts", "--out", str(COMPILED_VIEWS_DIR)],
        cwd=ROOT,
        check=True,
    )
    work = Path(args.work_dir)
    offline, events = work / "offline", work / f"events-{args.events}"
    spark = session(args.driver_memory, args.shuffle_partitions)
    spark.sparkContext.setLogLevel("WARN")
    started = time.monotonic()
    if not (args.reuse and (offline / "energy/_delta_log").exists()):
        generate_offline(spark, str(offline / "energy"), args.entities, args.days)
    if not (args.reuse and events.exists()):
        generate_events(spark, str(events), args.events, args.entities, args.days)
    generation_s = time.monotonic() - started

    job_argv = [
        *("--events", str(events), "--events-format", "parquet"),
        *("--entity-column", "household_id", "--event-time-column", "label_time"),
        *(
            "--view",
            "energy",
            "--feature-view",
            str(VIEW_FILE),
            "--offline-uri",
            str(offline),
        ),
        *("--output", str(work / "output"), "--output-format", "parquet"),
        *("--manifest-uri", str(work / "manifest.json")),
    ]
    if args.max_age_days is not None:
        job_argv += ["--max-age-days", f"energy={args.max_age_days}"]
    if args.preserve_order:
        job_argv.append("--preserve-order")
    runs = []
    load_before = os.getloadavg()
    with RssSampler() as rss:
        for attempt in ("cold", "warm"):
            t0 = time.monotonic()
            manifest = training_set_job.run(spark, training_set_job.parse_args(job_argv))
            runs.append({"run": attempt, "wall_s": round(time.monotonic() - t0, 1)})
    offline_rows = spark.read.format("delta").load(str(offline / "energy")).count()
    spark.stop()

    view = manifest["views"]["energy"]
    result = {
        "benchmark": "training-set",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "spark_master": "local[2]",
            "driver_memory": args.driver_memory,
            "shuffle_partitions": args.shuffle_partitions,
        },
        "inputs": {
            "events": manifest["events"]["rows"],
            "offline_rows": offline_rows,
            "entities": args.entities,
            "days": args.days,
            "features": len(view["features"]),
            "max_age_days": args.max_age_days,
            "preserve_order": args.preserve_order,
        },
        # This machine is shared: the 1-minute load average shows how contended the run was.
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "generation_s": round(generation_s, 1),
        "runs": runs,
        "output_rows": manifest["output"]["rows"],
        "rows_without_features": view["rows_without_features"],
        "peak_rss_mb": {
            "total": rss.peak_total // 2**20,
            "jvm": rss.peak_jvm // 2**20,
            "python": rss.peak_python // 2**20,
        },
        "what_is_timed": "training_set_job.run: read events, resolve version, as-of join, "
        "write Parquet, read back for counts/checksum, count events, write manifest",
    }
    out_dir = ROOT / "bench/results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"training-set-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
