#!/usr/bin/env bash
# Say what of the local stack runs where. Exit 0 when both PostgreSQL and moto
# answer, 1 otherwise.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ok=1
find_pg_bin || true
data=$(pg_data)

printf 'state dir:  %s\n' "$STATE"
if pid=$(pg_pid); then
  printf 'PostgreSQL: running, pid %s, PostgreSQL %s, 127.0.0.1:%s\n' "$pid" "$(cat -- "$data/PG_VERSION")" \
    "$(sed -n 4p -- "$data/postmaster.pid")"
elif pg_port_ready; then
  printf 'PostgreSQL: another server (not ours) answers on 127.0.0.1:%s\n' "$PG_PORT"
elif [[ -f $data/PG_VERSION ]]; then
  printf 'PostgreSQL: stopped\n'
  ok=0
else
  printf 'PostgreSQL: not set up (run infra/local/up.sh)\n'
  ok=0
fi
if [[ -f $data/PG_VERSION ]]; then
  printf '            data %s\n' "$data"
  [[ -L $PG_LINK ]] && printf '            (fallback dir, linked from %s)\n' "$PG_LINK"
  printf '            log  %s\n' "$PG_LINK/postgres.log"
fi

# Ask the running moto for its port: it may differ from this shell's
# LECTERN_MOTO_PORT.
if pid=$(moto_pid); then
  port=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-p$/{n;p;q}')
  [[ $port =~ ^[0-9]+$ ]] && MOTO_URL=http://127.0.0.1:$port
fi
if pid=$(moto_pid) && moto_answers; then
  printf 'moto:       running, pid %s, %s\n' "$pid" "$MOTO_URL"
elif pid=$(moto_pid); then
  printf 'moto:       pid %s is alive but %s does not answer\n' "$pid" "$MOTO_URL"
  ok=0
elif moto_answers; then
  printf 'moto:       another server (not ours) answers on %s\n' "$MOTO_URL"
else
  printf 'moto:       stopped\n'
  ok=0
fi
[[ -f $MOTO_LOG ]] && printf '            log  %s\n' "$MOTO_LOG"

if [[ -f $ENV_FILE ]]; then
  printf 'env file:   %s (. it to use the stack)\n' "$ENV_FILE"
else
  printf 'env file:   none yet\n'
fi
((ok)) || exit 1
