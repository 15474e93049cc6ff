"""Totals vitest's JSON report and pytest's JUnit XML into "<passed> <failed>" for scripts/test.sh."""

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def vitest_counts(path: Path) -> tuple[int, int]:
    if not path.exists():
        return 0, 0
    report = json.loads(path.read_text())
    return report.get("numPassedTests", 0), report.get("numFailedTests", 0)


def pytest_counts(path: Path) -> tuple[int, int]:
    if not path.exists():
        return 0, 0
    root = ET.parse(path).getroot()  # noqa: S314 (our own pytest report, not untrusted input)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = failed = skipped = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return total - failed - skipped, failed


if __name__ == "__main__":
    vp, vf = vitest_counts(Path(sys.argv[1]))
    pp, pf = pytest_counts(Path(sys.argv[2]))
    print(vp + pp, vf + pf)
