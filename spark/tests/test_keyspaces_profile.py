"""The Keyspaces driver profile as the EMR step uses it: rendered for the stack's region by the deploy code
(resources/keyspaces-profile.cjs) and read by the Java driver's own config loader, the one the Spark
Cassandra Connector uses for spark.cassandra.connection.config.profile.path."""

from __future__ import annotations

import subprocess

from conftest import ROOT

RENDER = (
    "const { renderKeyspacesProfile } = require('./resources/keyspaces-profile.cjs');"
    "process.stdout.write(renderKeyspacesProfile(process.argv[1]));"
)


def test_the_rendered_profile_loads_in_the_driver_with_the_stack_region(spark, tmp_path):
    text = subprocess.run(
        ["node", "-e", RENDER, "eu-central-1"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = tmp_path / "keyspaces-application.conf"
    path.write_text(text)

    jvm = spark.sparkContext._jvm
    option = jvm.com.datastax.oss.driver.api.core.config.DefaultDriverOption
    loader = jvm.com.datastax.oss.driver.api.core.config.DriverConfigLoader.fromFile(jvm.java.io.File(str(path)))
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
