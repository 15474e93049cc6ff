#!/usr/bin/env bash
# Copies the Spark job's jars from Maven Central into two sets (see scripts/jars/pom.xml):
#   .local/jars/spark  Delta Lake + Spark Cassandra Connector with its driver: local runs, tests and EMR;
#   .local/jars/emr    the Keyspaces SigV4 plugin and its AWS SDK parts: shipped to EMR, never on the
#                      local classpath (its dependencies clash with Spark's).
# Idempotent: skipped when scripts/jars/pom.xml is unchanged. Nothing is downloaded at test time.
. "$(dirname "$0")/lib.sh"

resolve_set() {
  local profile="$1" out="$2"
  mvn -B -q -f "$ROOT/scripts/jars/pom.xml" -P "$profile" dependency:copy-dependencies \
    -DoutputDirectory="$out" -DincludeScope=runtime
}

install_jars() {
  local stamp="$JARS/.pom.sha256"
  local want; want="$(sha256sum "$ROOT/scripts/jars/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$JARS/spark" && -d "$JARS/emr" ]]; then
    log "jars: .local/jars is up to date"
    return 0
  fi
  log "jars: resolving Delta Lake and the Spark Cassandra Connector (spark set), the SigV4 plugin (emr set)"
  rm -rf "$JARS.tmp" && mkdir -p "$JARS.tmp/spark" "$JARS.tmp/emr"
  resolve_set spark "$JARS.tmp/spark"
  resolve_set emr "$JARS.tmp/emr"
  rm -rf "$JARS" && mv "$JARS.tmp" "$JARS"
  echo "$want" > "$stamp"
  log "jars: $(ls "$JARS/spark" | wc -l) jars in .local/jars/spark, $(ls "$JARS/emr" | wc -l) in .local/jars/emr"
}

with_lock jars install_jars
