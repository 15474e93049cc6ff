"""The publish log: which Delta version of a view the online store holds, so publishing is a resumable
step. One small JSON object per view beside the Delta tables (<offline-uri>/_publish/<view>.json):

    {"view", "delta_version", "updated_at", "write_micros", "run_id", "published_at"}

A run records it after its online write finished. A run that committed Delta and died before that leaves
the log behind the table; the next run of the view (a retry, or the next file) sees the table's version
ahead of the log and first re-publishes every entity changed since the logged run, from the newest
version. `write_micros` is the last publish's write timestamp: the next one is strictly greater, so
publishes stay ordered across clusters whose clocks differ a little."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from . import storage
from .feature_view import FeatureView

# Runs of a view never overlap, so rows changed after the logged run carry a later updated_at; the margin
# covers clock differences between clusters (re-publishing a few unchanged entities is harmless).
CLOCK_MARGIN = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class PublishRecord:
    view: str
    delta_version: int
    updated_at: str  # updated_at of the rows the logged run changed (ISO, UTC, naive)
    write_micros: int
    run_id: str
    published_at: str


def log_uri(offline_uri: str, view: FeatureView) -> str:
    return f"{offline_uri.rstrip('/')}/_publish/{view.name}.json"


def read(spark, uri: str) -> PublishRecord | None:
    try:
        text = storage.read_text(spark, uri)
    except storage.InputNotFoundError:
        return None
    data = json.loads(text)
    return PublishRecord(**{k: data[k] for k in PublishRecord.__dataclass_fields__})


def write(spark, uri: str, record: PublishRecord) -> None:
    storage.write_text(spark, uri, json.dumps(asdict(record), indent=2, sort_keys=True) + "\n")


def next_write_micros(now_micros: int, previous: PublishRecord | None) -> int:
    return now_micros if previous is None else max(now_micros, previous.write_micros + 1)


def changed_since(previous: PublishRecord | None) -> dt.datetime | None:
    """Rows with updated_at after this moment may be missing online; None: every row may be."""
    if previous is None:
        return None
    return dt.datetime.fromisoformat(previous.updated_at) - CLOCK_MARGIN
