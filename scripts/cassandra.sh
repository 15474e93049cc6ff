#!/usr/bin/env bash
# The local online store: one Apache Cassandra 5.0 node on 127.0.0.1, run from cassandra-all and its
# dependencies (Maven Central) because the binary tarball is not reachable here. Everything it
# installs, stores and logs lives in .local/cassandra. See docs/LOCAL_CASSANDRA.md.
#
#   scripts/cassandra.sh install | start | stop | restart | status | schema | logs [-f] | cql "<stmt>"
#
# Environment: CASSANDRA_PORT (CQL, 9042), CASSANDRA_STORAGE_PORT (gossip, loopback only, 7000),
# CASSANDRA_HEAP (max heap, 1g), CASSANDRA_START_TIMEOUT (s, 180), CASSANDRA_STOP_TIMEOUT (s, 60),
# CASSANDRA_FAST_START (1: C1-only JIT, faster boot, slower peak), CASSANDRA_JVM_OPTS (extra flags),
# KEYSPACE (feature_store, used by `schema`).
#
# Logins: the node requires a password (as Keyspaces does). `start` creates the project's login role
# feature_store_app and keeps its generated password in .local/cassandra/credentials (mode 600).
. "$(dirname "$0")/lib.sh"

CASS="$LOCAL/cassandra"
CASS_LIB="$CASS/lib"
CASS_CONF="$CASS/conf"
CASS_DATA="$CASS/data"
CASS_LOGS="$CASS/logs"
PID_FILE="$CASS/cassandra.pid"
PORT_FILE="$CASS/cassandra.port"
TEMPLATES="$ROOT/scripts/cassandra"
CQL_PORT="${CASSANDRA_PORT:-9042}"
STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
HEAP="${CASSANDRA_HEAP:-1g}"
START_TIMEOUT="${CASSANDRA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${CASSANDRA_STOP_TIMEOUT:-60}"

# --- install ------------------------------------------------------------------------------------

# Resolves cassandra-all 5.0 and its runtime dependencies into .local/cassandra/lib. Skipped when
# scripts/cassandra/pom.xml is unchanged; Maven's local repository makes a re-install cheap.
install_locked() {
  local stamp="$CASS_LIB/.pom.sha256"
  local want; want="$(sha256sum "$TEMPLATES/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "cassandra: .local/cassandra/lib is up to date"
    return 0
  fi
  command -v mvn >/dev/null || die "cassandra: mvn is required to install Cassandra (apt-get install maven)"
  log "cassandra: resolving cassandra-all and its dependencies with mvn (first time: about 70 MB)"
  local started=$SECONDS
  rm -rf "$CASS_LIB.tmp" && mkdir -p "$CASS_LIB.tmp"
  mvn -B -q -f "$TEMPLATES/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$CASS_LIB.tmp" -DincludeScope=runtime \
    || die "cassandra: mvn could not resolve cassandra-all (is Maven Central reachable?)"
  rm -rf "$CASS_LIB" && mv "$CASS_LIB.tmp" "$CASS_LIB"
  echo "$want" > "$stamp"
  log "cassandra: $(find "$CASS_LIB/" -name '*.jar' | wc -l) jars in .local/cassandra/lib ($((SECONDS - started)) s)"
}

# --- process state ------------------------------------------------------------------------------

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'org.apache.cassandra.service.CassandraDaemon' \
    && echo "$pid"
}

running_port() { cat "$PORT_FILE" 2>/dev/null || echo "$CQL_PORT"; }

# True when a CQL server answers on the port: sends a protocol v4 OPTIONS frame and expects a
# SUPPORTED response (opcode 0x06). An open socket alone is not enough.
cql_answers() {
  local port="$1"
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
    reply="$(head -c 5 <&3 | od -An -tx1 | tr -d " \n")"
    [[ "$reply" == 84000000"06" ]]' _ "$port" 2>/dev/null
}

port_in_use() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# --- start / stop -------------------------------------------------------------------------------

render_config() {
  mkdir -p "$CASS_CONF/triggers" "$CASS_LOGS" "$CASS_DATA"
  sed -e "s|@DATA@|$CASS_DATA|g" -e "s|@CQL_PORT@|$CQL_PORT|g" -e "s|@STORAGE_PORT@|$STORAGE_PORT|g" \
    "$TEMPLATES/cassandra.yaml.template" > "$CASS_CONF/cassandra.yaml"
  cp "$TEMPLATES/logback.xml" "$CASS_CONF/logback.xml"
}

# An explicit, sorted class path: the same on every start, which the class-data archive requires.
class_path() {
  local jars; jars="$(find "$CASS_LIB/" -maxdepth 1 -name '*.jar' | LC_ALL=C sort | paste -sd:)"
  echo "$jars"
}

