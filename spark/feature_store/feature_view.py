"""Feature views, read in Python: the same YAML files and the same validation rules as the TypeScript
loader (functions/commons/feature-view.ts) and the same online columns (functions/commons/online-schema.ts).
tests/test_feature_view.py checks that both sides agree, so the view file stays the one source of truth."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

SOURCE_TYPES = ("double", "int", "bigint", "string")
AGGREGATES = ("sum", "count", "max", "mean", "stddev")
RESERVED_COLUMNS = ("entity_id", "feature_date", "updated_at")
CQL_TYPES = {"double": "double", "int": "int", "bigint": "bigint", "string": "text"}

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_IDENTIFIER_MESSAGE = "must be lower-case letters, digits and _, starting with a letter"


class FeatureViewError(ValueError):
    """A view file that cannot be read or breaks a rule; the message names the file and the field."""


@dataclass(frozen=True)
class SourceColumn:
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
    version: int
    entity_column: str
    entity_id_pattern: str
    event_date_column: str
    source_columns: tuple[SourceColumn, ...]
    features: tuple[FeatureDefinition, ...]
    online_table: str
    ttl_seconds: int
    max_future_days: int = 1

    @property
    def raw_header(self) -> tuple[str, ...]:
        """The raw CSV header, in order: entity, date, then the source columns."""
        return (self.entity_column, self.event_date_column, *(c.name for c in self.source_columns))

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
        """Every column of the online table, key first (same order as onlineColumns in TypeScript)."""
        return (
            OnlineColumn("entity_id", "text"),
            OnlineColumn("feature_date", "date"),
            *(OnlineColumn(f.name, CQL_TYPES[f.type]) for f in self.features),
            OnlineColumn("updated_at", "timestamp"),
        )

    def create_table_cql(self, keyspace: str) -> str:
        """The CQL createTableCql produces in TypeScript, character for character."""
        columns = [
            f"  {c.name} {c.cql_type}{' PRIMARY KEY' if c.name == 'entity_id' else ''}" for c in self.online_columns()
        ]
        description = self.description.replace("'", "''")
        return "\n".join(
            [
                f"CREATE TABLE IF NOT EXISTS {keyspace}.{self.online_table} (",
                ",\n".join(columns),
                f") WITH default_time_to_live = {self.ttl_seconds}",
                f"  AND comment = '{description}';",
            ]
        )


def create_keyspace_cql(keyspace: str, replication_factor: int = 1) -> str:
    return (
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}};"
    )


def aggregate_output_type(aggregate: str, input_type: str) -> str:
    """The type an aggregate produces from its input type (aggregateOutputType in TypeScript)."""
    if aggregate == "count":
        return "int"
    if aggregate in ("mean", "stddev"):
        return "double"
    if aggregate == "sum":
        return "double" if input_type == "double" else "bigint"
    return input_type  # max


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 surprises (yes/no/on/off booleans, bare dates), closer to the
    YAML 1.2 core schema the TypeScript `yaml` package uses."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Issues:
    """Collects schema problems as `path: message`, like the zod issues the TypeScript loader reports."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path or '(root)'}: {message}")


def _strict_object(value: Any, path: str, keys: dict[str, bool], issues: _Issues) -> dict[str, Any] | None:
    """An object with exactly the given keys (True = required); unknown keys are an error."""
    if not isinstance(value, dict):
        issues.add(path, "expected object")
        return None
    ok = True
    for key, required in keys.items():
        if required and key not in value:
            issues.add(f"{path}.{key}".lstrip("."), "required")
            ok = False
    unknown = [k for k in value if k not in keys]
    if unknown:
        issues.add(path, f"unrecognized keys: {', '.join(map(str, unknown))}")
        ok = False
    return value if ok else None


def _identifier(value: Any, path: str, issues: _Issues) -> None:
    if not isinstance(value, str):
        issues.add(path, "expected string")
    elif not _IDENTIFIER.match(value):
        issues.add(path, _IDENTIFIER_MESSAGE)


