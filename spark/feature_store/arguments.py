"""The feature job's argument list: the contract with the functions that build its EMR step
(docs/SPARK_JOB.md, "Argument list"). Parsed and checked here, once; the view-dependent rules (run id,
keyspace, entity ids) are checked against the compiled view when it is read."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import online_store, repair

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INPUT_MODES = ("full", "incremental")


@dataclass(frozen=True)
class JobArgs:
    view: str
    inputs: tuple[str, ...]
    mode: str
    feature_view: str
    offline_uri: str
    rejects_uri: str | None  # None in mode repair (it reads no input)
    summary_uri: str
    run_id: str
    cassandra: online_store.CassandraTarget = field(default_factory=online_store.CassandraTarget)
    max_reject_share: float = 0.01
    timeout_minutes: float | None = None
    repair: repair.RepairSelection | None = None  # mode repair only
    # Set only before expand_arguments_manifest: the lists (inputs, repair entities) are in this object.
    arguments_manifest: str | None = None


def parse_args(argv: list[str]) -> JobArgs:
    parser = argparse.ArgumentParser(
        prog="feature_job.py", description="Computes a feature view's features into the offline and online stores."
    )
    parser.add_argument("--view", required=True)
    parser.add_argument("--input", action="append", dest="inputs", help="repeatable; modes full and incremental")
    parser.add_argument("--mode", required=True, choices=(*INPUT_MODES, "repair"))
    parser.add_argument("--feature-view", required=True)
    parser.add_argument("--offline-uri", required=True)
    parser.add_argument("--rejects-uri", help="modes full and incremental")
    parser.add_argument(
        "--repair-entity", action="append", dest="repair_entities", help="repeatable; mode repair: an entity to remove"
    )
    parser.add_argument("--repair-from", help="mode repair: first day to remove, yyyy-MM-dd (inclusive)")
    parser.add_argument("--repair-to", help="mode repair: last day to remove, yyyy-MM-dd (inclusive)")
    parser.add_argument(
        "--arguments-manifest",
        help="JSON object with the inputs or repair entities, when listing them would pass EMR's step limit",
    )
    parser.add_argument("--summary-uri", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--keyspace", default="feature_store")
    parser.add_argument("--cassandra-host", default="127.0.0.1")
    parser.add_argument("--cassandra-port", type=int, default=9042)
    parser.add_argument("--cassandra-datacenter", default="datacenter1")
    parser.add_argument("--cassandra-profile")
    parser.add_argument("--max-reject-share", type=float, default=0.01)
    parser.add_argument(
        "--timeout-minutes",
        type=float,
        help="end the run (exit 124, failure summary) after this long; EMR steps have no timeout of their own",
    )
    ns = parser.parse_args(argv)
    if not 0 <= ns.max_reject_share <= 1:
        parser.error("--max-reject-share must be between 0 and 1")
    if not 1 <= ns.cassandra_port <= 65535:
        parser.error("--cassandra-port must be between 1 and 65535")
    if ns.timeout_minutes is not None and not 0 < ns.timeout_minutes <= 7 * 24 * 60:
        parser.error("--timeout-minutes must be more than 0 and at most a week")
    selection = _repair_selection(parser, ns)
    return JobArgs(
        view=ns.view,
        inputs=tuple(ns.inputs or ()),
        mode=ns.mode,
        feature_view=ns.feature_view,
        offline_uri=ns.offline_uri,
        rejects_uri=ns.rejects_uri,
        summary_uri=ns.summary_uri,
        run_id=ns.run_id,
        cassandra=online_store.CassandraTarget(
            keyspace=ns.keyspace,
            host=ns.cassandra_host,
            port=ns.cassandra_port,
            datacenter=ns.cassandra_datacenter,
            profile_path=ns.cassandra_profile,
        ),
        max_reject_share=ns.max_reject_share,
        timeout_minutes=ns.timeout_minutes,
        repair=selection,
        arguments_manifest=ns.arguments_manifest,
    )


def _repair_selection(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> repair.RepairSelection | None:
    """The input arguments of full/incremental runs and the selection of a repair exclude each other."""
    repair_given = [
        flag
        for flag, value in (
            ("--repair-entity", ns.repair_entities),
            ("--repair-from", ns.repair_from),
            ("--repair-to", ns.repair_to),
        )
        if value is not None
    ]
    manifest = ns.arguments_manifest is not None
    if manifest and (ns.inputs or ns.repair_entities):
        parser.error("give the inputs or repair entities listed or in --arguments-manifest, not both")
    if ns.mode in INPUT_MODES:
        if not ns.inputs and not manifest:
            parser.error(f"--input is required with --mode {ns.mode}")
        if ns.rejects_uri is None:
            parser.error(f"--rejects-uri is required with --mode {ns.mode}")
        if repair_given:
            parser.error(f"{', '.join(repair_given)} only go with --mode repair")
        return None
    if ns.inputs:
        parser.error("--mode repair reads no input: remove --input")
    if ns.rejects_uri is not None:
        parser.error("--mode repair rejects no rows: remove --rejects-uri")
    if not ns.repair_entities and not manifest and ns.repair_from is None and ns.repair_to is None:
        parser.error("--mode repair needs --repair-entity and/or --repair-from with --repair-to")
    if (ns.repair_from is None) != (ns.repair_to is None):
        parser.error("--repair-from and --repair-to go together (a closed date range)")
    entities = tuple(dict.fromkeys(ns.repair_entities or ()))
    if any(not e for e in entities):
        parser.error("--repair-entity must not be empty")
    date_from = _day(parser, "--repair-from", ns.repair_from)
    date_to = _day(parser, "--repair-to", ns.repair_to)
    if date_from is not None and date_from > date_to:
        parser.error(f"--repair-from {date_from} is after --repair-to {date_to}")
    return repair.RepairSelection(entities=entities, date_from=date_from, date_to=date_to)


def _day(parser: argparse.ArgumentParser, flag: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        parser.error(f"{flag} {value!r} is not a day in the form yyyy-MM-dd")


# The manifest's keys and the flag each stands for (the TypeScript side: argumentsManifestOf in
# functions/commons/jobs/feature-job-step.ts).
_MANIFEST_LISTS = {"inputs": "--input", "repair_entities": "--repair-entity"}


def expand_arguments_manifest(argv: list[str], read_text: Callable[[str], str]) -> list[str]:
    """The argument list with `--arguments-manifest <uri>` replaced by the lists it holds, as repeated flags,
    so parse_args checks them exactly as listed ones. `read_text` reads the object (storage.read_text on the
    job's session: s3:// on EMR). A manifest of the wrong shape for the mode is a ValueError naming it."""
    given = parse_args(argv)
    uri, mode = given.arguments_manifest, given.mode
    if uri is None:
        return list(argv)
    # Both spellings argparse takes: "--arguments-manifest <uri>" and "--arguments-manifest=<uri>".
    rest: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--arguments-manifest" and i + 1 < len(argv):
            skip = True
        elif not arg.startswith("--arguments-manifest="):
            rest.append(arg)
    wanted = "repair_entities" if mode == "repair" else "inputs"
    try:
        body = json.loads(read_text(uri))
    except json.JSONDecodeError as error:
        raise ValueError(f"arguments manifest {uri} is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ValueError(f"arguments manifest {uri} must be a JSON object")
    unknown = sorted(set(body) - set(_MANIFEST_LISTS))
    if unknown:
        raise ValueError(f"arguments manifest {uri} has unknown key(s) {', '.join(unknown)}")
    if set(body) != {wanted}:
        raise ValueError(f"arguments manifest {uri}: --mode {mode} needs {wanted} and nothing else")
    values = body[wanted]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"arguments manifest {uri}: {wanted} must be a non-empty list of non-empty strings")
    flag = _MANIFEST_LISTS[wanted]
    return [*rest, *(item for value in values for item in (flag, value))]
