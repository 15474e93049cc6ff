"""Feature views as the job receives them: the compiled JSON that functions/commons/compiled-view.ts
writes from resources/feature-views/<view>.yml (`npm run views:compile`; the deploy ships it as the
`--feature-view` artifact). The TypeScript loader is the one place a view is validated and resolved;
this module only reads its output into frozen dataclasses and checks the format version."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# The version of compiled-view.ts's output this reader understands (COMPILED_VIEW_VERSION there).
COMPILED_VIEW_VERSION = 1


class FeatureViewError(ValueError):
    """A compiled view that cannot be read (not JSON, another format version, a missing field)."""


@dataclass(frozen=True)
class SourceColumn:
    """A raw column; `min`/`max` are inclusive bounds (None: unbounded), numeric columns only."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class FeatureDefinition:
    """A feature with its resolved output type; `aggregate`/`window_days` only for aggregates."""

    name: str
    type: str
    kind: str  # "passthrough" | "aggregate"
    source: str
    aggregate: str | None = None
    window_days: int | None = None


@dataclass(frozen=True)
class OnlineColumn:
    name: str
    cql_type: str


@dataclass(frozen=True)
class FeatureView:
    name: str
    description: str
    entity_column: str
    entity_id_pattern: str
    event_date_column: str
    # Rows dated after the job's today (UTC) plus this many days are rejected as `future_date`.
    max_future_days: int
    source_columns: tuple[SourceColumn, ...]
    features: tuple[FeatureDefinition, ...]
    online_table: str
    ttl_seconds: int
    # The raw CSV header, in order: entity, date, then the source columns.
    raw_header: tuple[str, ...]
    online_column_list: tuple[OnlineColumn, ...]
    keyspace_placeholder: str
    create_keyspace_template: str
    create_table_template: str
    # Name rules shared with the functions (functions/commons/identifiers.ts).
    identifier_pattern: str
    run_id_pattern: str

    @property
    def source_types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.source_columns}

    @property
    def aggregate_features(self) -> tuple[FeatureDefinition, ...]:
        return tuple(f for f in self.features if f.kind == "aggregate")

    @property
    def max_window_days(self) -> int:
        return max((f.window_days or 0 for f in self.aggregate_features), default=0)

    def online_columns(self) -> tuple[OnlineColumn, ...]:
        """Every column of the online table, key first (onlineColumns in online-schema.ts)."""
        return self.online_column_list

    def is_identifier(self, name: str) -> bool:
        """A lower-case CQL/Spark identifier (keyspaces, tables, columns)."""
        return re.fullmatch(self.identifier_pattern, name) is not None

    def is_run_id(self, run_id: str) -> bool:
        return re.fullmatch(self.run_id_pattern, run_id) is not None

    def create_table_cql(self, keyspace: str) -> str:
        """createTableCql from online-schema.ts, compiled, in the given keyspace."""
        return self._in_keyspace(self.create_table_template, keyspace)

    def create_keyspace_cql(self, keyspace: str) -> str:
        """createKeyspaceCql from online-schema.ts (single-node replication, local use)."""
        return self._in_keyspace(self.create_keyspace_template, keyspace)

    def _in_keyspace(self, template: str, keyspace: str) -> str:
        # The keyspace goes into CQL text, so it must be an identifier; the placeholder's first
        # occurrence is the statement's keyspace (a table comment comes later).
        if not self.is_identifier(keyspace):
            raise FeatureViewError(f"keyspace {keyspace!r} is not a lower-case CQL identifier")
        return template.replace(self.keyspace_placeholder, keyspace, 1)


def parse_compiled_view(text: str, origin: str) -> FeatureView:
    """Reads compiled-view JSON (from a local file or S3 through Spark); `origin` names it in errors."""
    try:
        raw: Any = json.loads(text)
    except ValueError as error:
        raise FeatureViewError(
            f"Feature view {origin} is not a compiled view (JSON from `npm run views:compile`): {error}"
        ) from error
    version = raw.get("compiled_view_version") if isinstance(raw, dict) else None
    if version != COMPILED_VIEW_VERSION:
        raise FeatureViewError(
            f"Feature view {origin} has compiled_view_version {version!r}; this job reads version "
            f"{COMPILED_VIEW_VERSION} (recompile with `npm run views:compile` from the same commit)"
        )
    try:
        online = raw["online"]
        return FeatureView(
            name=raw["name"],
            description=raw["description"],
            entity_column=raw["entity"]["column"],
            entity_id_pattern=raw["entity"]["id_pattern"],
            event_date_column=raw["event_date"]["column"],
            max_future_days=int(raw["event_date"]["max_future_days"]),
            source_columns=tuple(
                SourceColumn(c["name"], c["type"], _bound(c["min"]), _bound(c["max"])) for c in raw["source_columns"]
            ),
            features=tuple(
                FeatureDefinition(f["name"], f["type"], f["kind"], f["source"], f["aggregate"], f["window_days"])
                for f in raw["features"]
            ),
            online_table=online["table"],
            ttl_seconds=int(online["ttl_seconds"]),
            raw_header=tuple(raw["raw_header"]),
            online_column_list=tuple(OnlineColumn(c["name"], c["cql_type"]) for c in online["columns"]),
            keyspace_placeholder=online["keyspace_placeholder"],
            create_keyspace_template=online["create_keyspace_cql"],
            create_table_template=online["create_table_cql"],
            identifier_pattern=raw["patterns"]["identifier"],
            run_id_pattern=raw["patterns"]["run_id"],
        )
    except (KeyError, TypeError) as error:
        raise FeatureViewError(f"Compiled feature view {origin} lacks field {error}") from error


def _bound(value: float | None) -> float | None:
    return None if value is None else float(value)


def load_compiled_view(path: str) -> FeatureView:
    """Reads one local compiled-view file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise FeatureViewError(f"Cannot read feature view {path}: {error}") from error
    return parse_compiled_view(text, path)
