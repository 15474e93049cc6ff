#!/usr/bin/env bash
# Runs a Spark job of this project locally exactly as EMR runs it: the venv's spark-submit, the local jar set
# (.local/jars/spark, no downloads), the feature_store package on the Python path, Delta configured.
#   scripts/spark-submit.sh --view energy --input data/raw.csv --mode full --feature-view .local/compiled-views/energy.json \
#     --offline-uri .local/offline --rejects-uri .local/rejects/energy/r1 --summary-uri .local/runs/r1.json --run-id r1
#   (compile the views first: npm run views:compile)
# A first argument ending in .py picks another job, e.g. the training sets:
#   scripts/spark-submit.sh spark/training_set_job.py --events labels.csv --events-format csv ...
# Environment: SPARK_DRIVER_MEMORY (default 1536m: a 3.5M-row backfill runs as fast as with 4g in ~0.9 GiB
# less, measured in docs/PERFORMANCE.md; this machine is shared, stay <= 6g), SPARK_MASTER (local[2]),
# SPARK_DELTA_SNAPSHOT_PARTITIONS (2: Delta rebuilds a table's state from its log in this many tasks; its
# default of 50 is sized for clusters and costs ~4 s of task overhead per run on two local cores),
# SPARK_INCREMENTAL_JIT_OPTIONS (JVM options of an incremental run; default -XX:TieredStopAtLevel=1 -XX:+UseSerialGC),
# SPARK_CDS (on: the driver JVM maps its classes from a class-data-sharing archive, see below; off: it does not),
# CASSANDRA_USERNAME / CASSANDRA_PASSWORD (the local node's login; read by the job from the environment,
# never passed as arguments; default: .local/cassandra/credentials, unless the job gets --cassandra-profile).
. "$(dirname "$0")/lib.sh"

[[ -x "$VENV/bin/spark-submit" ]] || die "no .local/venv: run scripts/setup-python.sh"
[[ -d "$JARS/spark" ]] || die "no .local/jars/spark: run scripts/setup-jars.sh"
job="$ROOT/spark/feature_job.py"
if [[ "${1:-}" == *.py ]]; then job="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; shift; fi
[[ -f "$job" ]] || die "no such job script: $job"
jars="$(find "$JARS/spark" -name '*.jar' | sort | paste -sd, -)"

# The package goes in as a zip, like --py-files s3://…/feature_store.zip on EMR, with its bytecode beside the
# sources (scripts/bytecode_zip.py: the driver and the worker daemon would otherwise compile it at every
# start). The zip replaces the last one at once, so two local jobs may start together.
zip_dir="$LOCAL/spark" && mkdir -p "$zip_dir"
zip_file="$zip_dir/feature_store.zip"
"$VENV/bin/python" "$ROOT/scripts/bytecode_zip.py" --dir "$ROOT/spark/feature_store" "$zip_file"

# The local Cassandra requires a login (as Keyspaces does): the project role written by
# scripts/cassandra.sh start. A Keyspaces profile authenticates with SigV4 and must get no password.
credentials="$LOCAL/cassandra/credentials"
if [[ -z "${CASSANDRA_USERNAME:-}" && -f "$credentials" && " $* " != *" --cassandra-profile "* ]]; then
  set -a
  # shellcheck source=/dev/null
  . "$credentials"
  set +a
fi

# An incremental run is short (seconds of work, most of it warming up): the JIT's quick tier alone
# (C1) and the serial collector start it sooner here, measured (docs/PERFORMANCE.md). A backfill keeps
# the full JIT, with the throughput collector: on 2 cores and a 1.5 GB heap, G1's barriers and
# concurrent threads cost more than they save (paired runs: wall 0.89, CPU 0.89, peak RSS lower; docs/
# PERFORMANCE.md, seventh round). Local runs only: an EMR step keeps the release's JVM defaults.
java_options="-Dlog4j2.level=warn"
if [[ " $* " == *" --mode incremental "* ]]; then
  java_options+=" ${SPARK_INCREMENTAL_JIT_OPTIONS--XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
else
  java_options+=" ${SPARK_BACKFILL_GC_OPTIONS--XX:+UseParallelGC}"
fi

# Class-data sharing: a local job's JVM loads ~27,000 classes, and reading, parsing and verifying them is
# a large share of a short run (docs/PERFORMANCE.md). The JVM maps them from an archive instead
# (-XX:SharedArchiveFile). The first run that finds no archive writes one as it exits
# (-XX:ArchiveClassesAtExit, JDK 13+) into a file of its own; a later run renames it into place once its
# writer has exited and a JVM has mapped it whole (a writer killed mid-write leaves a short file, which
# would crash every JVM that maps it: measured, SIGBUS; it is deleted instead). The key is the JDK and
# the jar set: a new jar or JDK makes a new archive. VerifySharedSpaces checks the archive's checksums at
# every start, and a JVM that cannot use an archive runs without it (-Xshare:auto, the default). Local
# only: EMR steps start their own JVMs (docs/SPARK_JOB.md).
if [[ "${SPARK_CDS:-on}" != off ]]; then
  cds_dir="$LOCAL/spark/cds" && mkdir -p "$cds_dir"
  java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  cds_key="$({ "$java_bin" -version 2>&1; ls -l "$VENV"/lib/python3*/site-packages/pyspark/jars; echo "$jars"; } | sha256sum | cut -c1-16)"
  archive="$cds_dir/$cds_key.jsa"
  for written in "$cds_dir/$cds_key".*.tmp; do
    [[ -e "$written" ]] || continue
    writer="${written%.tmp}" && writer="${writer##*.}"
    kill -0 "$writer" 2>/dev/null && continue
    crash_log="$cds_dir/validate-$$.log"  # a short archive crashes this JVM: its report goes here, not in $PWD
    if "$java_bin" -XX:ErrorFile="$crash_log" -XX:SharedArchiveFile="$written" -XX:+VerifySharedSpaces -version >/dev/null 2>&1; then
      mv -f "$written" "$archive" 2>/dev/null || true
    else
      rm -f "$written"
    fi
    rm -f "$crash_log"
  done
  if [[ -f "$archive" ]]; then
    java_options+=" -XX:SharedArchiveFile=$archive -XX:+VerifySharedSpaces"
  else
    # $$ is the JVM's pid too: spark-submit and spark-class exec into it.
    java_options+=" -XX:ArchiveClassesAtExit=$cds_dir/$cds_key.$$.tmp"
  fi
fi

export PYSPARK_PYTHON="$VENV/bin/python"
exec "$VENV/bin/spark-submit" \
  --master "${SPARK_MASTER:-local[2]}" \
  --driver-memory "${SPARK_DRIVER_MEMORY:-1536m}" \
  --jars "$jars" \
  --py-files "$zip_file" \
  --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
  --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
  --conf spark.sql.shuffle.partitions="${SPARK_SHUFFLE_PARTITIONS:-8}" \
  --conf spark.databricks.delta.snapshotPartitions="${SPARK_DELTA_SNAPSHOT_PARTITIONS:-2}" \
  --conf spark.ui.enabled=false \
  --conf "spark.driver.extraJavaOptions=$java_options" \
  "$job" "$@"
