#!/usr/bin/env bash
# Creates .local/venv with the pinned Python packages (pyspark, delta-spark, test tools).
# Idempotent: reinstalls only when requirements.txt changed since the last successful run.
. "$(dirname "$0")/lib.sh"

install_python() {
  local stamp="$VENV/.requirements.sha256"
  local want; want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "python: .local/venv is up to date"
    return 0
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    # The job runs on EMR's Python 3.11 (docs/AWS_CONTRACTS.md E11): test it on the same minor version.
    local python; python="$(command -v python3.11 || command -v python3)"
    log "python: creating .local/venv ($("$python" --version))"
    "$python" -m venv "$VENV"
  fi
  log "python: installing requirements.txt (pyspark is ~300 MB on a first run)"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q -r "$ROOT/requirements.txt"
  echo "$want" > "$stamp"
  log "python: done"
}

# checkov in a venv of its own (its pins conflict with requirements.txt), linked into .local/venv/bin.
install_checkov() {
  local venv="$LOCAL/checkov-venv"
  local stamp="$venv/.requirements.sha256"
  local want; want="$(sha256sum "$ROOT/requirements-checkov.txt" | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    log "python: installing requirements-checkov.txt into .local/checkov-venv"
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off -q -r "$ROOT/requirements-checkov.txt"
    echo "$want" > "$stamp"
  fi
  ln -sfn "$venv/bin/checkov" "$VENV/bin/checkov"
}

# Spark puts pyspark.zip and py4j's zip first on the path of the job's driver and of every worker daemon;
# zipimport never writes bytecode, so each of them compiled pyspark's modules at every start (~0.5 s
# each, docs/PERFORMANCE.md). Bytecode beside the sources in those zips is used instead (checked against
# its source). Run every time: a no-op once done, and pip may have put back a zip of sources.
add_spark_bytecode() {
  local zips=("$VENV"/lib/python3*/site-packages/pyspark/python/lib/*.zip)
  [[ -f "${zips[0]}" ]] || die "no pyspark zips under $VENV: the install above did not finish"
  "$VENV/bin/python" "$ROOT/scripts/bytecode_zip.py" --in-place "${zips[@]}"
}

with_lock python install_python
with_lock python add_spark_bytecode
with_lock python install_checkov