close_inherited_fds() {
  local fd
  for fd in $(ls "/proc/$BASHPID/fd"); do
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

jvm_options() {
  local jamm; jamm="$(find "$CASS_LIB/" -name 'jamm-*.jar' | head -n 1)"
  [[ -n "$jamm" ]] || die "cassandra: jamm jar missing from $CASS_LIB; run: scripts/cassandra.sh install"
  # Small heap and few GC threads: a dev node holds little data and shares 2 cores with the tests.
  JVM_OPTS=(
    -Xms256m "-Xmx$HEAP" -Xss256k -XX:+UseG1GC -XX:MaxGCPauseMillis=300 -XX:ParallelGCThreads=2
    -XX:ConcGCThreads=1 -XX:+ExitOnOutOfMemoryError -XX:+HeapDumpOnOutOfMemoryError "-XX:HeapDumpPath=$CASS_LOGS"
    -XX:+PerfDisableSharedMem -XX:+UseThreadPriorities -ea -da:net.openhft...
    -Djava.net.preferIPv4Stack=true "-javaagent:$jamm"
  )
  # Cassandra 5.0 on Java 17 reaches into JDK internals (conf/jvm17-server.options upstream).
  local exports=(
    java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi
    java.rmi/sun.rmi.registry java.rmi/sun.rmi.server java.sql/java.sql java.base/java.lang.ref
    jdk.unsupported/sun.misc jdk.compiler/com.sun.tools.javac.file jdk.attach/sun.tools.attach
  )
  local opens=(
    java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref
    java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module
    java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch
    java.base/java.io java.base/java.lang.reflect jdk.compiler/com.sun.tools.javac java.base/java.lang
    java.base/java.util
  )
  local m
  for m in "${exports[@]}"; do JVM_OPTS+=(--add-exports "$m=ALL-UNNAMED"); done
  for m in "${opens[@]}"; do JVM_OPTS+=(--add-opens "$m=ALL-UNNAMED"); done
  JVM_OPTS+=(
    -Djdk.attach.allowAttachSelf=true -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true -Dio.netty.allocator.maxOrder=11
    "-Dcassandra.config=file://$CASS_CONF/cassandra.yaml"
    "-Dlogback.configurationFile=file://$CASS_CONF/logback.xml"
    "-Dcassandra.logdir=$CASS_LOGS" "-Dcassandra.storagedir=$CASS_DATA" -Dcassandra-foreground=yes
    "-Dcassandra.triggers_dir=$CASS_CONF/triggers"
    # A lone seed has nobody to wait for: skip the gossip settle wait and shorten the ring delay.
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000
    -Dcassandra.superuser_setup_delay_ms=0
    # No JMX port at all (no cassandra.jmx.*.port): nothing but CQL listens beyond gossip.
  )
  # CI and short test runs: C1 only compiles far less during boot (about 40% faster to CQL on 2
  # busy cores) at the cost of peak throughput, so it is opt-in; benchmarks want the default.
  if [[ "${CASSANDRA_FAST_START:-0}" == 1 ]]; then JVM_OPTS+=(-XX:TieredStopAtLevel=1); fi
  # Extra flags for experiments, e.g. CASSANDRA_JVM_OPTS="-Xlog:gc". Split on spaces.
  local extra
  read -r -a extra <<< "${CASSANDRA_JVM_OPTS:-}"
  JVM_OPTS+=("${extra[@]}")
}

start_locked() {
  local pid
  if pid="$(running_pid)"; then
    local port; port="$(running_port)"
    [[ "$port" == "$CQL_PORT" ]] \
      || die "cassandra: already running (pid $pid) on port $port, not $CQL_PORT; stop it first"
    if cql_answers "$port"; then
      NODE_WAS_READY=1
    else
      wait_for_cql "$pid" "$port"
    fi
    log "cassandra: already running (pid $pid, CQL on 127.0.0.1:$port)"
    # A node that was just waited for, or one started before logins existed: set them up now.
    if ((NODE_WAS_READY == 0)) || [[ ! -f "$CASS/credentials" ]]; then setup_auth "$port"; fi
    return 0
  fi
  install_locked
  if port_in_use "$CQL_PORT"; then
    die "cassandra: port $CQL_PORT is taken by another process; set CASSANDRA_PORT to a free port"
  fi
  if port_in_use "$STORAGE_PORT"; then
    die "cassandra: storage port $STORAGE_PORT is taken; set CASSANDRA_STORAGE_PORT to a free port"
  fi
  render_config
  jvm_options
  log "cassandra: starting on 127.0.0.1:$CQL_PORT (heap $HEAP, data in $CASS_DATA)"
  local started=$SECONDS
  # setsid + nohup: the node outlives this script and the terminal or test runner that called it.
  # Inherited descriptors are closed first: a node holding our flock, or a caller's pipe, would keep
  # the lock taken (or the caller waiting for EOF) for as long as it runs.
  (close_inherited_fds && cd "$CASS" && exec setsid nohup "$JAVA_HOME/bin/java" "${JVM_OPTS[@]}" -cp "$(class_path)" \
    org.apache.cassandra.service.CassandraDaemon > "$CASS_LOGS/stdout.log" 2>&1 < /dev/null) &
  pid=$!
  echo "$pid" > "$PID_FILE"
  echo "$CQL_PORT" > "$PORT_FILE"
  wait_for_cql "$pid" "$CQL_PORT"
  log "cassandra: CQL answers on 127.0.0.1:$CQL_PORT after $((SECONDS - started)) s (pid $pid)"
  setup_auth "$CQL_PORT"
}

# Logins (under the lock, so two starts never generate two passwords): the default superuser's
# password is replaced by a generated one, and the project's non-superuser role feature_store_app
# gets its own, both in mode-600 files here. Works on a new data directory and on one created by the
# earlier no-auth config (its default role is still cassandra/cassandra). See local-auth-setup.ts.
setup_auth() {
  if ! grep -q '^authenticator: PasswordAuthenticator' "$CASS_CONF/cassandra.yaml" 2>/dev/null; then
    log "cassandra: warning: the running node was started without authentication; restart it" \
      "(scripts/cassandra.sh restart) so it refuses what Keyspaces refuses"
    return 0
  fi
  (cd "$ROOT" && CASSANDRA_PORT="$1" FEATURE_STORE_LOCAL_DIR="$LOCAL" npx --no-install tsx scripts/cassandra/local-auth-setup.ts) \
    || die "cassandra: could not set up the local logins (see the message above)"
}

wait_for_cql() {
  local pid="$1" port="$2" deadline=$((SECONDS + START_TIMEOUT)) next_note=$((SECONDS + 10))
  until cql_answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 30 "$CASS_LOGS/system.log" "$CASS_LOGS/stdout.log" >&2 2>/dev/null || true
      die "cassandra: the node exited during start-up; see $CASS_LOGS/system.log and stdout.log"
    fi
    if ((SECONDS >= deadline)); then
      die "cassandra: CQL did not answer on 127.0.0.1:$port within ${START_TIMEOUT}s (pid $pid still" \
        "running); see $CASS_LOGS/system.log"
    fi
    if ((SECONDS >= next_note)); then
      log "cassandra: waiting for CQL ($(grep -c . "$CASS_LOGS/system.log" 2>/dev/null || echo 0) log lines so far)"
      next_note=$((SECONDS + 10))
    fi
    sleep 0.5
  done
}

stop_locked() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE" "$PORT_FILE"
    log "cassandra: not running"
    return 0
  fi
  # SIGTERM runs Cassandra's shutdown hook, which drains: memtables are flushed, commit log closed.
  log "cassandra: stopping pid $pid (drain, up to ${STOP_TIMEOUT}s)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    log "cassandra: pid $pid still alive after ${STOP_TIMEOUT}s; killing it"
    kill -KILL "$pid"
    local i
    for i in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
  log "cassandra: stopped"
}

