# Shared helpers for the project's shell scripts. Source it: `. "$(dirname "$0")/lib.sh"`.
# Everything a script installs or runs lives under .local/ (git-ignored), so a clone is self-contained.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="${FEATURE_STORE_LOCAL_DIR:-$ROOT/.local}"
VENV="$LOCAL/venv"
JARS="$LOCAL/jars"
# Spark binds its driver to loopback, never to another interface of this machine.
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
mkdir -p "$LOCAL"

log() { printf '\033[1;34m[feature-store]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[feature-store] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command under an exclusive lock, so parallel set-up runs never interleave installs.
with_lock() {
  local name="$1"; shift
  exec {lock_fd}>"$LOCAL/.$name.lock"
  flock "$lock_fd"
  "$@"
  local rc=$?
  exec {lock_fd}>&-
  return $rc
}
