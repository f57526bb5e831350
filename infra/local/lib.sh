# shellcheck shell=bash disable=SC2034 # variables are used by the scripts that source this
# Shared helpers for infra/local/{up,down,reset,status}.sh. Sourced, never run.
#
# Layout of the state dir (${LECTERN_STATE_DIR:-<repo>/.local}):
#   lock          flock(1) file that serialises up/down/reset
#   env           sourceable `export` lines for the apps and tests
#   moto.pid      pid of the moto server (python3 -m moto.server)
#   moto.log      its log
#   pg/           the private PostgreSQL cluster: data/, run/ (unix socket),
#                 postgres.log. When the `postgres` OS user cannot reach the
#                 state dir (we run as root in a 0700 home, say) or the socket
#                 path would be too long, pg is a symlink to
#                 /var/tmp/lectern-pg-<hash of the state dir path> instead.

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$LOCAL_DIR" rev-parse --show-toplevel 2>/dev/null) || REPO=$(cd "$LOCAL_DIR/../.." && pwd)
STATE=$(realpath -m -- "${LECTERN_STATE_DIR:-$REPO/.local}")
PG_PORT=${LECTERN_PG_PORT:-55432}
MOTO_PORT=${LECTERN_MOTO_PORT:-54566}
PY=${LECTERN_PYTHON:-python3}
PG_OS_USER=postgres
PG_LINK=$STATE/pg
PG_FALLBACK=/var/tmp/lectern-pg-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
MOTO_PIDFILE=$STATE/moto.pid
MOTO_LOG=$STATE/moto.log
MOTO_URL=http://127.0.0.1:$MOTO_PORT
ENV_FILE=$STATE/env
PGBIN=

log() { printf '[local] %s\n' "$*"; }
warn() { printf '[local] warning: %s\n' "$*" >&2; }
die() {
  printf '[local] error: %s\n' "$*" >&2
  exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Run a command with root rights (package installs).
as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# Serialise up/down/reset on $STATE/lock. The fd (9) is closed for every
# daemon we start so that no server keeps the lock held after we exit.
take_lock() {
  mkdir -p "$STATE"
  exec 9>>"$STATE/lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 600 9 || die "timed out waiting for $STATE/lock"
  fi
}

# ---------------------------------------------------------------- PostgreSQL

# Base dir of the cluster (resolving the /var/tmp fallback symlink).
pg_base() {
  if [[ -L $PG_LINK ]]; then
    readlink -- "$PG_LINK"
  else
    printf '%s\n' "$PG_LINK"
  fi
}

pg_data() { printf '%s/data\n' "$(pg_base)"; }

# Major version of the binaries in dir $1 (empty when unusable).
pg_bin_major() {
  [[ -x $1/initdb && -x $1/pg_ctl ]] || return 0
  "$1/initdb" --version 2>/dev/null | sed -n 's/.*PostgreSQL) \([0-9]*\).*/\1/p'
}

# Set PGBIN to the dir holding initdb + pg_ctl: the version an existing cluster
# was made with, otherwise the newest found in /usr/lib/postgresql/*/bin and
# on PATH. Returns 1 when there is none.
find_pg_bin() {
  local want='' dir major best='' best_major=0 c
  local -a cands=()
  [[ -f $(pg_data)/PG_VERSION ]] && want=$(<"$(pg_data)/PG_VERSION")
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -d $dir ]] && cands+=("$dir")
  done
  if c=$(command -v initdb 2>/dev/null); then
    cands+=("$(dirname -- "$(readlink -f -- "$c")")")
  fi
  for dir in "${cands[@]}"; do
    major=$(pg_bin_major "$dir")
    [[ -n $major ]] || continue
    if [[ -n $want ]]; then
      [[ $major == "$want" ]] && { best=$dir; break; }
    elif ((major > best_major)); then
      best=$dir best_major=$major
    fi
  done
  [[ -n $best ]] || return 1
  PGBIN=$best
}

# A PostgreSQL client tool: from PGBIN when known, else from PATH.
pg_tool() {
  if [[ -n $PGBIN && -x $PGBIN/$1 ]]; then
    printf '%s\n' "$PGBIN/$1"
  else
    command -v "$1" 2>/dev/null || return 1
  fi
}

# Run a server-side command as the cluster owner: initdb and postgres refuse
# to run as root, so as root we use the `postgres` OS user. cd / so that the
# user is not left in a directory it cannot read.
as_pg() {
  if is_root; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    "$@"
  fi
}

# Pid of our running postmaster, from postmaster.pid. Strict: the pid must be
# a live (not zombie) process whose working directory is our data dir, which
# is where a postmaster sits; a stale pid file naming a recycled pid is not
# taken for a running server (nor signalled by pg_stop).
pg_pid() {
  local data pidfile pid
  data=$(pg_data)
  pidfile=$data/postmaster.pid
  [[ -r $pidfile ]] || return 1
  pid=$(head -n1 -- "$pidfile" 2>/dev/null)
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
  [[ $(readlink -f "/proc/$pid/cwd" 2>/dev/null) == "$(realpath -m -- "$data")" ]] || return 1
  printf '%s\n' "$pid"
}

# Is our own cluster running?
pg_running() { pg_pid >/dev/null; }

# Does any PostgreSQL answer on 127.0.0.1:$PG_PORT?
pg_port_ready() {
  local isready
  if isready=$(pg_tool pg_isready); then
    "$isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null
  fi
}

pg_stop() {
  local data pid i
  data=$(pg_data)
  pid=$(pg_pid) || return 0
  find_pg_bin || true
  log "stopping PostgreSQL (pid $pid, $data)"
  if [[ -n $PGBIN ]]; then
    as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 9>&- ||
      die "pg_ctl stop failed; see $PG_LINK/postgres.log"
  else
    # No binaries (uninstalled?): SIGINT is PostgreSQL's fast shutdown.
    kill -INT "$pid"
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 1
    done
    die "PostgreSQL (pid $pid) did not stop"
  fi
}

# ---------------------------------------------------------------------- moto

moto_answers() {
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 3 -o /dev/null "$MOTO_URL/moto-api/"
  else
    "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3).read()' \
      "$MOTO_URL/moto-api/" >/dev/null 2>&1
  fi
}

# Pid of our moto server when it is alive (checked against its command line,
# so a recycled pid is never mistaken for it).
moto_pid() {
  local pid
  [[ -r $MOTO_PIDFILE ]] || return 1
  pid=$(<"$MOTO_PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'moto\.server' || return 1
  printf '%s\n' "$pid"
}

moto_stop() {
  local pid i
  if pid=$(moto_pid); then
    log "stopping moto (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f -- "$MOTO_PIDFILE"
}
