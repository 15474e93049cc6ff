"""Benchmark of the Spark feature job at seed scale, with the seed notebook's approach as a same-machine,
same-run baseline. Not a test. Writes bench/results/pipeline-<timestamp>.json.

    .local/venv/bin/python bench/pipeline_bench.py [--households 5560] [--skip-baseline]

1. Generates (once, cached in .local/bench) the seed-scale raw file, 2011-11-23..2014-02-27 (~3.5M rows),
   and a one-day file for 2014-02-28.
2. Full backfill with scripts/spark-submit.sh into a fresh Delta table and keyspace `bench_pipeline`.
3. Incremental run of the one-day file.
4. Baseline, re-expressed on the same engines: running windows (rowsBetween) over all rows anchored at the
   fixed date 2014-02-28, nulls filled with 0, the full history written online into a table clustered by
   (id, day), and the offline copy overwritten. (Run as `spark-submit bench/pipeline_bench.py --baseline-app`.)
Each run is timed from spark-submit start to exit, with the CPU seconds of its process tree; peak memory
is the highest sampled RSS sum of the spark-submit process tree (driver JVM + Python driver + Python
workers), sampled every 0.25 s from /proc;
the JSON lists the processes of that peak sample (`peak_processes`), so an outlier says what made it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import resource
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = os.environ.get("FEATURE_STORE_LOCAL_DIR", os.path.join(ROOT, ".local"))
WORK = os.path.join(LOCAL, "bench", "pipeline")
# The job reads the view compiled (scripts/compile-views.ts); main() compiles it first.
COMPILED_VIEWS_DIR = os.path.join(LOCAL, "compiled-views")
VIEW_FILE = os.path.join(COMPILED_VIEWS_DIR, "energy.json")
KEYSPACE = "bench_pipeline"
BASELINE_TABLE = "energy_history_baseline"
ANCHOR = "2014-02-28"


# --- measuring ------------------------------------------------------------------------------------


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, RSS bytes) of a process, from /proc/<pid>/stat; None if it has gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def _tree_rss(root_pid: int) -> tuple[int, list[tuple[int, int]]]:
    """RSS of a process and all its descendants, from /proc: the sum and each process's (pid, bytes).
    Not counted: a process the JVM is starting. Java starts processes with posix_spawn, whose child
    shares the JVM's memory until it execs, so for that instant /proc shows a second process with the
    JVM's command line and the JVM's whole RSS (measured: two 2,089 MiB "JVMs" in one sample of a
    backfill whose JVM was 2,089 MiB; Hadoop's local file system starts a process per permission change).
    A process is counted when its command line, read before and after its RSS, is the same both times and
    is not its parent's JVM's; Python workers forked by pyspark.daemon run on and are counted."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[0], []).append(int(entry))
    tree, stack = [], [(root_pid, b"")]
    while stack:
        pid, parent_command = stack.pop()
        before = _cmdline(pid)
        stat = _stat(pid)
        after = _cmdline(pid)
        being_spawned = before == parent_command and before.split(b"\0", 1)[0].endswith(b"/java")
        if stat is None or before != after or being_spawned:
            continue  # gone, exec'ing, or the JVM's own memory seen through a child it is starting
        tree.append((pid, stat[1]))
        stack.extend((child, before) for child in children.get(pid, []))
    return sum(b for _, b in tree), tree


def _described(tree: list[tuple[int, int]]) -> list[dict]:
    """The processes of a peak, largest first, named by their command line (so a peak says what made it)."""
    described = []
    for pid, size in sorted(tree, key=lambda p: -p[1]):
        argv = _cmdline(pid).split(b"\0")
        command = " ".join(a.decode(errors="replace") for a in argv[:3])[:100] or "(exited)"
        described.append({"rss_mib": round(size / 2**20), "command": command})
    return described


def measured_run(name: str, command: list[str], env: dict[str, str]) -> dict:
    print(f"[bench] {name}: {' '.join(command)}", flush=True)
    log_path = os.path.join(WORK, f"{name}.log")
    # Each run's own load (1, 5, 15 min) at its start and end: the incremental run starts straight after
    # the backfill, when the 1-minute average still shows the backfill's two busy cores.
    load_at_start = os.getloadavg()
    # CPU seconds of the run's process tree (user + system, every process it waited for): the work done,
    # which the load beside it changes less than the wall time.
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        peak, at_peak = 0, []
        done = threading.Event()

        def sample():
            nonlocal peak, at_peak
            while not done.is_set():
                total, tree = _tree_rss(process.pid)
                if total > peak:
                    peak, at_peak = total, _described(tree)
                done.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = process.wait(timeout=3600)
        finally:
            done.set()
            sampler.join()
    wall = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    load_at_end = os.getloadavg()
    print(
        f"[bench] {name}: exit {code} in {wall:.1f} s ({cpu:.1f} CPU-s), peak RSS {peak / 2**20:.0f} MiB, "
        f"load {load_at_start[0]:.2f} -> {load_at_end[0]:.2f}",
        flush=True,
    )
    if code != 0:
        raise SystemExit(f"{name} failed (exit {code}); see {log_path}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),
        "peak_rss_mib": round(peak / 2**20),
        "peak_processes": at_peak,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
        "log": log_path,
    }


# --- data and stores ------------------------------------------------------------------------------


def generate(households: int) -> tuple[str, str, int, int]:
    os.makedirs(WORK, exist_ok=True)
    full = os.path.join(WORK, f"raw-{households}-full.csv")
    day = os.path.join(WORK, f"raw-{households}-{ANCHOR}.csv")
    if not (os.path.exists(full) and os.path.exists(day)):
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tools.synthetic",
                "--out",
                full,
                "--households",
                str(households),
                "--split-at",
                ANCHOR,
                "--split-out",
                day,
            ],
            cwd=os.path.join(ROOT, "spark"),
            check=True,
        )
        print(f"[bench] generated data in {time.monotonic() - started:.1f} s", flush=True)
    return full, day, _rows(full), _rows(day)


