"""Reads and writes small files through Hadoop file systems, so the same code handles s3:// on EMR and
local paths here: the view file, headers of raw files, the run summary."""

from __future__ import annotations

from pyspark.sql import SparkSession


class InputNotFoundError(FileNotFoundError):
    pass


def _jvm(spark: SparkSession):
    return spark.sparkContext._jvm  # noqa: SLF001 - py4j gateway, the documented way to reach Hadoop FS


def _path_and_fs(spark: SparkSession, uri: str):
    jvm = _jvm(spark)
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001


def read_text(spark: SparkSession, uri: str) -> str:
    path, fs = _path_and_fs(spark, uri)
    if not fs.exists(path):
        raise InputNotFoundError(f"{uri} does not exist")
    stream = fs.open(path)
    try:
        return bytes(_jvm(spark).org.apache.commons.io.IOUtils.toByteArray(stream)).decode("utf-8")
    finally:
        stream.close()


def read_first_line(spark: SparkSession, uri: str, limit: int = 65_536) -> str | None:
    """The first line of a file without its line break, or None for a zero-byte file."""
    path, fs = _path_and_fs(spark, uri)
    stream = fs.open(path)
    try:
        buffer = bytearray()
        while len(buffer) < limit:
            byte = stream.read()
            if byte < 0 or byte == 10:
                if byte < 0 and not buffer:
                    return None
                break
            buffer.append(byte)
        return buffer.decode("utf-8-sig").rstrip("\r")
    finally:
        stream.close()


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    path, fs = _path_and_fs(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


_GLOB_CHARACTERS = "\\*?[]{}"


def literal_pattern(uri: str) -> str:
    """A path Hadoop's (and so Spark's) glob expansion resolves to exactly this path: glob characters in an
    object key are escaped, so `raw/a*.csv` never reads `raw/ab.csv` too."""
    return "".join(f"\\{c}" if c in _GLOB_CHARACTERS else c for c in uri)


def list_input_files(spark: SparkSession, uris: list[str]) -> list[str]:
    """Each input (a file, or a directory of *.csv files) as file URIs, in order. Names are taken
    literally: no glob expansion, so the files read are exactly the files named."""
    files: list[str] = []
    for uri in uris:
        path, fs = _path_and_fs(spark, uri)
        if not fs.exists(path):
            raise InputNotFoundError(f"input {uri} does not exist")
        status = fs.getFileStatus(path)
        if status.isDirectory():
            children = sorted(
                str(child.getPath().toString())
                for child in fs.listStatus(status.getPath())
                if child.isFile() and child.getPath().getName().endswith(".csv")
            )
            if not children:
                raise InputNotFoundError(f"input directory {uri} holds no .csv files")
            files.extend(children)
        else:
            files.append(str(status.getPath().toString()))
    return files