def _integer(value: Any, path: str, issues: _Issues, minimum: int, maximum: int | None = None) -> None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or (isinstance(value, float) and not value.is_integer()):
        issues.add(path, "expected integer")
    elif value < minimum or (maximum is not None and value > maximum):
        issues.add(path, f"must be between {minimum} and {maximum}" if maximum is not None else f"must be >= {minimum}")


def _enum(value: Any, path: str, allowed: tuple[str, ...], issues: _Issues) -> None:
    if value not in allowed or not isinstance(value, str):
        issues.add(path, f"expected one of {'|'.join(allowed)}")


def _check_schema(raw: Any, issues: _Issues) -> None:
    top = _strict_object(
        raw,
        "",
        {
            "name": True,
            "description": True,
            "version": True,
            "entity": True,
            "event_date": True,
            "source": True,
            "features": True,
            "online": True,
        },
        issues,
    )
    if top is None:
        if isinstance(raw, dict):
            top = raw
        else:
            return
    if "name" in top:
        _identifier(top["name"], "name", issues)
    if "description" in top and (not isinstance(top["description"], str) or not top["description"]):
        issues.add("description", "expected a non-empty string")
    if "version" in top:
        _integer(top["version"], "version", issues, 1)
    entity = _strict_object(top.get("entity"), "entity", {"column": True, "type": True, "id_pattern": True}, issues)
    if entity is not None:
        _identifier(entity["column"], "entity.column", issues)
        if entity["type"] != "string":
            issues.add("entity.type", 'expected "string"')
        if not isinstance(entity["id_pattern"], str) or not entity["id_pattern"]:
            issues.add("entity.id_pattern", "expected a non-empty string")
    event = _strict_object(top.get("event_date"), "event_date", {"column": True, "format": True}, issues)
    if event is not None:
        _identifier(event["column"], "event_date.column", issues)
        if event["format"] != "yyyy-MM-dd":
            issues.add("event_date.format", 'expected "yyyy-MM-dd"')
    source = _strict_object(top.get("source"), "source", {"columns": True}, issues)
    if source is not None:
        columns = source["columns"]
        if not isinstance(columns, list) or not columns:
            issues.add("source.columns", "expected a non-empty array")
        else:
            for i, column in enumerate(columns):
                path = f"source.columns.{i}"
                if _strict_object(column, path, {"name": True, "type": True}, issues) is not None:
                    _identifier(column["name"], f"{path}.name", issues)
                    _enum(column["type"], f"{path}.type", SOURCE_TYPES, issues)
    features = top.get("features")
    if "features" in top:
        if not isinstance(features, list) or not features:
            issues.add("features", "expected a non-empty array")
        else:
            for i, feature in enumerate(features):
                _check_feature(feature, f"features.{i}", issues)
    online = _strict_object(top.get("online"), "online", {"table": True, "ttl_days": True}, issues)
    if online is not None:
        _identifier(online["table"], "online.table", issues)
        _integer(online["ttl_days"], "online.ttl_days", issues, 0, 3650)


def _check_feature(feature: Any, path: str, issues: _Issues) -> None:
    """A feature is exactly a passthrough {name, passthrough} or an aggregate {name, aggregate, source,
    window_days}; like zod's union of strict objects, anything else is one 'invalid input' issue."""
    if isinstance(feature, dict) and set(feature) == {"name", "passthrough"}:
        _identifier(feature["name"], f"{path}.name", issues)
        _identifier(feature["passthrough"], f"{path}.passthrough", issues)
    elif isinstance(feature, dict) and set(feature) == {"name", "aggregate", "source", "window_days"}:
        _identifier(feature["name"], f"{path}.name", issues)
        _enum(feature["aggregate"], f"{path}.aggregate", AGGREGATES, issues)
        _identifier(feature["source"], f"{path}.source", issues)
        _integer(feature["window_days"], f"{path}.window_days", issues, 1, 3660)
    else:
        issues.add(
            path, "expected a passthrough {name, passthrough} or an aggregate {name, aggregate, source, window_days}"
        )


