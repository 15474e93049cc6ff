#!/usr/bin/env bash
# Installs everything the project needs on this machine, idempotently, with progress:
# npm packages, the Python environment (pyspark, delta-spark, test tools), the Spark job's jars
# and Apache Cassandra. A second run only checks stamps and returns in seconds.
. "$(dirname "$0")/lib.sh"

install_node_modules() {
  local stamp="$ROOT/node_modules/.package-lock.sha256"
  # The lock and the patches npm's postinstall applies to installed packages (patches/, by patch-package).
  local want; want="$(cat "$ROOT/package-lock.json" "$ROOT"/patches/*.patch | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "npm: node_modules is up to date"
    return 0
  fi
  log "npm: installing packages from package-lock.json"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}

started=$SECONDS
command -v java >/dev/null || die "java (17) is required"
command -v mvn >/dev/null || die "maven is required (it fetches the jars and Cassandra)"
with_lock npm install_node_modules
"$ROOT/scripts/setup-python.sh"
"$ROOT/scripts/setup-jars.sh"
if [[ -x "$ROOT/scripts/cassandra.sh" ]]; then "$ROOT/scripts/cassandra.sh" install; fi
log "set-up complete in $((SECONDS - started)) s"
