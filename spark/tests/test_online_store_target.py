"""CassandraTarget's connection settings: the local node's login comes from the environment (never from
arguments), and a Keyspaces driver profile (SigV4) refuses a password."""

from __future__ import annotations

import pytest

from feature_store.online_store import CassandraTarget


def test_local_login_comes_from_the_environment_into_the_connector_auth_options(monkeypatch):
    monkeypatch.setenv("CASSANDRA_USERNAME", "feature_store_app")
    monkeypatch.setenv("CASSANDRA_PASSWORD", "s3cret")
    target = CassandraTarget("ks", port=19042)
    options = target.write_options()
    assert options["spark.cassandra.auth.username"] == "feature_store_app"
    assert options["spark.cassandra.auth.password"] == "s3cret"
    assert options["spark.cassandra.connection.port"] == "19042"
    # A target printed in a log or an error never shows the password.
    assert "s3cret" not in repr(target)


def test_no_login_in_the_environment_means_no_auth_options(monkeypatch):
    monkeypatch.delenv("CASSANDRA_USERNAME", raising=False)
    monkeypatch.delenv("CASSANDRA_PASSWORD", raising=False)
    options = CassandraTarget("ks").connection_options()
    assert not any(key.startswith("spark.cassandra.auth.") for key in options)


def test_a_keyspaces_profile_refuses_a_password(monkeypatch):
    monkeypatch.setenv("CASSANDRA_USERNAME", "feature_store_app")
    monkeypatch.setenv("CASSANDRA_PASSWORD", "s3cret")
    with pytest.raises(ValueError, match="SigV4"):
        CassandraTarget("ks", profile_path="/etc/keyspaces-application.conf")


def test_a_username_without_password_is_refused(monkeypatch):
    monkeypatch.setenv("CASSANDRA_USERNAME", "feature_store_app")
    monkeypatch.delenv("CASSANDRA_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="together"):
        CassandraTarget("ks")