def _rows(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def use_local_login() -> None:
    """Puts the local node's login (the project role, from the file scripts/cassandra.sh start writes; see
    scripts/cassandra/local-credentials.ts) in the environment, where the job, the baseline app and the
    sessions below read it: the node refuses anonymous sessions, as Keyspaces does."""
    if os.environ.get("CASSANDRA_USERNAME"):
        return
    path = os.path.join(LOCAL, "cassandra", "credentials")
    if not os.path.exists(path):
        sys.exit(f"[bench] no {path}: start the node with scripts/cassandra.sh start")
    with open(path, encoding="utf-8") as handle:
        os.environ.update(line.strip().split("=", 1) for line in handle if "=" in line)


def _cluster():
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    auth = PlainTextAuthProvider(username=os.environ["CASSANDRA_USERNAME"], password=os.environ["CASSANDRA_PASSWORD"])
    return Cluster(["127.0.0.1"], port=9042, protocol_version=5, auth_provider=auth)


def reset_keyspace() -> None:
    sys.path.insert(0, os.path.join(ROOT, "spark"))

    from feature_store.feature_view import load_compiled_view

    view = load_compiled_view(VIEW_FILE)
    cluster = _cluster()
    session = cluster.connect()
    session.default_timeout = 120
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")
    session.execute(view.create_keyspace_cql(KEYSPACE))
    session.execute(view.create_table_cql(KEYSPACE))
    # The seed's online table: the full history, one row per (id, day).
    columns = ",\n".join(f"  {c.name} {c.cql_type}" for c in view.online_columns()[2:-1])
    session.execute(
        f"CREATE TABLE {KEYSPACE}.{BASELINE_TABLE} (\n  entity_id text,\n  feature_date date,\n{columns},\n"
        "  PRIMARY KEY (entity_id, feature_date))"
    )
    cluster.shutdown()


def tick_node_clock() -> None:
    """Makes the node take a fresh timestamp of its own, as `npm run local` does every minute
    (local/cassandra-clock.ts): the node measures its timestamp guardrails (2 days back, 5 minutes ahead,
    docs/AWS_CONTRACTS.md K1) from the last timestamp it generated itself, not from its wall clock, so
    after a few quiet minutes it would refuse a publish stamped now, which Keyspaces accepts. A conditional
    update that cannot apply (no row has this entity id) writes nothing."""
    sys.path.insert(0, os.path.join(ROOT, "spark"))

    from feature_store.feature_view import load_compiled_view

    view = load_compiled_view(VIEW_FILE)
    cluster = _cluster()
    session = cluster.connect()
    session.execute(
        f"UPDATE {KEYSPACE}.{view.online_table} SET feature_date = null WHERE entity_id = %s IF EXISTS",
        ["__local_clock__"],
    )
    cluster.shutdown()


def drop_keyspace() -> None:
    cluster = _cluster()
    session = cluster.connect()
    session.default_timeout = 120
    session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")
    cluster.shutdown()


def job_command(inputs: str, mode: str, run_id: str) -> list[str]:
    return [
        "bash",
        os.path.join(ROOT, "scripts", "spark-submit.sh"),
        "--view",
        "energy",
        "--input",
        inputs,
        "--mode",
        mode,
        "--feature-view",
        VIEW_FILE,
        "--offline-uri",
        os.path.join(WORK, "offline"),
        "--rejects-uri",
        os.path.join(WORK, "rejects", run_id),
        "--summary-uri",
        os.path.join(WORK, "runs", f"{run_id}.json"),
        "--run-id",
        run_id,
        "--keyspace",
        KEYSPACE,
    ]


# --- the baseline app (runs inside spark-submit) --------------------------------------------------


def baseline_app(raw: str, offline: str) -> None:
    """The seed notebook's approach on the same engines: explicit schema, running windows anchored at
    a fixed date, nulls filled with 0, the whole history written online and overwritten offline."""
    sys.path.insert(0, os.path.join(ROOT, "spark"))
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType

    from feature_store.feature_view import load_compiled_view
    from feature_store.session import SessionSettings, build_spark_session

    view = load_compiled_view(VIEW_FILE)
    spark = build_spark_session(SessionSettings(app_name="pipeline-bench-baseline"))
    schema = StructType(
        [StructField("household_id", StringType()), StructField("day", DateType())]
        + [StructField(c.name, IntegerType() if c.type == "int" else DoubleType()) for c in view.source_columns]
    )
    df = spark.read.option("header", "true").schema(schema).csv(raw)
    running = Window.partitionBy("household_id").orderBy("day").rowsBetween(Window.unboundedPreceding, 0)
    columns = [F.col("household_id").alias("entity_id"), F.col("day").alias("feature_date")]
    columns += [F.col(c.name) for c in view.source_columns]
    functions = {"sum": F.sum, "count": F.count, "max": F.max, "mean": F.avg, "stddev": F.stddev_samp}
    for feature in view.aggregate_features:
        # Anchored at the fixed date: only days within the window before 2014-02-28 count, for every row.
        anchored = F.when(
            F.col("day") > F.date_sub(F.lit(ANCHOR).cast("date"), int(feature.window_days)), F.col(feature.source)
        )
        columns.append(functions[feature.aggregate](anchored).over(running).alias(feature.name))
    features = df.select(*columns).fillna(0)
    features.write.format("delta").mode("overwrite").save(offline)
    (
        features.write.format("org.apache.spark.sql.cassandra")
        .options(table=BASELINE_TABLE, keyspace=KEYSPACE)
        .options(
            **{
                "spark.cassandra.connection.host": "127.0.0.1",
                "spark.cassandra.connection.localDC": "datacenter1",
                "spark.cassandra.auth.username": os.environ["CASSANDRA_USERNAME"],
                "spark.cassandra.auth.password": os.environ["CASSANDRA_PASSWORD"],
            }
        )
        .mode("append")
        .save()
    )
    spark.stop()


# --- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=5_560)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--baseline-app", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw", help=argparse.SUPPRESS)
    parser.add_argument("--offline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_app:
        baseline_app(args.raw, args.offline)
        return 0

    use_local_login()
    full, day, full_rows, day_rows = generate(args.households)
    subprocess.run(["rm", "-rf", os.path.join(WORK, "offline"), os.path.join(WORK, "baseline-offline")], check=True)
    subprocess.run(
        [os.path.join(ROOT, "node_modules", ".bin", "tsx"), "scripts/compile-views.ts", "--out", COMPILED_VIEWS_DIR],
        cwd=ROOT,
        check=True,
    )
    reset_keyspace()
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = os.path.join(LOCAL, "venv", "bin", "python")  # also how spark-submit finds SPARK_HOME
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict = {
        "benchmark": "pipeline",
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "spark": {
            "master": env.get("SPARK_MASTER", "local[2]"),
            "driver_memory": env.get("SPARK_DRIVER_MEMORY", "1536m"),  # scripts/spark-submit.sh's default
            "baseline_driver_memory": env.get("SPARK_DRIVER_MEMORY", "4g"),  # the seed's launcher (_baseline_submit)
            # Class-data-sharing archives the launcher had before the first run (none: the first run
            # writes one as its JVM exits, which adds to its wall time; see scripts/spark-submit.sh).
            "class_data_sharing": env.get("SPARK_CDS", "on"),
            "cds_archives_at_start": sorted(glob.glob(os.path.join(LOCAL, "spark", "cds", "*.jsa"))),
        },
        "data": {"households": args.households, "full_rows": full_rows, "incremental_rows": day_rows},
    }
    runs = {}
    tick_node_clock()
    runs["full_backfill"] = measured_run("full", job_command(full, "full", f"bench-full-{stamp}"), env)
    runs["full_backfill"]["rows_per_s"] = round(full_rows / runs["full_backfill"]["wall_s"])
    runs["full_backfill"]["summary"] = _summary(f"bench-full-{stamp}")
    tick_node_clock()
    runs["incremental_one_day"] = measured_run(
        "incremental", job_command(day, "incremental", f"bench-incr-{stamp}"), env
    )
    runs["incremental_one_day"]["rows_per_s"] = round(day_rows / runs["incremental_one_day"]["wall_s"])
    runs["incremental_one_day"]["summary"] = _summary(f"bench-incr-{stamp}")
    if not args.skip_baseline:
        runs["baseline_full"] = measured_run("baseline", _baseline_submit(full), env)
        runs["baseline_full"]["rows_per_s"] = round(full_rows / runs["baseline_full"]["wall_s"])
    result["runs"] = runs
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    out = os.path.join(ROOT, "bench", "results", f"pipeline-{stamp}.json")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, default=str)
    print(json.dumps(result, indent=2, default=str))
    print(f"[bench] wrote {out}")
    drop_keyspace()
    return 0


def _baseline_submit(full: str) -> list[str]:
    """spark-submit of this file in baseline mode, with the same jars, memory and master as the job."""
    jars = ",".join(
        sorted(os.path.join(LOCAL, "jars", "spark", j) for j in os.listdir(os.path.join(LOCAL, "jars", "spark")))
    )
    return [
        os.path.join(LOCAL, "venv", "bin", "spark-submit"),
        "--master",
        os.environ.get("SPARK_MASTER", "local[2]"),
        "--driver-memory",
        os.environ.get("SPARK_DRIVER_MEMORY", "4g"),
        "--jars",
        jars,
        "--conf",
        "spark.sql.shuffle.partitions=8",
        "--conf",
        "spark.ui.enabled=false",
        os.path.join(ROOT, "bench", "pipeline_bench.py"),
        "--baseline-app",
        "--raw",
        full,
        "--offline",
        os.path.join(WORK, "baseline-offline"),
    ]


def _summary(run_id: str) -> dict:
    with open(os.path.join(WORK, "runs", f"{run_id}.json"), encoding="utf-8") as handle:
        return json.load(handle)


if __name__ == "__main__":
    raise SystemExit(main())
