"""Keyspaces rules the online writer must keep, which a single local Cassandra node would not refuse
(docs/AWS_CONTRACTS.md K3, K5, K7): LOCAL_QUORUM writes, no batches, the Murmur3 partitioner."""

from __future__ import annotations

import pytest

from feature_store.online_store import MURMUR3, CassandraTarget, OnlineStoreError, check_partitioner


def test_writes_are_single_row_local_quorum_statements_with_nulls_written():
    options = CassandraTarget(keyspace="ks").write_options()
    assert options["spark.cassandra.output.consistency.level"] == "LOCAL_QUORUM"
    assert options["spark.cassandra.output.batch.size.rows"] == "1"
    assert options["spark.cassandra.output.batch.grouping.key"] == "none"
    assert options["spark.cassandra.output.ignoreNulls"] == "false"
    assert int(options["spark.cassandra.connection.timeoutMS"]) <= 10_000


def test_a_partitioner_other_than_murmur3_is_refused_with_the_fix():
    check_partitioner(MURMUR3)
    with pytest.raises(OnlineStoreError, match=r"UPDATE system\.local SET partitioner"):
        check_partitioner("com.amazonaws.cassandra.DefaultPartitioner")
