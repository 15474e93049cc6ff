#!/usr/bin/env bash
# Copies the Spark job's jars (Delta Lake, Spark Cassandra Connector, Keyspaces SigV4 plugin) from
# Maven Central into .local/jars. Idempotent: skipped when scripts/jars/pom.xml is unchanged.
. "$(dirname "$0")/lib.sh"

install_jars() {
  local stamp="$JARS/.pom.sha256"
  local want; want="$(sha256sum "$ROOT/scripts/jars/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "jars: .local/jars is up to date"
    return 0
  fi
  log "jars: resolving Delta Lake, Spark Cassandra Connector and the SigV4 plugin with mvn"
  rm -rf "$JARS.tmp" && mkdir -p "$JARS.tmp"
  mvn -B -q -f "$ROOT/scripts/jars/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$JARS.tmp" -DincludeScope=runtime
  rm -rf "$JARS" && mv "$JARS.tmp" "$JARS"
  echo "$want" > "$stamp"
  log "jars: $(ls "$JARS" | wc -l) jars in .local/jars"
}

with_lock jars install_jars
