"""Zips Python packages with their bytecode beside the sources, for the Python processes Spark starts.

Spark puts zips first on the path of every Python process it starts: $SPARK_HOME/python/lib/pyspark.zip and
py4j's zip on the driver and on each worker daemon, and --py-files (feature_store.zip) on both. Python's
zipimport reads bytecode from a zip but never writes it, so a zip of sources alone is compiled again by
every process at every start: ~0.45 s of the job's driver and ~0.55 s of each worker daemon for pyspark.zip,
measured (docs/PERFORMANCE.md). With a `module.pyc` next to each `module.py` (the layout zipimport looks
for), nothing is compiled. The bytecode is checked-hash: zipimport hashes the source beside it and compiles
the source instead when they differ; an interpreter of another version ignores it and compiles the source.
Sources stay in the zip, for tracebacks.

    bytecode_zip.py --dir spark/feature_store OUT.zip   # a package directory, zipped under its own name
    bytecode_zip.py --in-place ZIP...                    # adds bytecode to zips of sources (no-op if present)

Run it with the interpreter that runs the job (the bytecode is that version's)."""

from __future__ import annotations

import argparse
import os
import py_compile
import sys
import tempfile
import zipfile


def _bytecode(source: bytes, name_in_zip: str, scratch: str) -> bytes:
    """The checked-hash .pyc of a module's source, compiled under the name it has in the zip."""
    path = os.path.join(scratch, "module.py")
    with open(path, "wb") as handle:
        handle.write(source)
    compiled = os.path.join(scratch, "module.pyc")
    py_compile.compile(
        path,
        cfile=compiled,
        dfile=name_in_zip,
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    with open(compiled, "rb") as handle:
        return handle.read()


def _write(out: str, entries: list[tuple[str, bytes]]) -> None:
    """Writes the entries and, after each .py, its .pyc, into a new zip that replaces `out` at once."""
    directory = os.path.dirname(os.path.abspath(out))
    handle, partial = tempfile.mkstemp(prefix=".bytecode-", suffix=".zip", dir=directory)
    os.close(handle)
    try:
        with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
                if name.endswith(".py"):
                    archive.writestr(name + "c", _bytecode(data, name, scratch))
        os.chmod(partial, 0o644)  # mkstemp makes it private; the zips it replaces are readable by all
        os.replace(partial, out)
    except BaseException:
        os.unlink(partial)
        raise


def zip_directory(package_dir: str, out: str) -> None:
    """Zips a package directory under its own name (like `python -m zipfile -c out.zip package`)."""
    package_dir = os.path.abspath(package_dir)
    parent = os.path.dirname(package_dir)
    entries = []
    for folder, subfolders, files in os.walk(package_dir):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for file in sorted(files):
            if file.endswith(".pyc"):
                continue
            path = os.path.join(folder, file)
            with open(path, "rb") as handle:
                entries.append((os.path.relpath(path, parent).replace(os.sep, "/"), handle.read()))
    _write(out, entries)


def add_bytecode(zip_path: str) -> bool:
    """Adds bytecode to a zip of sources; False (nothing done) when it holds bytecode already."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        if any(name.endswith(".pyc") for name in names):
            return False
        entries = [(name, archive.read(name)) for name in names]  # folder entries too, as they were
    _write(zip_path, entries)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dir", help="a package directory to zip")
    mode.add_argument("--in-place", action="store_true", help="add bytecode to the zips given")
    parser.add_argument("paths", nargs="+", help="the zip to write (--dir), or the zips to change (--in-place)")
    args = parser.parse_args(argv)
    if args.dir:
        if len(args.paths) != 1:
            parser.error("--dir takes one output zip")
        zip_directory(args.dir, args.paths[0])
        return 0
    for path in args.paths:
        if add_bytecode(path):
            print(f"bytecode added to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
