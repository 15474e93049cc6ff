"""The Python client against a running local HTTP API with IAM auth on.

Run by tests/integration/clients.test.ts, which starts the API (getFeatures on a real Cassandra, SigV4
verified) and seeds it, and passes: FEATURE_STORE_URL, the local credentials as AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (so botocore's standard chain finds them), AWS_REGION, and FEATURE_STORE_FAULT_URL
(POST /outage?healAfterMs=N makes the store unreachable, then heals it). Without them it is skipped.
"""

from __future__ import annotations

import os
import time

import pytest
import requests
from botocore.credentials import Credentials
from feature_store_client import FeatureStoreClient, FeatureStoreError

URL = os.environ.get("FEATURE_STORE_URL")
pytestmark = pytest.mark.skipif(URL is None, reason="run by tests/integration/clients.test.ts")

SEEDED = [f"MAC{n:06d}" for n in range(1, 251)]


@pytest.fixture
def client():
    with FeatureStoreClient(URL, max_retries=20, max_retry_after=5.0) as c:
        yield c


def test_single_vector_signed_with_the_standard_chain(client):
    vector = client.get_features("energy", "MAC000002")
    assert vector["view"] == "energy"
    assert vector["entityId"] == "MAC000002"
    assert vector["featureDate"] == "2014-02-27"
    assert len(vector["features"]) == 22
    assert vector["features"]["energy_std_3m"] is None


def test_projection(client):
    vector = client.get_features("energy", "MAC000003", features=["energy_sum_3m", "energy_count"])
    assert list(vector["features"]) == ["energy_count", "energy_sum_3m"]


def test_batch_of_250_split_and_in_order(client):
    ids = [*reversed(SEEDED), "MAC999999", "MAC000002"]
    results = client.get_batch("energy", ids, features=["energy_sum"])
    assert [r["entityId"] for r in results] == ids
    assert [r["found"] for r in results] == [True] * 250 + [False, True]


def test_batch_as_a_dataframe(client):
    frame = client.get_batch_frame("energy", ["MAC000002", "MAC404", "MAC000004"], features=["energy_count"])
    assert list(frame.index) == ["MAC000002", "MAC404", "MAC000004"]
    assert list(frame["found"]) == [True, False, True]
    assert frame.loc["MAC000004", "feature_date"] == "2014-02-27"
    assert frame.loc["MAC000002", "energy_count"] == 12 + 3


def test_multi_view(client):
    answer = client.get_views(["energy", "weather"], "MAC000002", features=["energy_mean", "weather.sunshine_s"])
    assert answer["views"]["weather"] == {
        "found": True,
        "featureDate": "2014-02-26",
        "features": {"sunshine_s": "9007199254740993"},
    }
    assert list(answer["views"]["energy"]["features"]) == ["energy_mean"]
    assert client.get_views(["energy", "weather"], "MAC000003")["views"]["weather"] == {"found": False}


def test_not_found_and_bad_request(client):
    with pytest.raises(FeatureStoreError) as missing:
        client.get_features("energy", "MAC999999")
    assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
    with pytest.raises(FeatureStoreError) as bad:
        client.get_features("energy", "MAC000002", features=["no_such_feature"])
    assert (bad.value.status, bad.value.code) == (400, "BAD_REQUEST")


def test_list_views(client):
    names = [view["name"] for view in client.list_views()["views"]]
    assert names == ["energy", "weather"]


def test_503_is_retried_after_retry_after_until_answered(client):
    requests.post(f"{os.environ['FEATURE_STORE_FAULT_URL']}/outage?healAfterMs=2500", timeout=5).raise_for_status()
    started = time.monotonic()
    vector = client.get_features("energy", "MAC000002")
    assert vector["entityId"] == "MAC000002"
    assert time.monotonic() - started >= 1.0  # it waited for at least one Retry-After


def test_503_is_raised_when_retries_are_off():
    requests.post(f"{os.environ['FEATURE_STORE_FAULT_URL']}/outage?healAfterMs=1500", timeout=5).raise_for_status()
    with FeatureStoreClient(URL, max_retries=0) as c, pytest.raises(FeatureStoreError) as unavailable:
        c.get_features("energy", "MAC000002")
    assert (unavailable.value.status, unavailable.value.code) == (503, "STORE_UNAVAILABLE")
    assert unavailable.value.retry_after is not None
    with FeatureStoreClient(URL, max_retries=30, max_retry_after=5.0) as c:
        assert c.get_features("energy", "MAC000002")["entityId"] == "MAC000002"


def test_wrong_secret_is_403():
    wrong = Credentials(os.environ["AWS_ACCESS_KEY_ID"], "not-the-secret")
    with FeatureStoreClient(URL, credentials=wrong) as c, pytest.raises(FeatureStoreError) as denied:
        c.get_features("energy", "MAC000002")
    assert (denied.value.status, denied.value.code) == (403, "FORBIDDEN")
    assert "signature we calculated does not match" in denied.value.message
