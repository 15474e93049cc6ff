"""The online store: Cassandra locally, Amazon Keyspaces on AWS. One row per entity with the latest
feature vector: entity_id, feature_date, the features, updated_at.

Contract with the serving side: an older feature_date never overwrites a newer one. Every row is written
with its own write timestamp (the connector's `writetime` option naming a column, i.e.
TimestampOption.perRow), derived from the feature date:

    writetime_micros = feature_epoch_day * 86_400_000_000 + job_start_epoch_seconds

It lies inside the feature day, so a newer date always wins, and a later run of the same date wins over
an earlier one. Nulls are written as nulls (ignoreNulls=false): a newer vector's nulls replace older
values, so the online row equals the latest offline row exactly. Keyspaces needs client-side timestamps
enabled on the table (the CloudFormation generator sets ClientSideTimestampsEnabled)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .feature_view import FeatureView

WRITETIME = "writetime_micros"
MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class CassandraTarget:
    keyspace: str = "feature_store"
    host: str = "127.0.0.1"
    port: int = 9042
    datacenter: str = "datacenter1"
    profile_path: str | None = None  # Java driver profile (Keyspaces: endpoint, TLS, SigV4)
    concurrent_writes: int = 8
    retries: int = 10
    # Login of the local node (scripts/cassandra.sh creates the non-superuser role feature_store_app):
    # taken from the environment, never from arguments, so no password shows in a step's arguments or
    # in `ps`. Keyspaces authenticates with SigV4 through the profile and takes no password.
    username: str | None = field(default_factory=lambda: os.environ.get("CASSANDRA_USERNAME") or None)
    password: str | None = field(default_factory=lambda: os.environ.get("CASSANDRA_PASSWORD") or None, repr=False)

    def __post_init__(self) -> None:
        if self.profile_path and (self.username or self.password):
            raise ValueError(
                "CASSANDRA_USERNAME/CASSANDRA_PASSWORD must not be set with a driver profile (Keyspaces uses SigV4)"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("CASSANDRA_USERNAME and CASSANDRA_PASSWORD must be set together")

    def connection_options(self) -> dict[str, str]:
        if self.profile_path:
            return {"spark.cassandra.connection.config.profile.path": self.profile_path}
        options = {
            "spark.cassandra.connection.host": self.host,
            "spark.cassandra.connection.port": str(self.port),
            "spark.cassandra.connection.localDC": self.datacenter,
        }
        if self.username is not None and self.password is not None:
            options["spark.cassandra.auth.username"] = self.username
            options["spark.cassandra.auth.password"] = self.password
        return options

    def write_options(self) -> dict[str, str]:
        return {
            **self.connection_options(),
            # Keyspaces accepts only LOCAL_QUORUM writes; single-row statements, no batches, bounded
            # in-flight requests per task and retries with the connector's backoff instead of halving
            # partitions until throttling stops.
            "spark.cassandra.output.consistency.level": "LOCAL_QUORUM",
            "spark.cassandra.output.batch.size.rows": "1",
            "spark.cassandra.output.batch.grouping.key": "none",
            "spark.cassandra.output.concurrent.writes": str(self.concurrent_writes),
            "spark.cassandra.output.ignoreNulls": "false",
            "spark.cassandra.query.retry.count": str(self.retries),
        }


def writetime_micros(feature_date: F.Column, job_start_epoch_seconds: int) -> F.Column:
    epoch_day = F.datediff(feature_date, F.lit("1970-01-01").cast("date")).cast("long")
    return epoch_day * F.lit(MICROS_PER_DAY) + F.lit(int(job_start_epoch_seconds))


def online_rows(latest: DataFrame, view: FeatureView, job_start_epoch_seconds: int) -> DataFrame:
    """Offline rows (table layout) to online columns plus the per-row write timestamp."""
    return latest.select(
        F.col(view.entity_column).alias("entity_id"),
        F.col(view.event_date_column).alias("feature_date"),
        *(F.col(f.name) for f in view.features),
        F.col("updated_at"),
        writetime_micros(F.col(view.event_date_column), job_start_epoch_seconds).alias(WRITETIME),
    )


def write_online(rows: DataFrame, view: FeatureView, target: CassandraTarget) -> None:
    (
        rows.write.format("org.apache.spark.sql.cassandra")
        .options(table=view.online_table, keyspace=target.keyspace)
        .options(**target.write_options())
        .option("writetime", WRITETIME)
        .mode("append")
        .save()
    )
