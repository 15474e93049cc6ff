#!/usr/bin/env bash
# The local end-to-end pipeline in one command (`npm run local`): installs what is missing
# (scripts/setup.sh: npm packages, Python venv, jars, Cassandra), then starts Cassandra, a local AWS
# endpoint (moto: S3, SQS, EMR), the ingest handler on S3 events, a local runner for the EMR steps
# and getFeatures over HTTP; puts a raw CSV through it, prints a served vector, and serves until
# Ctrl-C, SIGINT or SIGTERM, which stops everything it started. See docs/LOCAL.md.
#
#   scripts/local.sh [--skip-setup] [--csv <file>] [--households N] [--reload] [--exit-after-ready]
#                    [--burst-requests N] [--burst-concurrency N] [--verbose]
#
# Environment: LOCAL_HTTP_PORT (3000), LOCAL_MOTO_PORT (5056), CASSANDRA_PORT (9042),
# KEYSPACE (feature_store), FEATURE_STORE_LOCAL_DIR (.local).
. "$(dirname "$0")/lib.sh"

export LOCAL_T0_MS="$(date +%s%3N)"
# Relative --csv paths mean the caller's directory (npm sets INIT_CWD to it).
export LOCAL_CALLER_CWD="${INIT_CWD:-$PWD}"
skip_setup=0
args=()
for arg in "$@"; do
  case "$arg" in
    --skip-setup) skip_setup=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

command -v node >/dev/null || die "node (>= 20.19) is required"
if (( skip_setup == 0 )); then
  log "set-up: installing what is missing (a second run only checks)"
  # A signal to this command (npm forwards SIGINT and SIGTERM to it) must stop the set-up too, not
  # wait for it and then start the stack: bash defers a trap until a foreground child exits, so the
  # set-up runs in the background, in a process group of its own (set -m), and the trap ends that
  # whole group (pip, mvn, curl included). It writes to the terminal but never reads from it.
  set -m
  "$ROOT/scripts/setup.sh" &
  setup_pid=$!
  set +m
  stop_setup() {
    log "$1 received: stopping the set-up"
    kill -TERM -- "-$setup_pid" 2>/dev/null || true
    wait "$setup_pid" 2>/dev/null || true
    exit "$2"
  }
  trap 'stop_setup SIGINT 130' INT
  trap 'stop_setup SIGTERM 143' TERM
  wait "$setup_pid"
  trap - INT TERM
fi
export LOCAL_SETUP_SECONDS="$(( ($(date +%s%3N) - LOCAL_T0_MS) / 1000 )).$(( ($(date +%s%3N) - LOCAL_T0_MS) % 1000 / 100 ))"

cd "$ROOT"
# exec, here and in package.json's `exec bash scripts/local.sh`: no shell stays between npm and
# node, so the SIGINT/SIGTERM npm forwards to its child (and Ctrl-C) reach node, which stops
# everything it started, in order. A `sh -c` left in between (dash) would swallow them.
exec node --import tsx local/main.ts "${args[@]}"
