"""The one place that builds the SparkSession: Delta Lake extensions, UTC, strict date parsing.
Where it runs (local master, jars, memory) comes in as settings; spark-submit supplies them on EMR."""

from __future__ import annotations

import glob
import os
import sys
import threading
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql.types import LongType, StructField, StructType

# Settings every run needs, whatever launched it.
BASE_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Dates are calendar days: no time zone may shift them.
    "spark.sql.session.timeZone": "UTC",
    # Invalid dates (2013-02-29) parse to null and are rejected, instead of raising upgrade errors.
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    # Casts of bad numbers give null (checked and rejected by the job), never an exception mid-stage.
    "spark.sql.ansi.enabled": "false",
}


@dataclass(frozen=True)
class SessionSettings:
    app_name: str = "feature-store"
    master: str | None = None  # None: whatever spark-submit set
    jars: tuple[str, ...] = ()  # local jar files (spark.jars); never packages to download
    driver_memory: str | None = None  # only effective when this call starts the JVM
    shuffle_partitions: int | None = None
    extra_conf: dict[str, str] = field(default_factory=dict)


def local_jars(local_dir: str | None = None) -> tuple[str, ...]:
    """The local jar set built by scripts/setup-jars.sh (.local/jars/spark/*.jar)."""
    root = local_dir or os.environ.get("FEATURE_STORE_LOCAL_DIR") or os.path.join(_project_root(), ".local")
    jars = tuple(sorted(glob.glob(os.path.join(root, "jars", "spark", "*.jar"))))
    if not jars:
        raise RuntimeError(f"No jars in {root}/jars/spark: run scripts/setup-jars.sh first")
    return jars


def _project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_spark_session(settings: SessionSettings) -> SparkSession:
    builder = SparkSession.builder.appName(settings.app_name)
    if settings.master:
        builder = builder.master(settings.master)
    conf = dict(BASE_CONF)
    if settings.jars:
        conf["spark.jars"] = ",".join(settings.jars)
    if settings.driver_memory:
        conf["spark.driver.memory"] = settings.driver_memory
    if settings.shuffle_partitions:
        conf["spark.sql.shuffle.partitions"] = str(settings.shuffle_partitions)
    conf.update(settings.extra_conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def start_python_workers(spark: SparkSession) -> threading.Thread:
    """Starts, in the background, the executors' Python workers that run Arrow functions (the kernel,
    features.py), with the kernel's libraries loaded: a job of one tiny task, run while the driver is
    still reading and planning. The kernel's first task then finds a worker ready instead of starting it
    and importing numpy, pyarrow, pandas (which pyarrow loads on a first to_numpy) and this package: 1-3.6 s
    of a one-day run, measured (docs/PERFORMANCE.md). One task, not one per core: a daily run's kernel is
    one task (its merged rows are few), and a task per core held every core while the input was being
    read (paired 5 runs: read/validate median 4.1 vs 5.0 s). Workers are reused across tasks
    (spark.python.worker.reuse, on by default). A mapInArrow, not an RDD job: Spark keys worker pools by
    their environment, and SQL's Python runners add SPARK_SIMPLIFIED_TRACEBACK, so workers an RDD job
    starts would not serve the kernel. It never fails the run."""

    def warm() -> None:
        try:
            schema = StructType([StructField("id", LongType(), False)])
            spark.range(1, numPartitions=1).mapInArrow(_load_kernel_libraries, schema).collect()
        except Exception as error:  # noqa: BLE001 - a cold worker is slower, never wrong
            reason = f"{type(error).__name__}: {error}"
            print(
                f"python workers were not started ahead (harmless: the kernel starts its own): {reason}",
                file=sys.stderr,
            )

    thread = threading.Thread(target=warm, name="python-workers", daemon=True)
    thread.start()
    return thread


def _load_kernel_libraries(batches):
    """In a Python worker: what the kernel imports (its module-level function comes from this package)."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.compute  # noqa: F401

    from . import features  # noqa: F401

    yield from batches
