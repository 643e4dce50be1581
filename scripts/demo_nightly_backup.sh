#!/usr/bin/env bash
# The nightly-backup scenario through the runner service: `dbfleet up` (API, workers, scheduler,
# a private Redis), a token, a pool, an inspection job, a plan preview against the backup window,
# then the backup of every server of the local fleet in lanes, with its per-lane timeline.
# Called by `make demo` after the fleet is up; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
unset DBFLEET_REDIS_URL  # dbfleet up starts a private one
LANES=${LANES:-2}
WINDOW_MINUTES=${WINDOW_MINUTES:-10}

port=${DEMO_PORT:-$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mkdir -p var
dbfleet up --port "$port" --workers 2 > var/demo-up.log 2>&1 &
up=$!
trap 'kill -TERM "$up" 2>/dev/null; wait "$up" 2>/dev/null || true' EXIT
export DBFLEET_API_URL="http://127.0.0.1:$port"

for _ in $(seq 1 120); do
    if python - <<EOF 2>/dev/null
import httpx, sys
sys.exit(0 if httpx.get('$DBFLEET_API_URL/healthz').json()['status'] == 'ok' else 1)
EOF
    then break; fi
    sleep 0.5
done
echo "==> dbfleet up: API at $DBFLEET_API_URL (log: var/demo-up.log)"

token_name="demo-$(date +%Y%m%d%H%M%S)-$$"
DBFLEET_TOKEN=$(dbfleet tokens create "$token_name" --role admin 2>/dev/null)
export DBFLEET_TOKEN
(umask 077; dbfleet tokens create "$token_name-viewer" --role viewer > var/demo-portal-token 2>/dev/null)
echo "==> the portal: $DBFLEET_API_URL/ (log in with the viewer token in var/demo-portal-token)"

dbfleet pools set backup "$LANES" --description 'nightly dumps: at most this many at once, fleet-wide'
echo "==> inspection through the runner"
dbfleet jobs launch playbooks/inspect.yml --inventory inventories/local_fleet.yml --wait

window_end=$(python -c "import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(minutes=$WINDOW_MINUTES)).isoformat(timespec='seconds'))")
echo "==> the plan: $LANES lanes, window ends $window_end"
dbfleet plans preview playbooks/backup.yml --inventory inventories/local_fleet.yml --lanes "$LANES" \
    --window-end "$window_end"

echo "==> the nightly backup, in $LANES lanes, pool 'backup'"
job=$(dbfleet jobs launch playbooks/backup.yml --inventory inventories/local_fleet.yml --lanes "$LANES" \
      --pool backup --window-end "$window_end" --json | python -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "==> its page, where the lanes fill in as the hosts are backed up: $DBFLEET_API_URL/jobs/$job"
dbfleet jobs logs "$job" --follow > /dev/null || true
dbfleet jobs show "$job"
python - "$job" "$window_end" <<'EOF'
import datetime as dt, sys
from runner_service.client import ApiClient
job_id, window_end = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2])
job = ApiClient().get(job_id)
finished = dt.datetime.fromisoformat(job['finished_at'])
spare = (window_end - finished).total_seconds()
print('==> the backup ended %s at %s: %s' % (job['status'], finished.isoformat(timespec='seconds'),
      'inside its window, %.0f s to spare' % spare if spare >= 0 else 'AFTER its window, by %.0f s' % -spare))
EOF
if [ "${DEMO_HOLD:-}" = 1 ] && [ -t 0 ]; then
    read -r -p "==> the portal stays at $DBFLEET_API_URL/ until you press Enter "
fi
dbfleet tokens revoke "$token_name-viewer" > /dev/null
dbfleet tokens revoke "$token_name" > /dev/null
