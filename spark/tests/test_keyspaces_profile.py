"""The Keyspaces driver profile as the EMR step uses it: rendered for the stack's region by the deploy code
(resources/keyspaces-profile.cjs) and read by the Java driver's own config loader, the one the Spark
Cassandra Connector uses for spark.cassandra.connection.config.profile.path."""

from __future__ import annotations

import subprocess

from conftest import ROOT

from feature_store.online_store import CassandraTarget, DriverSession

RENDER = (
    "const { renderKeyspacesProfile } = require('./resources/keyspaces-profile.cjs');"
    "process.stdout.write(renderKeyspacesProfile(process.argv[1]));"
)


def _rendered_profile(spark, tmp_path, region: str = "eu-central-1"):
    """The profile as the deploy renders it for `region`, written to a file: (its path, the driver's
    loader of it)."""
    text = subprocess.run(["node", "-e", RENDER, region], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = tmp_path / "keyspaces-application.conf"
    path.write_text(text)
    jvm = spark.sparkContext._jvm
    return path, jvm.com.datastax.oss.driver.api.core.config.DriverConfigLoader.fromFile(jvm.java.io.File(str(path)))


def test_the_rendered_profile_loads_in_the_driver_with_the_stack_region(spark, tmp_path):
    path, loader = _rendered_profile(spark, tmp_path)
    jvm = spark.sparkContext._jvm
    option = jvm.com.datastax.oss.driver.api.core.config.DefaultDriverOption
    profile = loader.getInitialConfig().getDefaultProfile()

    assert list(profile.getStringList(option.CONTACT_POINTS)) == ["cassandra.eu-central-1.amazonaws.com:9142"]
    assert profile.getString(option.LOAD_BALANCING_LOCAL_DATACENTER) == "eu-central-1"
    assert profile.getString(option.AUTH_PROVIDER_CLASS) == "software.aws.mcs.auth.SigV4AuthProvider"
    # The SigV4 plugin reads its own key from the same file.
    parsed = jvm.com.typesafe.config.ConfigFactory.parseFile(jvm.java.io.File(str(path))).resolve()
    assert parsed.getString("datastax-java-driver.advanced.auth-provider.aws-region") == "eu-central-1"
    assert profile.getString(option.SSL_ENGINE_FACTORY_CLASS) == "DefaultSslEngineFactory"
    assert profile.getBoolean(option.SSL_HOSTNAME_VALIDATION) is True
    assert profile.getString(option.REQUEST_CONSISTENCY) == "LOCAL_QUORUM"
    assert profile.getBoolean(option.RECONNECT_ON_INIT) is False
    assert profile.getDuration(option.CONNECTION_CONNECT_TIMEOUT).getSeconds() == 10


def _write_timeout_decisions(jvm, policy, attempts: tuple[int, ...]) -> list[str]:
    """What a retry policy decides for a single-row write that timed out at LOCAL_QUORUM, after `n` retries
    (Keyspaces reports insufficient capacity as a write timeout: docs/AWS_CONTRACTS.md K19)."""
    core = jvm.com.datastax.oss.driver.api.core
    statement = core.cql.SimpleStatement.newInstance("INSERT INTO t (k) VALUES (1)")
    quorum, simple = core.DefaultConsistencyLevel.LOCAL_QUORUM, core.servererrors.DefaultWriteType.SIMPLE
    return [str(policy.onWriteTimeoutVerdict(statement, quorum, simple, 2, 0, n).getRetryDecision()) for n in attempts]


def test_the_profile_retries_a_throttled_write_as_many_times_as_aws_recommends(spark, tmp_path):
    # The connector hands a profile file to the driver as it is: its spark.cassandra.query.retry.count
    # does not apply on EMR, the profile's retry policy does (DefaultRetryPolicy would give up on the first
    # write timeout, failing the publish on the first throttled write).
    _, loader = _rendered_profile(spark, tmp_path)
    jvm = spark.sparkContext._jvm
    arguments = jvm.com.datastax.oss.driver.api.core.session.ProgrammaticArguments.builder().build()
    context = jvm.com.datastax.oss.driver.internal.core.context.DefaultDriverContext(loader, arguments)
    policy = context.getRetryPolicies().get("default")  # built from the profile, as a session would

    retries = CassandraTarget(keyspace="ks").retries
    assert retries >= 500
    assert _write_timeout_decisions(jvm, policy, (0, retries - 1, retries)) == ["RETRY_SAME", "RETRY_SAME", "RETHROW"]


def test_the_local_session_retries_a_throttled_write_as_the_profile_does(spark, keyspace):
    # Locally the connector builds the driver's configuration from the job's options (no profile).
    target = CassandraTarget(keyspace=keyspace)
    with DriverSession(spark, target) as session:
        policy = session._session.getContext().getRetryPolicies().get("default")
        decisions = _write_timeout_decisions(spark.sparkContext._jvm, policy, (0, target.retries - 1, target.retries))
    assert decisions == ["RETRY_SAME", "RETRY_SAME", "RETHROW"]
