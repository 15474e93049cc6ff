"""The Python reader of feature views agrees with the TypeScript loader: same derived types and online
columns, same CQL, and the same verdict (valid or not) on a set of broken view files."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from conftest import ROOT, VIEW_FILE

from feature_store.feature_view import FeatureViewError, load_feature_view_file, parse_feature_view_text

TS_SCRIPT = """
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadFeatureViewFile } from "./functions/commons/feature-view.ts";
import { createTableCql, onlineColumns } from "./functions/commons/online-schema.ts";
const [viewFile, variantsDir] = process.argv.slice(-2);
const view = loadFeatureViewFile(viewFile);
const verdicts = {};
for (const dir of readdirSync(variantsDir).sort()) {
  const file = readdirSync(join(variantsDir, dir))[0];
  try { loadFeatureViewFile(join(variantsDir, dir, file)); verdicts[dir] = "valid"; }
  catch (error) { verdicts[dir] = "invalid: " + error.message; }
}
console.log(JSON.stringify({
  rawHeader: view.rawHeader,
  features: view.features,
  onlineColumns: onlineColumns(view),
  cql: createTableCql(view, "feature_store"),
  ttlSeconds: view.ttlSeconds,
  onlineTable: view.onlineTable,
  verdicts,
}));
"""


def _variants() -> dict[str, dict]:
    """Copies of energy.yml, each changed in one way (most of them broken)."""
    with open(VIEW_FILE, encoding="utf-8") as handle:
        base = yaml.safe_load(handle)

    def changed(edit):
        copy = json.loads(json.dumps(base))
        edit(copy)
        return copy

    return {
        "ok_unchanged": base,
        "ok_extra_window": changed(
            lambda v: v["features"].append(
                {"name": "energy_max_1w", "aggregate": "max", "source": "energy_count", "window_days": 7}
            )
        ),
        "ok_int_sum": changed(
            lambda v: v["features"].append(
                {"name": "count_sum", "aggregate": "sum", "source": "energy_count", "window_days": 7}
            )
        ),
        "bad_unknown_key": changed(lambda v: v.update(owner="me")),
        "bad_missing_online": changed(lambda v: v.pop("online")),
        "bad_name_case": changed(lambda v: v.update(name="Energy")),
        "bad_unanchored_pattern": changed(lambda v: v["entity"].update(id_pattern="[A-Z]+")),
        "bad_regex": changed(lambda v: v["entity"].update(id_pattern="^[A-Z+$")),
        "bad_date_format": changed(lambda v: v["event_date"].update(format="dd/MM/yyyy")),
        "bad_source_type": changed(lambda v: v["source"]["columns"][0].update(type="float")),
        "bad_duplicate_source": changed(
            lambda v: v["source"]["columns"].append({"name": "energy_sum", "type": "double"})
        ),
        "bad_source_is_entity": changed(
            lambda v: v["source"]["columns"].append({"name": "household_id", "type": "string"})
        ),
        "bad_duplicate_feature": changed(
            lambda v: v["features"].append({"name": "energy_sum", "passthrough": "energy_sum"})
        ),
        "bad_reserved_feature": changed(
            lambda v: v["features"].append({"name": "updated_at", "passthrough": "energy_sum"})
        ),
        "bad_unknown_passthrough": changed(lambda v: v["features"].append({"name": "x", "passthrough": "nope"})),
        "bad_unknown_aggregate_source": changed(
            lambda v: v["features"].append({"name": "x", "aggregate": "sum", "source": "nope", "window_days": 3})
        ),
        "bad_aggregate_function": changed(
            lambda v: v["features"].append(
                {"name": "x", "aggregate": "median", "source": "energy_sum", "window_days": 3}
            )
        ),
        "bad_window_zero": changed(
            lambda v: v["features"].append({"name": "x", "aggregate": "sum", "source": "energy_sum", "window_days": 0})
        ),
        "bad_window_fraction": changed(
            lambda v: v["features"].append(
                {"name": "x", "aggregate": "sum", "source": "energy_sum", "window_days": 2.5}
            )
        ),
        "bad_mixed_feature": changed(
            lambda v: v["features"].append({"name": "x", "passthrough": "energy_sum", "aggregate": "sum"})
        ),
        "bad_aggregate_string": changed(
            lambda v: (
                v["source"]["columns"].append({"name": "tariff", "type": "string"}),
                v["features"].append({"name": "x", "aggregate": "max", "source": "tariff", "window_days": 3}),
            )
        ),
        "bad_ttl": changed(lambda v: v["online"].update(ttl_days=-1)),
        "bad_version_bool": changed(lambda v: v.update(version=True)),
        "bad_empty_features": changed(lambda v: v.update(features=[])),
        "bad_file_name": changed(lambda v: v.update(name="power")),
    }


@pytest.fixture(scope="module")
def typescript(tmp_path_factory):
    """Runs the TypeScript loader once over energy.yml and every variant."""
    root = tmp_path_factory.mktemp("views")
    for name, content in _variants().items():
        os.makedirs(root / name)
        (root / name / "energy.yml").write_text(yaml.safe_dump(content, sort_keys=False))
    result = subprocess.run(
        ["npx", "--no-install", "tsx", "-e", TS_SCRIPT, "--", VIEW_FILE, str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), root


def test_features_and_online_columns_match_typescript(typescript, view):
    ts, _ = typescript
    assert list(view.raw_header) == ts["rawHeader"]
    python_features = [
        {
            "name": f.name,
            "type": f.type,
            "kind": f.kind,
            "source": f.source,
            **({"aggregate": f.aggregate, "windowDays": f.window_days} if f.kind == "aggregate" else {}),
        }
        for f in view.features
    ]
    assert python_features == ts["features"]
    assert [{"name": c.name, "cqlType": c.cql_type} for c in view.online_columns()] == ts["onlineColumns"]
    assert view.ttl_seconds == ts["ttlSeconds"]
    assert view.online_table == ts["onlineTable"]


def test_create_table_cql_matches_typescript(typescript, view):
    ts, _ = typescript
    assert view.create_table_cql("feature_store") == ts["cql"]


def test_validation_verdicts_match_typescript(typescript):
    ts, root = typescript
    python = {}
    for name in sorted(ts["verdicts"]):
        path = root / name / "energy.yml"
        try:
            load_feature_view_file(str(path))
            python[name] = "valid"
        except FeatureViewError as error:
            python[name] = "invalid" if str(path) in str(error) else f"invalid without the file name: {error}"
    assert python == {k: ("valid" if v == "valid" else "invalid") for k, v in ts["verdicts"].items()}
    assert all(v == "valid" for k, v in python.items() if k.startswith("ok_"))
    assert all(v == "invalid" for k, v in python.items() if k.startswith("bad_"))


def test_error_names_the_file_and_the_problem():
    with open(VIEW_FILE, encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace('"^[A-Za-z0-9_.:-]{1,64}$"', '"[a-z]+"')
    with pytest.raises(FeatureViewError, match=r"s3://bucket/energy.yml.*anchored"):
        parse_feature_view_text(text, "s3://bucket/energy.yml")


def test_derived_window_facts(view):
    assert view.max_window_days == 365
    assert [f.name for f in view.aggregate_features if f.aggregate == "count"] == [
        "energy_count_3m",
        "energy_count_6m",
        "energy_count_12m",
    ]
    assert load_feature_view_file(VIEW_FILE) == view