# --- commands -----------------------------------------------------------------------------------

cmd_status() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "cassandra: stopped"
    return 3
  fi
  local port; port="$(running_port)"
  local rss_kb; rss_kb="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
  if cql_answers "$port"; then
    echo "cassandra: running (pid $pid, CQL on 127.0.0.1:$port, datacenter1, RSS $((rss_kb / 1024)) MB)"
  else
    echo "cassandra: starting or unresponsive (pid $pid, port $port); see $CASS_LOGS/system.log"
    return 1
  fi
}

# Clients log in as the project role from .local/cassandra/credentials (local-credentials.ts).
run_tsx() {
  (cd "$ROOT" && CASSANDRA_PORT="$(running_port)" FEATURE_STORE_LOCAL_DIR="$LOCAL" npx --no-install tsx "$@")
}

cmd_logs() {
  [[ -f "$CASS_LOGS/system.log" ]] || die "cassandra: no log yet ($CASS_LOGS/system.log)"
  if [[ "${1:-}" == "-f" ]]; then tail -n 50 -F "$CASS_LOGS/system.log"; else tail -n 100 "$CASS_LOGS/system.log"; fi
}

main() {
  local command="${1:-}"
  shift || true
  case "$command" in
    install) with_lock cassandra install_locked ;;
    start)
      # A node that already answered is left as it is; one this call started or waited for (an
      # earlier start may have timed out before its schema step) gets the schema applied.
      NODE_WAS_READY=0
      with_lock cassandra start_locked
      if ((NODE_WAS_READY == 0)); then run_tsx scripts/apply-online-schema.ts; fi
      ;;
    stop) with_lock cassandra stop_locked ;;
    restart) with_lock cassandra stop_locked && main start ;;
    status) cmd_status ;;
    schema)
      running_pid > /dev/null || die "cassandra: not running; start it with scripts/cassandra.sh start"
      run_tsx scripts/apply-online-schema.ts
      ;;
    logs) cmd_logs "$@" ;;
    cql)
      [[ $# -ge 1 ]] || die 'usage: scripts/cassandra.sh cql "<CQL statement>"'
      run_tsx scripts/cassandra/cql.ts "$@"
      ;;
    *) die "usage: scripts/cassandra.sh install|start|stop|restart|status|schema|logs [-f]|cql \"<stmt>\"" ;;
  esac
}

# On one line, so bash never reads past it: an edit of this file cannot disturb a running start.
main "$@"; exit $?
