#!/usr/bin/env bash
# Start the local stack: a private PostgreSQL cluster and moto's AWS emulator,
# both on loopback only, and write $STATE/env for the apps and tests.
# Idempotent: run it as often as you like; concurrent runs queue on a lock.
#
#   LECTERN_STATE_DIR  state dir (default <repo>/.local)
#   LECTERN_PG_PORT    PostgreSQL port (default 55432)
#   LECTERN_MOTO_PORT  moto port (default 54566)
#   LECTERN_PYTHON     python for moto (default python3)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

take_lock

# ---------------------------------------------------------------- PostgreSQL

install_postgres() {
  find_pg_bin && return 0
  log "no PostgreSQL server binaries found; installing Debian's postgresql"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  find_pg_bin || die "PostgreSQL was installed but no initdb/pg_ctl was found"
}

ensure_pg_user() {
  is_root || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating the $PG_OS_USER OS user"
  useradd --system --user-group --home /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
}

# Decide where the cluster lives: $STATE/pg, or (when the postgres OS user
# cannot reach the state dir, or the socket path would exceed the 107-byte
# unix socket limit) /var/tmp/lectern-pg-<hash>, symlinked from $STATE/pg.
place_cluster() {
  local reason='' sock
  [[ -L $PG_LINK ]] && return 0
  if is_root && ! runuser -u "$PG_OS_USER" -- test -x "$STATE" 2>/dev/null; then
    reason="the $PG_OS_USER OS user cannot traverse $STATE"
  fi
  sock=$PG_LINK/run/.s.PGSQL.$PG_PORT
  if ((${#sock} > 100)); then
    reason="the socket path $sock is too long"
  fi
  [[ -n $reason ]] || return 0
  if [[ -f $PG_LINK/data/PG_VERSION ]]; then
    die "$reason, but a cluster already lives in $PG_LINK/data; fix the permissions or run infra/local/reset.sh"
  fi
  log "$reason: keeping the cluster in $PG_FALLBACK (linked from $PG_LINK)"
  rm -rf -- "$PG_LINK"
  ln -s -- "$PG_FALLBACK" "$PG_LINK"
}

prepare_dirs() {
  local base owner
  base=$(pg_base)
  owner=$(id -un)
  is_root && owner=$PG_OS_USER
  if [[ -L $PG_LINK ]]; then
    if [[ -e $base ]]; then
      # /var/tmp is world-writable: only reuse a dir that is really ours.
      [[ -d $base && ! -L $base && $(stat -c %U -- "$base") == "$owner" ]] ||
        die "$base exists but is not a directory owned by $owner; remove it"
    else
      mkdir -m 700 -- "$base"
    fi
  fi
  mkdir -p -- "$base/run"
  chmod 700 -- "$base" "$base/run"
  if is_root; then
    chown "$PG_OS_USER:" -- "$base" "$base/run"
    [[ -e $base/postgres.log ]] && chown "$PG_OS_USER:" -- "$base/postgres.log"
  fi
  return 0
}

init_cluster() {
  local base data locale=C
  base=$(pg_base)
  data=$base/data
  [[ -f $data/PG_VERSION ]] && return 0
  rm -rf -- "$data" # a leftover without PG_VERSION is no usable cluster
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
    locale=C.UTF-8
  fi
  log "initialising a PostgreSQL $(pg_bin_major "$PGBIN") cluster in $data"
  # Trust auth: a throwaway dev/test cluster that listens on 127.0.0.1 only
  # (and on a socket in a 0700 dir), so no passwords are needed.
  if ! as_pg "$PGBIN/initdb" -D "$data" -U postgres --auth=trust \
    --encoding=UTF8 --locale="$locale" >"$base/initdb.log" 2>&1 9>&-; then
    cat -- "$base/initdb.log" >&2
    die "initdb failed"
  fi
  printf "\n# Lectern's local settings (rewritten by infra/local/up.sh)\ninclude_if_exists = 'lectern.conf'\n" \
    >>"$data/postgresql.conf"
}

# Write data/lectern.conf; returns 0 when it changed.
write_pg_conf() {
  local base data sock new
  base=$(pg_base)
  data=$base/data
  sock=$base/run
  new=$(
    cat <<EOF
# Written by infra/local/up.sh on every run: edit that script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '${sock//\'/\'\'}'
# Settings for a disposable test cluster: speed over durability.
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 128MB
timezone = 'UTC'
log_timezone = 'UTC'
EOF
  )
  if [[ -f $data/lectern.conf && $(<"$data/lectern.conf") == "$new" ]]; then
    return 1
  fi
  printf '%s\n' "$new" >"$data/lectern.conf"
  if is_root; then chown "$PG_OS_USER:" -- "$data/lectern.conf"; fi
  return 0
}

start_postgres() {
  local base data pid i changed=0
  base=$(pg_base)
  data=$base/data
  write_pg_conf && changed=1
  if pg_running; then
    if ((changed)); then
      log "PostgreSQL settings changed: restarting"
      as_pg "$PGBIN/pg_ctl" -D "$data" -l "$base/postgres.log" -m fast -w -t 60 restart >/dev/null 9>&- ||
        { tail -n 30 -- "$base/postgres.log" >&2; die "pg_ctl restart failed"; }
    else
      log "PostgreSQL already running"
    fi
    return 0
  fi
  if pg_port_ready; then
    warn "another PostgreSQL already answers on 127.0.0.1:$PG_PORT; using it (set LECTERN_PG_PORT to run ours)"
    return 0
  fi
  if [[ -e $data/postmaster.pid ]]; then
    # pg_pid found no live postmaster in our data dir behind it (a server
    # killed with SIGKILL, say); postgres itself still refuses to start
    # while any old backend holds the shared memory. A killed postmaster
    # that init has not reaped yet still blocks its socket lock: wait.
    pid=$(head -n1 -- "$data/postmaster.pid" 2>/dev/null) || true
    for ((i = 0; i < 150; i++)); do
      [[ $pid =~ ^[0-9]+$ && $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) == Z ]] || break
      sleep 0.2
    done
    log "removing the stale $data/postmaster.pid"
    rm -f -- "$data/postmaster.pid"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  if ! as_pg "$PGBIN/pg_ctl" -D "$data" -l "$base/postgres.log" -w -t 60 start >/dev/null 9>&-; then
    tail -n 30 -- "$base/postgres.log" >&2 || true
    die "PostgreSQL did not start; see $PG_LINK/postgres.log"
  fi
}

create_database() {
  local psql i
  psql=$(pg_tool psql) || die "psql not found"
  # A server that is still starting up or recovering rejects connections.
  for ((i = 0; i < 60; i++)); do
    pg_port_ready && break
    sleep 0.5
  done
  q() {
    PGCONNECT_TIMEOUT=5 "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
      -U postgres -d postgres -tAc "$1"
  }
  [[ $(q "SELECT 1 FROM pg_database WHERE datname = 'lectern'") == 1 ]] && return 0
  log "creating database lectern"
  # Tolerate a concurrent creator (another checkout sharing the port).
  q 'CREATE DATABASE lectern' 2>/dev/null ||
    [[ $(q "SELECT 1 FROM pg_database WHERE datname = 'lectern'") == 1 ]] ||
    die "could not create database lectern"
}

# ---------------------------------------------------------------------- moto

install_moto() {
  command -v "$PY" >/dev/null 2>&1 || die "$PY not found (set LECTERN_PYTHON)"
  "$PY" -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1 && return 0
  log "installing moto[server] with pip"
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pip
  fi
  # A Debian-managed python refuses (PEP 668) unless told otherwise.
  "$PY" -m pip install -q 'moto[server]' 2>/dev/null ||
    "$PY" -m pip install -q --break-system-packages 'moto[server]'
  "$PY" -c 'import moto.server, flask, flask_cors' || die "moto[server] did not install"
}

start_moto() {
  local pid i
  if pid=$(moto_pid); then
    for ((i = 0; i < 150; i++)); do
      if moto_answers; then
        log "moto already running (pid $pid)"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    warn "moto (pid $pid) does not answer; restarting it"
    moto_stop
  elif moto_answers; then
    warn "something already answers on $MOTO_URL; using it (set LECTERN_MOTO_PORT to run ours)"
    return 0
  fi
  install_moto
  log "starting moto on $MOTO_URL"
  rm -f -- "$MOTO_PIDFILE"
  # The child writes its own pid, then execs python: that pid is moto's.
  # shellcheck disable=SC2016 # $$ and $1 are for the child shell.
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' lectern-moto "$MOTO_PIDFILE" \
    "$PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$MOTO_LOG" 2>&1 9>&- &
  for ((i = 0; i < 150; i++)); do # 30 s
    sleep 0.2
    moto_answers && return 0
    if [[ -s $MOTO_PIDFILE ]] && ! moto_pid >/dev/null; then
      tail -n 30 -- "$MOTO_LOG" >&2 || true
      die "moto exited; see $MOTO_LOG"
    fi
  done
  tail -n 30 -- "$MOTO_LOG" >&2 || true
  die "moto did not answer on $MOTO_URL within 30 s; see $MOTO_LOG"
}

# ----------------------------------------------------------------------- env

write_env() {
  local tmp
  tmp=$(mktemp "$STATE/env.XXXXXX")
  {
    printf '# Written by infra/local/up.sh. Use: . %q\n' "$ENV_FILE"
    printf 'export %s=%q\n' \
      DATABASE_URL "postgres://postgres@127.0.0.1:$PG_PORT/lectern" \
      DATABASE_ADMIN_URL "postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
      AWS_ENDPOINT_URL "$MOTO_URL" \
      AWS_REGION us-east-1 \
      AWS_DEFAULT_REGION us-east-1 \
      AWS_ACCESS_KEY_ID test \
      AWS_SECRET_ACCESS_KEY test \
      AWS_EC2_METADATA_DISABLED true \
      LECTERN_STATE_DIR "$STATE"
  } >"$tmp"
  chmod 644 -- "$tmp"
  mv -f -- "$tmp" "$ENV_FILE"
}

install_postgres
ensure_pg_user
place_cluster
prepare_dirs
init_cluster
start_postgres
create_database
start_moto
write_env

log "PostgreSQL $(pg_bin_major "$PGBIN"): postgres://postgres@127.0.0.1:$PG_PORT/lectern (data $(pg_data))"
log "moto:          $MOTO_URL (log $MOTO_LOG)"
log "environment:   . $ENV_FILE"
