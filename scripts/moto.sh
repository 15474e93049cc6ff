#!/usr/bin/env bash
# The local AWS emulator (moto server, from requirements.txt) on 127.0.0.1, speaking the S3 and
# EMR wire protocols for the integration tests, run through scripts/moto_server.py (S3 events in the
# shape S3 sends them). Its pid and log live in .local/moto.
#
#   scripts/moto.sh start | stop | restart | status | url
#
# Environment: MOTO_PORT (5055), MOTO_START_TIMEOUT (s, 30).
. "$(dirname "$0")/lib.sh"

MOTO="$LOCAL/moto"
PID_FILE="$MOTO/moto.pid"
PORT="${MOTO_PORT:-5055}"
URL="http://127.0.0.1:$PORT"
START_TIMEOUT="${MOTO_START_TIMEOUT:-30}"
mkdir -p "$MOTO"

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

answers() { curl -fsS -o /dev/null --max-time 2 "$URL/moto-api/" 2>/dev/null; }

start() {
  if running_pid >/dev/null; then log "moto: already running at $URL"; return 0; fi
  [[ -x "$VENV/bin/moto_server" ]] || "$ROOT/scripts/setup-python.sh"
  if answers; then die "moto: port $PORT is taken by another process (set MOTO_PORT)"; fi
  log "moto: starting on $URL (log: .local/moto/moto.log)"
  # setsid: the server outlives this script; its own process group makes stop exact.
  setsid "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$PORT" >"$MOTO/moto.log" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  local waited=0
  until answers; do
    if ! running_pid >/dev/null; then tail -20 "$MOTO/moto.log" >&2; die "moto: exited during start-up"; fi
    (( waited >= START_TIMEOUT * 4 )) && die "moto: not answering after ${START_TIMEOUT}s"
    sleep 0.25; waited=$((waited + 1))
  done
  log "moto: ready at $URL"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then log "moto: not running"; rm -f "$PID_FILE"; return 0; fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  log "moto: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if pid="$(running_pid)" && answers; then echo "moto: running (pid $pid) at $URL"; else echo "moto: not running"; exit 1; fi ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|restart|status|url" >&2; exit 2 ;;
esac
