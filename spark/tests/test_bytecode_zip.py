"""scripts/bytecode_zip.py: the zips Spark puts first on every Python process's path carry bytecode that
zipimport uses (nothing is compiled at a process's start), and that it never uses in place of a source
that differs from it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "bytecode_zip.py")


@pytest.fixture(scope="module")
def bytecode_zip():
    spec = importlib.util.spec_from_file_location("bytecode_zip", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package(tmp_path, body: str = "VALUE = 'from source'\n"):
    package = tmp_path / "src" / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(body)
    (package / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"not bytecode")
    return package


def _imported(zip_path) -> tuple[str, str]:
    """(the file zipimport loaded pkg.mod from, its VALUE), in a fresh interpreter with only the zip added."""
    code = "import pkg.mod as m; print(m.__file__); print(m.VALUE)"
    env = {**os.environ, "PYTHONPATH": str(zip_path), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    loaded, value = out.splitlines()
    return loaded, value


def test_a_zipped_package_is_imported_from_its_bytecode(tmp_path, bytecode_zip):
    out = tmp_path / "pkg.zip"
    bytecode_zip.zip_directory(str(_package(tmp_path)), str(out))

    names = zipfile.ZipFile(out).namelist()
    assert sorted(names) == ["pkg/__init__.py", "pkg/__init__.pyc", "pkg/mod.py", "pkg/mod.pyc"]
    assert _imported(out) == (f"{out}/pkg/mod.pyc", "from source")


def test_bytecode_that_differs_from_its_source_is_not_used(tmp_path, bytecode_zip):
    out = tmp_path / "pkg.zip"
    bytecode_zip.zip_directory(str(_package(tmp_path)), str(out))
    # The source changed after its bytecode was made: the zip holds the old .pyc beside the new .py.
    with zipfile.ZipFile(out) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["pkg/mod.py"] = b"VALUE = 'edited'\n"
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)

    assert _imported(out)[1] == "edited"


def test_bytecode_is_added_to_a_zip_of_sources_once(tmp_path, bytecode_zip):
    out = tmp_path / "pkg.zip"
    package = _package(tmp_path)
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("pkg/", b"")
        archive.write(package / "__init__.py", "pkg/__init__.py")
        archive.write(package / "mod.py", "pkg/mod.py")
    assert _imported(out) == (f"{out}/pkg/mod.py", "from source")

    assert bytecode_zip.add_bytecode(str(out)) is True
    assert _imported(out) == (f"{out}/pkg/mod.pyc", "from source")
    assert sorted(zipfile.ZipFile(out).namelist()) == [
        "pkg/",
        "pkg/__init__.py",
        "pkg/__init__.pyc",
        "pkg/mod.py",
        "pkg/mod.pyc",
    ]
    assert oct(os.stat(out).st_mode & 0o777) == "0o644"
    written = os.stat(out).st_mtime_ns
    assert bytecode_zip.add_bytecode(str(out)) is False
    assert os.stat(out).st_mtime_ns == written
