"""The one place that builds the SparkSession: Delta Lake extensions, UTC, strict date parsing.
Where it runs (local master, jars, memory) comes in as settings; spark-submit supplies them on EMR."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

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
