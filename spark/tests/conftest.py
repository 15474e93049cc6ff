"""Shared fixtures: the feature views compiled once per session (by the TypeScript compiler, as the
deploy does), one local SparkSession for the whole run (local[2], few shuffle partitions, the local jar
set, no downloads) and a throw-away Cassandra keyspace for the store tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

SPARK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(SPARK_DIR)
# Filled by pytest_configure before any test module is collected; VIEW_FILE is what the job's
# --feature-view gets, as on EMR.
COMPILED_VIEWS_DIR = tempfile.mkdtemp(prefix="sfs-compiled-views-")
VIEW_FILE = os.path.join(COMPILED_VIEWS_DIR, "energy.json")
if SPARK_DIR not in sys.path:
    sys.path.insert(0, SPARK_DIR)
# The Python workers import the package too (the feature kernel runs there), as they do on EMR from the
# --py-files zip: the driver JVM, started below, passes PYTHONPATH on to them.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SPARK_DIR, os.environ.get("PYTHONPATH")) if p)

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# Keep the test Spark driver on loopback, as scripts/lib.sh does for every script.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
LOCAL_DIR = os.environ.get("FEATURE_STORE_LOCAL_DIR", os.path.join(ROOT, ".local"))
CASSANDRA_PORT = int(os.environ.get("CASSANDRA_PORT", "9042"))


def local_cassandra_credentials() -> tuple[str, str] | None:
    """The project role's login, from the file scripts/cassandra.sh start writes (docs/LOCAL_CASSANDRA.md);
    the same source as scripts/cassandra/local-credentials.ts."""
    path = os.path.join(LOCAL_DIR, "cassandra", "credentials")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        values = dict(line.strip().split("=", 1) for line in handle if "=" in line)
    return values["CASSANDRA_USERNAME"], values["CASSANDRA_PASSWORD"]


# The jobs run in-process take their login from the environment, as the local job runner gives it to
# spark-submit (CassandraTarget reads CASSANDRA_USERNAME / CASSANDRA_PASSWORD).
_credentials = local_cassandra_credentials()
if _credentials is not None:
    os.environ.setdefault("CASSANDRA_USERNAME", _credentials[0])
    os.environ.setdefault("CASSANDRA_PASSWORD", _credentials[1])


def compile_views(out_dir: str) -> None:
    """Runs scripts/compile-views.ts (node, through the project's tsx) into out_dir."""
    tsx = os.path.join(ROOT, "node_modules", ".bin", "tsx")
    result = subprocess.run(
        [tsx, "scripts/compile-views.ts", "--out", out_dir], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise pytest.UsageError(f"compiling the feature views failed (exit {result.returncode}):\n{result.stderr}")


def pytest_configure(config):
    compile_views(COMPILED_VIEWS_DIR)


def pytest_unconfigure(config):
    shutil.rmtree(COMPILED_VIEWS_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def spark():
    from feature_store.session import SessionSettings, build_spark_session, local_jars

    session = build_spark_session(
        SessionSettings(
            app_name="feature-store-tests",
            master="local[2]",
            jars=local_jars(),
            driver_memory="2g",
            shuffle_partitions=2,
            extra_conf={
                "spark.ui.enabled": "false",
                "spark.default.parallelism": "2",
                "spark.sql.adaptive.coalescePartitions.enabled": "true",
                "spark.databricks.delta.snapshotPartitions": "2",
                "spark.ui.showConsoleProgress": "false",
            },
        )
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def view():
    from feature_store.feature_view import load_compiled_view

    return load_compiled_view(VIEW_FILE)


@pytest.fixture(scope="session")
def cassandra_session():
    """A driver session on the local node. Unreachable Cassandra fails the tests that need it (CI starts
    it first with scripts/cassandra.sh start); it never skips them."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster
    from cassandra.policies import DCAwareRoundRobinPolicy

    host = os.environ.get("CASSANDRA_HOST", "127.0.0.1")
    port = CASSANDRA_PORT
    username, password = os.environ.get("CASSANDRA_USERNAME"), os.environ.get("CASSANDRA_PASSWORD")
    if not username or not password:
        pytest.fail(f"no Cassandra credentials in {LOCAL_DIR}/cassandra (scripts/cassandra.sh start creates them)")
    cluster = Cluster(
        [host],
        port=port,
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc="datacenter1"),
        protocol_version=5,
        # The project's non-superuser role: Cassandra's guardrails (the Keyspaces timestamp window) apply to it.
        auth_provider=PlainTextAuthProvider(username=username, password=password),
    )
    try:
        session = cluster.connect()
    except Exception as error:  # noqa: BLE001 - any connection failure is a test failure
        pytest.fail(f"Cassandra is not reachable on {host}:{port} (start it with scripts/cassandra.sh start): {error}")
    yield session
    cluster.shutdown()


@pytest.fixture
def make_keyspace(cassandra_session, view):
    """Creates fresh keyspaces with the view's online table (from the generated CQL); drops them afterwards."""
    created = []

    def make() -> str:
        name = f"sfs_spark_test_{uuid.uuid4().hex[:10]}"
        cassandra_session.execute(view.create_keyspace_cql(name))
        cassandra_session.execute(view.create_table_cql(name))
        created.append(name)
        return name

    yield make
    for name in created:
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {name}")


@pytest.fixture
def keyspace(make_keyspace):
    return make_keyspace()
