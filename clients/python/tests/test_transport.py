"""The Python client's transport rules against a scripted local HTTP server (no AWS, no store).

A 503 is retried after its Retry-After and at most ``max_retries`` times; a Retry-After above the cap
is not waited for; other errors are never retried; an attempt with no answer fails with TIMEOUT; every
request carries a SigV4 Authorization for execute-api; batches above 100 ids are split, order kept.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.credentials import Credentials
from feature_store_client import FeatureStoreClient, FeatureStoreError

CREDENTIALS = Credentials("AKIATEST", "secret")


class Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script = None
    seen: ClassVar[list] = []

    def do_GET(self):
        type(self).seen.append((self.path, dict(self.headers)))
        status, headers, body = type(self).script(self)
        if status is None:
            time.sleep(2)
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**headers, "content-type": "application/json", "content-length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Scripted.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def unavailable(retry_after):
    return lambda _req: (503, {"retry-after": retry_after}, {"error": {"code": "STORE_UNAVAILABLE", "message": "x"}})


def ok(_req):
    return 200, {}, {"view": "energy", "entityId": "MAC000002", "featureDate": None, "features": {}}


def test_503_retried_after_retry_after_then_answered(server):
    calls = []

    def script(req):
        calls.append(1)
        return unavailable("1")(req) if len(calls) <= 2 else ok(req)

    Scripted.script = staticmethod(script)
    with FeatureStoreClient(server, "eu-west-1", CREDENTIALS, max_retries=3) as c:
        started = time.monotonic()
        assert c.get_features("energy", "MAC000002")["entityId"] == "MAC000002"
        assert time.monotonic() - started >= 1.9
    assert len(calls) == 3


def test_retries_are_bounded_and_a_long_retry_after_is_not_waited_for(server):
    Scripted.script = staticmethod(unavailable("0"))
    with FeatureStoreClient(server, "eu-west-1", CREDENTIALS, max_retries=2) as c, pytest.raises(FeatureStoreError):
        c.get_features("energy", "MAC000002")
    assert len(Scripted.seen) == 3

    Scripted.seen.clear()
    Scripted.script = staticmethod(unavailable("120"))
    started = time.monotonic()
    with (
        FeatureStoreClient(server, "eu-west-1", CREDENTIALS, max_retries=5) as c,
        pytest.raises(FeatureStoreError) as error,
    ):
        c.get_features("energy", "MAC000002")
    assert (error.value.status, error.value.retry_after) == (503, 120.0)
    assert len(Scripted.seen) == 1
    assert time.monotonic() - started < 1.0


def test_other_errors_are_not_retried(server):
    Scripted.script = staticmethod(lambda _r: (400, {}, {"error": {"code": "BAD_REQUEST", "message": "bad"}}))
    with FeatureStoreClient(server, "eu-west-1", CREDENTIALS) as c, pytest.raises(FeatureStoreError) as error:
        c.get_features("energy", "MAC000002")
    assert (error.value.status, error.value.code, error.value.message) == (400, "BAD_REQUEST", "bad")
    assert len(Scripted.seen) == 1


def test_no_answer_is_a_timeout(server):
    Scripted.script = staticmethod(lambda _r: (None, {}, None))
    with FeatureStoreClient(server, "eu-west-1", CREDENTIALS, timeout=0.3) as c:
        started = time.monotonic()
        with pytest.raises(FeatureStoreError) as error:
            c.get_features("energy", "MAC000002")
        assert error.value.code == "TIMEOUT"
        assert time.monotonic() - started < 1.5


def test_signed_for_execute_api_and_batches_split_in_order(server):
    def script(req):
        ids = parse_qs(urlsplit(req.path).query)["ids"][0].split(",")
        results = [{"entityId": i, "found": False} for i in ids]
        return 200, {}, {"view": "energy", "results": results}

    Scripted.script = staticmethod(script)
    ids = [f"id{n}" for n in range(250)]
    with FeatureStoreClient(server, "eu-west-1", CREDENTIALS) as c:
        results = c.get_batch("energy", ids)
    assert [r["entityId"] for r in results] == ids
    sizes = sorted(len(parse_qs(urlsplit(path).query)["ids"][0].split(",")) for path, _ in Scripted.seen)
    assert sizes == [50, 100, 100]
    for _path, headers in Scripted.seen:
        auth = headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIATEST/")
        assert "/eu-west-1/execute-api/aws4_request" in auth


def test_an_empty_batch_sends_nothing(server):
    with FeatureStoreClient(server, "eu-west-1", CREDENTIALS) as c:
        assert c.get_batch("energy", []) == []
        frame = c.get_batch_frame("energy", [])
    assert frame.empty
    assert frame.index.name == "entity_id"
    assert Scripted.seen == []
