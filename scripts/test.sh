#!/usr/bin/env bash
# The project's test command (`npm test`): installs what is missing, starts the engines the
# integration suites need (Cassandra, the AWS emulator), runs lint and type checks, the vitest
# suites (unit, integration, e2e) and the pytest suite (Spark job), stops what it started, and
# ends with one line "N passed, N failed" totalling every suite.
. "$(dirname "$0")/lib.sh"

RESULTS="$LOCAL/test-results"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
started_services=()
cleanup() {
  for service in "${started_services[@]}"; do "$ROOT/scripts/$service.sh" stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

"$ROOT/scripts/setup.sh"
cd "$ROOT"

# Engines: start each only if it is not already running, and stop only what we started.
for service in cassandra moto; do
  [[ -x "$ROOT/scripts/$service.sh" ]] || continue
  if ! "$ROOT/scripts/$service.sh" status >/dev/null 2>&1; then
    "$ROOT/scripts/$service.sh" start
    started_services+=("$service")
  fi
done

failed_checks=0
log "checks: biome, tsc, ruff"
npx biome check . || failed_checks=$((failed_checks + 1))
npx tsc --noEmit || failed_checks=$((failed_checks + 1))
"$VENV/bin/ruff" check spark bench scripts || failed_checks=$((failed_checks + 1))
"$VENV/bin/ruff" format --check spark bench scripts || failed_checks=$((failed_checks + 1))

log "vitest: unit, integration and e2e suites"
vitest_rc=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$RESULTS/vitest.json" || vitest_rc=$?

log "pytest: Spark feature job and training sets"
pytest_rc=0
"$VENV/bin/python" -m pytest spark/tests -q -p no:cacheprovider --junitxml="$RESULTS/pytest.xml" || pytest_rc=$?

summary="$("$VENV/bin/python" "$ROOT/scripts/test-summary.py" "$RESULTS/vitest.json" "$RESULTS/pytest.xml")"
passed="${summary% *}"; failed="${summary#* }"
if (( failed_checks > 0 )); then log "$failed_checks lint/type check(s) failed"; fi
if (( failed == 0 && (vitest_rc != 0 || pytest_rc != 0) )); then
  # A runner that failed without a failing test (collection error, crash) still fails the run.
  failed=$((failed + 1)); log "a test runner exited non-zero without reporting a failed test"
fi
echo "$passed passed, $failed failed"
(( failed == 0 && failed_checks == 0 ))
