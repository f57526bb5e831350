#!/usr/bin/env bash
# Stop the local PostgreSQL cluster and moto server started by up.sh.
# Idempotent: nothing running is not an error. Data is kept (see reset.sh).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -d $STATE ]] || exit 0
take_lock
pg_stop
moto_stop
log "local stack stopped"
