#!/usr/bin/env bash
# Stop the local stack and delete its state: the PostgreSQL cluster (also
# when it lives in the /var/tmp fallback dir), moto's files and the env file.
# The next up.sh starts from scratch.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

take_lock
pg_stop
moto_stop

# Only ever delete our own /var/tmp/lectern-pg-* dirs.
for dir in "$(pg_base)" "$PG_FALLBACK"; do
  if [[ $dir == /var/tmp/lectern-pg-* && -d $dir && ! -L $dir ]]; then
    log "deleting $dir"
    rm -rf -- "$dir"
  fi
done
rm -rf -- "$PG_LINK" "$MOTO_PIDFILE" "$MOTO_LOG" "$ENV_FILE" "$STATE"/env.*
log "local state in $STATE deleted"