def parse_feature_view(raw: Any, origin: str) -> FeatureView:
    """Validates a parsed view file and resolves feature types; `origin` names the file in errors."""
    issues = _Issues()
    _check_schema(raw, issues)
    if issues.items:
        raise FeatureViewError(f"Invalid feature view {origin}: {'; '.join(issues.items)}")

    def fail(message: str) -> FeatureViewError:
        return FeatureViewError(f"Invalid feature view {origin}: {message}")

    pattern = raw["entity"]["id_pattern"]
    try:
        re.compile(pattern)
    except re.error as error:
        raise fail("entity.id_pattern is not a valid regular expression") from error
    if not pattern.startswith("^") or not pattern.endswith("$"):
        raise fail("entity.id_pattern must be anchored with ^ and $")

    entity_column = raw["entity"]["column"]
    date_column = raw["event_date"]["column"]
    source_types: dict[str, str] = {}
    for column in raw["source"]["columns"]:
        if column["name"] in source_types:
            raise fail(f"source column {column['name']} is declared twice")
        if column["name"] in (entity_column, date_column):
            raise fail(f"source column {column['name']} repeats the entity or date column")
        source_types[column["name"]] = column["type"]

    features: list[FeatureDefinition] = []
    seen: set[str] = set()
    for feature in raw["features"]:
        name = feature["name"]
        if name in seen:
            raise fail(f"feature {name} is declared twice")
        if name in RESERVED_COLUMNS:
            raise fail(f"feature name {name} is reserved for the online table")
        seen.add(name)
        if "passthrough" in feature:
            column_type = source_types.get(feature["passthrough"])
            if column_type is None:
                raise fail(f"feature {name} copies unknown source column {feature['passthrough']}")
            features.append(FeatureDefinition(name, column_type, "passthrough", feature["passthrough"]))
        else:
            input_type = source_types.get(feature["source"])
            if input_type is None:
                raise fail(f"feature {name} aggregates unknown source column {feature['source']}")
            if input_type == "string":
                raise fail(f"feature {name} aggregates non-numeric column {feature['source']}")
            features.append(
                FeatureDefinition(
                    name,
                    aggregate_output_type(feature["aggregate"], input_type),
                    "aggregate",
                    feature["source"],
                    feature["aggregate"],
                    int(feature["window_days"]),
                )
            )

    return FeatureView(
        name=raw["name"],
        description=raw["description"],
        version=int(raw["version"]),
        entity_column=entity_column,
        entity_id_pattern=pattern,
        event_date_column=date_column,
        source_columns=tuple(
            SourceColumn(c["name"], c["type"], c.get("min"), c.get("max")) for c in raw["source"]["columns"]
        ),
        features=tuple(features),
        online_table=raw["online"]["table"],
        ttl_seconds=int(raw["online"]["ttl_days"]) * 86_400,
        max_future_days=int(raw["event_date"].get("max_future_days", 1)),
    )


def parse_feature_view_text(text: str, origin: str) -> FeatureView:
    """Parses view-file text (YAML or JSON) read from anywhere (local file, S3 through Spark)."""
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise FeatureViewError(f"Cannot read feature view {origin}: {error}") from error
    view = parse_feature_view(raw, origin)
    expected = re.sub(r"\.(ya?ml|json)$", "", os.path.basename(origin.rstrip("/")))
    if view.name != expected:
        raise FeatureViewError(f'Feature view {origin} declares name "{view.name}"; the file must be {view.name}.yml')
    return view


def load_feature_view_file(path: str) -> FeatureView:
    """Loads one local view file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise FeatureViewError(f"Cannot read feature view {path}: {error}") from error
    return parse_feature_view_text(text, path)
