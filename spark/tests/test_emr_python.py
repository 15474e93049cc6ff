"""The job's Python on EMR (docs/AWS_CONTRACTS.md E11): EMR 7's default is the system Python 3.9, the
job needs 3.11. The steps name /usr/bin/python3.11 and the bootstrap installs the libraries for it;
these tests keep the bootstrap's libraries equal to the ones the tests run with, and make a job started
on too old a Python say so instead of failing in an import."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("numpy", "pandas", "pyarrow")


def pins(text: str) -> dict[str, str]:
    return {name: version for name, version in re.findall(r"\b([a-z][a-z0-9_-]*)==([0-9][^\s\"']*)", text)}


def test_the_bootstrap_installs_the_library_versions_the_tests_run_with():
    bootstrap = pins((ROOT / "spark/emr/bootstrap-python.sh").read_text())
    requirements = pins((ROOT / "requirements.txt").read_text())
    assert {lib: bootstrap.get(lib) for lib in LIBRARIES} == {lib: requirements[lib] for lib in LIBRARIES}


def test_the_bootstrap_installs_for_the_interpreter_it_is_given():
    script = (ROOT / "spark/emr/bootstrap-python.sh").read_text()
    assert re.search(r'"\$python" -m pip install', script), "pip must run for the given interpreter"
    assert "python3 -m pip" not in script, "/usr/bin/python3 is AL2023's 3.9, not the job's Python"


def old_python() -> str | None:
    """An interpreter older than 3.11 on this machine (pyenv keeps 3.9 here), if any."""
    candidates = [*Path.home().glob(".pyenv/versions/3.9.*/bin/python"), Path("/usr/bin/python3.9")]
    for python in candidates:
        if python.is_file() and subprocess.run([python, "-c", "pass"], check=False).returncode == 0:
            return str(python)
    return None


@pytest.mark.parametrize("script", ["feature_job.py", "training_set_job.py"])
def test_a_job_started_on_python_3_9_says_which_python_it_needs(script: str):
    python = old_python()
    if python is None:
        pytest.skip("no Python older than 3.11 on this machine")
    done = subprocess.run(
        [python, str(ROOT / "spark" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT / "spark",
        check=False,
    )
    assert done.returncode == 1
    assert "needs Python 3.11 or later (spark.pyspark.python), not 3." in done.stderr
    assert "Traceback" not in done.stderr


def test_this_suite_runs_on_the_python_the_steps_name():
    # EMR_PYTHON in functions/commons/jobs/spark-submit-step.ts; tests/unit checks it against pyproject.
    assert sys.version_info[:2] == (3, 11)
