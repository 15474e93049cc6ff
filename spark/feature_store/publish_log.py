"""The publish log: which Delta version of a view the online store holds, so publishing is a resumable
step. One small JSON object per view beside the Delta tables (<offline-uri>/_publish/<view>.json):

    {"view", "delta_version", "updated_at", "write_micros", "run_id", "published_at", "repaired_entities"}

A run records it after its online write finished. A run that committed Delta and died before that leaves
the log behind the table; the next run of the view (a retry, or the next file) sees the table's version
ahead of the log and first re-publishes every entity changed since the logged run, from the newest
version. `write_micros` is the last publish's write timestamp: the next one is strictly greater, so
publishes stay ordered across clusters whose clocks differ a little.

A repair (job mode `repair`) deletes rows, and an entity whose every row it deletes cannot be found in
Delta any more. So before its Delta commit it rewrites the log with `repaired_entities`: the entities that
lose rows in the commit after `delta_version` (the rest of the record unchanged). Whoever publishes that
commit (the repair itself, or the next run finishing it) re-publishes each one's latest remaining row and
deletes the online row of those left with none; its record then clears the list. If the commit never
happened, the table's version still equals `delta_version` and the stale list is dropped by the next
publish (re-publishing those entities would have been harmless anyway: it reads Delta)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, replace

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
    # Entities losing rows in the commit after delta_version (a repair in progress); see the module doc.
    repaired_entities: tuple[str, ...] = ()


def log_uri(offline_uri: str, view: FeatureView) -> str:
    return f"{offline_uri.rstrip('/')}/_publish/{view.name}.json"


def read(spark, uri: str) -> PublishRecord | None:
    try:
        text = storage.read_text(spark, uri)
    except storage.InputNotFoundError:
        return None
    data = json.loads(text)
    record = {k: data[k] for k in PublishRecord.__dataclass_fields__ if k in data}
    return PublishRecord(**{**record, "repaired_entities": tuple(data.get("repaired_entities", ()))})


def write(spark, uri: str, record: PublishRecord) -> None:
    data = {**asdict(record), "repaired_entities": sorted(record.repaired_entities)}
    storage.write_text(spark, uri, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_repair_pending(spark, uri: str, previous: PublishRecord, entities: list[str]) -> PublishRecord:
    """Before a repair commits: the log still names the published version, plus the entities about to
    lose rows, so a publish that dies after the commit is finished with their online deletes."""
    record = replace(previous, repaired_entities=tuple(sorted(entities)))
    write(spark, uri, record)
    return record


def next_write_micros(now_micros: int, previous: PublishRecord | None) -> int:
    return now_micros if previous is None else max(now_micros, previous.write_micros + 1)


def changed_since(previous: PublishRecord | None) -> dt.datetime | None:
    """Rows with updated_at after this moment may be missing online; None: every row may be."""
    if previous is None:
        return None
    return dt.datetime.fromisoformat(previous.updated_at) - CLOCK_MARGIN
