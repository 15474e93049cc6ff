"""A SigV4-signing client of the getFeatures HTTP API (docs/API.md, docs/openapi.json).

Requests are signed with botocore's SigV4Auth (service ``execute-api``) and credentials from
botocore's standard chain, sent over a keep-alive ``requests`` session with a per-attempt timeout,
and retried (bounded) on 503 after the server's Retry-After. Batches above the server's 100-id
limit are split and reassembled in request order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from requests.adapters import HTTPAdapter

MAX_IDS_PER_REQUEST = 100
"""The server's batch limit (MAX_BATCH_IDS); larger batches are split by the client."""


class FeatureStoreError(Exception):
    """An error answer: the API's ``{"error": {"code", "message"}}`` or API Gateway's ``{"message"}``.

    ``code`` is BAD_REQUEST, NOT_FOUND, STORE_UNAVAILABLE or INTERNAL from the function;
    FORBIDDEN (403) or GATEWAY for API Gateway's own answers; TIMEOUT when no answer came in time.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def _escape(value: str) -> str:
    # RFC 3986 unreserved characters stay; everything else is %XX: SigV4's canonical form, so the
    # query botocore signs (it signs the query string as given) is the one the server recomputes.
    return quote(value, safe="-_.~")


class FeatureStoreClient:
    """Reads feature vectors. Thread-safe for concurrent calls; ``close()`` releases the sockets."""

    def __init__(
        self,
        endpoint: str,
        region: str | None = None,
        credentials: Credentials | None = None,
        *,
        timeout: float = 3.0,
        max_retries: int = 3,
        max_retry_after: float = 10.0,
        batch_concurrency: int = 4,
        pool_maxsize: int = 16,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint must be an http(s) URL: {endpoint}")
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        session = botocore.session.get_session()
        self._region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or session.get_config_variable("region")
        )
        if not self._region:
            raise ValueError("region is required (or set AWS_REGION)")
        # botocore's standard chain: env, shared config/SSO, container and instance roles.
        self._credentials = credentials if credentials is not None else session.get_credentials()
        if self._credentials is None:
            raise ValueError("no AWS credentials found by botocore's credential chain")
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._batch_concurrency = max(1, batch_concurrency)
        self._http = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)

    # --- reads -----------------------------------------------------------------------------------

    def get_features(self, view: str, entity_id: str, features: Sequence[str] | None = None) -> dict[str, Any]:
        """The latest vector of one entity; FeatureStoreError(404, NOT_FOUND) when it has none."""
        return self._get(f"/features/{_escape(view)}/{_escape(entity_id)}", _projection(features))

    def get_batch(
        self, view: str, entity_ids: Sequence[str], features: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """One result per id, in order (duplicates kept; a missing id is ``found: False``)."""
        ids = list(entity_ids)
        chunks = [ids[i : i + MAX_IDS_PER_REQUEST] for i in range(0, len(ids), MAX_IDS_PER_REQUEST)]

        def read(chunk: list[str]) -> list[dict[str, Any]]:
            query = {"ids": ",".join(chunk), **_projection(features)}
            return self._get(f"/features/{_escape(view)}", query)["results"]

        if len(chunks) <= 1:
            return [item for chunk in chunks for item in read(chunk)]
        with ThreadPoolExecutor(max_workers=min(self._batch_concurrency, len(chunks))) as pool:
            return [item for result in pool.map(read, chunks) for item in result]

    def get_batch_frame(self, view: str, entity_ids: Sequence[str], features: Sequence[str] | None = None):
        """A batch as a pandas DataFrame: one row per requested id, in order, indexed by entity id.

        Columns: ``found``, ``feature_date`` and the features; a missing id has ``found`` False and
        nulls (NaN/None) elsewhere. Needs pandas (``pip install serverless-feature-store-client[pandas]``).
        """
        import pandas as pd

        rows = []
        for item in self.get_batch(view, entity_ids, features):
            row: dict[str, Any] = {"entity_id": item["entityId"], "found": item["found"]}
            row["feature_date"] = item.get("featureDate")
            row.update(item.get("features", {}))
            rows.append(row)
        if not rows:
            return pd.DataFrame(columns=["found", "feature_date"]).rename_axis("entity_id")
        return pd.DataFrame(rows).set_index("entity_id")

    def get_views(self, views: Iterable[str], entity_id: str, features: Sequence[str] | None = None) -> dict[str, Any]:
        """Several views of one entity (names in ``features`` may be qualified: ``weather.rain_mm``)."""
        names = list(views)
        path = f"/features/{','.join(_escape(v) for v in names)}/{_escape(entity_id)}"
        answer = self._get(path, _projection(features))
        if len(names) == 1:
            # The server answers one view in the single-view shape; normalise to the multi-view one.
            single = {"found": True, "featureDate": answer["featureDate"], "features": answer["features"]}
            return {"entityId": entity_id, "views": {answer["view"]: single}}
        return answer

    def list_views(self) -> dict[str, Any]:
        """The catalog: every view, its entity and its features with their JSON types."""
        return self._get("/views", {})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FeatureStoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------------

    def _get(self, path: str, query: dict[str, str]) -> Any:
        attempt = 0
        while True:
            response = self._send(path, query)
            if response.status_code == 200:
                return response.json()
            error = _error(response)
            wait = error.retry_after if error.retry_after is not None else 1.0
            if response.status_code != 503 or attempt >= self._max_retries or wait > self._max_retry_after:
                raise error
            attempt += 1
            time.sleep(wait)

    def _send(self, path: str, query: dict[str, str]) -> requests.Response:
        search = "&".join(f"{_escape(k)}={_escape(v)}" for k, v in query.items())
        url = f"{self._base}{path}" + (f"?{search}" if search else "")
        request = AWSRequest(method="GET", url=url, headers={"accept": "application/json"})
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(request)
        try:
            return self._http.get(url, headers=dict(request.headers.items()), timeout=self._timeout)
        except requests.Timeout as error:
            raise FeatureStoreError(0, "TIMEOUT", f"no answer within {self._timeout} s") from error


def _projection(features: Sequence[str] | None) -> dict[str, str]:
    if features is None:
        return {}
    if isinstance(features, str):
        raise TypeError("features must be a sequence of names, not a string")
    return {"features": ",".join(features)}


def _error(response: requests.Response) -> FeatureStoreError:
    retry_after: float | None
    try:
        retry_after = float(response.headers.get("retry-after", ""))
    except ValueError:
        retry_after = None
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return FeatureStoreError(response.status_code, str(err.get("code")), str(err.get("message", "")), retry_after)
    code = "FORBIDDEN" if response.status_code == 403 else "GATEWAY"
    message = body.get("message", f"HTTP {response.status_code}") if isinstance(body, dict) else ""
    return FeatureStoreError(response.status_code, code, str(message), retry_after)
