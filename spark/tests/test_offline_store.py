"""Where the offline table of a view lives, for every form of --offline-uri the job accepts."""

import os

import pytest
from conftest import VIEW_FILE

from feature_store.feature_view import load_compiled_view
from feature_store.offline_store import ensure_table, table_uri


@pytest.fixture(scope="module")
def view():
    return load_compiled_view(VIEW_FILE)


@pytest.mark.parametrize(
    ("offline_uri", "expected"),
    [
        ("s3://bucket/delta", "s3://bucket/delta/energy"),
        ("s3a://bucket/delta/", "s3a://bucket/delta/energy"),
        ("file:/tmp/offline", "file:/tmp/offline/energy"),
        ("/tmp/offline/", "/tmp/offline/energy"),
    ],
)
def test_table_uri_keeps_uris_and_absolute_paths(view, offline_uri, expected):
    assert table_uri(offline_uri, view) == expected


def test_relative_offline_path_is_made_absolute_so_delta_accepts_it(spark, view, tmp_path, monkeypatch):
    # Delta reads a relative location as a table name ("offline/energy is not a valid name").
    monkeypatch.chdir(tmp_path)
    uri = table_uri("offline", view)
    assert uri == os.path.join(str(tmp_path), "offline", "energy")
    ensure_table(spark, uri, view)
    assert os.path.isdir(os.path.join(tmp_path, "offline", "energy", "_delta_log"))
