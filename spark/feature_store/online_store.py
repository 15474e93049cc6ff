"""The online store: Cassandra locally, Amazon Keyspaces on AWS. One row per entity with the latest
feature vector: entity_id, feature_date, the features, updated_at.

Contract with the serving side: the online row of an entity equals its latest offline (Delta) row, and an
older feature_date never replaces a newer one. How that holds with write timestamps Keyspaces accepts:

- Keyspaces refuses a client-side timestamp more than 2 days in the past or 5 minutes in the future of its
  clock (docs/AWS_CONTRACTS.md). So a write can no longer carry a timestamp derived from the feature date
  (a 2011 backfill would be refused); every publish writes with one timestamp from the job's own clock,
  kept strictly increasing across publishes of a view by the publish log (publish_log.py), so a later
  publish always wins even when two clusters' clocks differ by a little.
- What is written is, for every entity the run changed, its latest row in the Delta version the run
  committed (read back from it, or the run's own written row where that provably is the latest row:
  offline_store.write_rows). Runs of one view never overlap (the run
  ledger starts at most one at a time), so the latest publish always carries the latest Delta state: an
  old day replayed or corrected later re-publishes the entity's newest row, not the old one.

Nulls are written as nulls (ignoreNulls=false): a newer vector's nulls replace older values, so the online
row equals the latest offline row exactly. Keyspaces needs client-side timestamps enabled on the table
(the CloudFormation generator sets ClientSideTimestampsEnabled)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .feature_view import FeatureView

WRITETIME = "writetime_micros"

# Keyspaces' window for client-side timestamps, relative to its own clock (AWS docs, "Client-side
# timestamps in Amazon Keyspaces"); the local Cassandra enforces the same with its timestamp guardrails.
TIMESTAMP_MAX_PAST = dt.timedelta(days=2)
TIMESTAMP_MAX_FUTURE = dt.timedelta(minutes=5)


class OnlineStoreError(RuntimeError):
    """The online store cannot be used (unreachable, table missing, a write it would refuse)."""


@dataclass(frozen=True)
class CassandraTarget:
    keyspace: str = "feature_store"
    host: str = "127.0.0.1"
    port: int = 9042
    datacenter: str = "datacenter1"
    profile_path: str | None = None  # Java driver profile (Keyspaces: endpoint, TLS, SigV4)
    concurrent_writes: int = 8
    # Keyspaces answers insufficient capacity with write timeouts; AWS recommends many retries
    # (docs/AWS_CONTRACTS.md K19). The Keyspaces profile sets the same count for EMR.
    retries: int = 500
    # Bounds on reaching the store, so an unreachable one fails the job in seconds instead of hanging.
    connect_timeout_ms: int = 10_000
    read_timeout_ms: int = 30_000
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

    def bounded_options(self) -> dict[str, str]:
        return {
            "spark.cassandra.connection.timeoutMS": str(self.connect_timeout_ms),
            "spark.cassandra.read.timeoutMS": str(self.read_timeout_ms),
            "spark.cassandra.connection.reconnectionDelayMS.max": "10000",
        }

    def write_options(self) -> dict[str, str]:
        return {
            **self.connection_options(),
            **self.bounded_options(),
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


def to_micros(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def check_write_timestamp(micros: int, now: dt.datetime) -> None:
    """Refuses, before anything is written, a timestamp Keyspaces would refuse row by row."""
    low, high = to_micros(now - TIMESTAMP_MAX_PAST), to_micros(now + TIMESTAMP_MAX_FUTURE)
    if not low <= micros <= high:
        stamp = dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC).isoformat()
        raise OnlineStoreError(
            f"write timestamp {micros} ({stamp}) is outside Keyspaces' window of 2 days before to 5 minutes "
            f"after now ({now.isoformat()}): the previous publish of this view carries a timestamp ahead of "
            "this cluster's clock; check the clocks (NTP) before re-running"
        )


def online_rows(latest: DataFrame, view: FeatureView, write_micros: int) -> DataFrame:
    """Offline rows (table layout) to online columns plus the write timestamp of this publish."""
    return latest.select(
        F.col(view.entity_column).alias("entity_id"),
        F.col(view.event_date_column).alias("feature_date"),
        *(F.col(f.name) for f in view.features),
        F.col("updated_at"),
        F.lit(int(write_micros)).cast("long").alias(WRITETIME),
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


class DriverSession:
    """A CQL session on the Spark driver, opened by the connector with exactly the executors' connection
    settings (the Keyspaces profile with TLS and SigV4 on EMR). For the few statements the DataFrame
    writer cannot send: the pre-flight check and deletes. Use as a context manager."""

    def __init__(self, spark: SparkSession, target: CassandraTarget) -> None:
        self._spark = spark
        self._target = target
        self._session = None

    def __enter__(self) -> DriverSession:
        jvm = self._spark.sparkContext._jvm  # noqa: SLF001 - py4j gateway to the connector
        conf = self._spark.sparkContext._jsc.sc().conf().clone()  # noqa: SLF001
        for key, value in {**self._target.write_options()}.items():
            conf.set(key, value)
        connector = jvm.com.datastax.spark.connector.cql.CassandraConnector.apply(conf)
        try:
            self._session = connector.openSession()
        except Exception as error:
            raise OnlineStoreError(f"cannot reach the online store: {_java_message(error)}") from error
        return self

    def __exit__(self, *_exc) -> None:
        if self._session is not None:
            self._session.close()

    def table_columns(self, table: str) -> set[str]:
        # Refreshed: the connector may hand out a cached session whose schema view predates a new table.
        metadata = self._session.refreshSchema().getKeyspace(_cql_id(self._target.keyspace))
        if not metadata.isPresent():
            raise OnlineStoreError(f"keyspace {self._target.keyspace} does not exist in the online store")
        found = metadata.get().getTable(_cql_id(table))
        if not found.isPresent():
            raise OnlineStoreError(f"table {self._target.keyspace}.{table} does not exist in the online store")
        return {str(c.asInternal()) for c in found.get().getColumns().keySet()}

    def partitioner(self) -> str | None:
        """The partitioner the driver learnt from system.local (None if it built no token map)."""
        token_map = self._session.getMetadata().getTokenMap()
        return str(token_map.get().getPartitionerName()) if token_map.isPresent() else None

    def delete_entities(self, table: str, entities: list[str], write_micros: int) -> int:
        """Deletes whole rows (one partition each) at this publish's timestamp, so a later write wins and
        nothing older survives. Prepared statement, LOCAL_QUORUM (Keyspaces' only write level)."""
        jvm = self._spark.sparkContext._jvm  # noqa: SLF001
        statement = self._session.prepare(
            f"DELETE FROM {self._target.keyspace}.{table} USING TIMESTAMP ? WHERE entity_id = ?"
        )
        quorum = jvm.com.datastax.oss.driver.api.core.DefaultConsistencyLevel.LOCAL_QUORUM
        gateway = self._spark.sparkContext._gateway  # noqa: SLF001
        for entity in entities:
            values = gateway.new_array(jvm.java.lang.Object, 2)
            values[0] = jvm.java.lang.Long(int(write_micros))
            values[1] = entity
            self._session.execute(statement.bind(values).setConsistencyLevel(quorum))
        return len(entities)


def check_reachable(spark: SparkSession, view: FeatureView, target: CassandraTarget) -> None:
    """Pre-flight, before anything is committed offline: the store answers within the connect bound and
    its table has every online column, so a run never commits Delta and then finds it cannot publish."""
    with DriverSession(spark, target) as session:
        check_partitioner(session.partitioner())
        columns = session.table_columns(view.online_table)
    missing = [c.name for c in view.online_columns() if c.name not in columns]
    if missing:
        raise OnlineStoreError(
            f"{target.keyspace}.{view.online_table} lacks the online columns {', '.join(missing)}: "
            "apply the schema (sls deploy, or scripts/cassandra.sh schema locally) before running the job"
        )


MURMUR3 = "org.apache.cassandra.dht.Murmur3Partitioner"


def check_partitioner(partitioner: str | None) -> None:
    """The connector writes token-aware and needs Murmur3; a Keyspaces account keeps another partitioner
    until it is changed (per account and Region, docs/AWS_CONTRACTS.md K7), so say so before writing."""
    if partitioner is not None and partitioner != MURMUR3:
        raise OnlineStoreError(
            f"the online store uses {partitioner}; the Spark Cassandra Connector needs {MURMUR3}. On Amazon "
            "Keyspaces set it once per account and Region: UPDATE system.local SET partitioner = "
            f"'{MURMUR3}' WHERE key = 'local' (docs/DEPLOY.md)"
        )


def _cql_id(name: str) -> str:
    # Our identifiers are lower-case (the feature view validates them), so the internal form is the name.
    return name


def _java_message(error: Exception) -> str:
    java = getattr(error, "java_exception", None)
    return str(java.toString()) if java is not None else str(error)
