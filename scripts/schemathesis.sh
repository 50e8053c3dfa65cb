#!/usr/bin/env bash
# Runs schemathesis with every check against a real refwire-local, from docs/openapi.json: a fresh
# data file, the default program refwire-local creates on first start (its secret key is what the
# run authenticates with, as X-API-Key) and an operator key chosen here. scripts/test.sh calls this
# after the build; it needs .venv and target/debug/refwire-local. Extra arguments go to
# `schemathesis run` (e.g. --max-examples 200, --seed N to repeat a run).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
REFWIRE_OPERATOR_KEY="rw_op_$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
export REFWIRE_OPERATOR_KEY
"${CARGO_TARGET_DIR:-target}/debug/refwire-local" --port 0 --data-file "$work/refwire.db" >"$work/out" 2>&1 &
local_pid=$!
trap 'kill "$local_pid" 2>/dev/null || true; wait "$local_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  grep -q "secret key:" "$work/out" && break
  sleep 0.1
done
url=$(sed -n 's/^refwire-local listening on //p' "$work/out")
REFWIRE_SECRET_KEY=$(sed -n 's/^ *secret key: *//p' "$work/out")
if [ -z "$url" ] || [ -z "$REFWIRE_SECRET_KEY" ]; then
  echo "refwire-local did not start:" >&2
  cat "$work/out" >&2
  exit 1
fi
export REFWIRE_SECRET_KEY

# A referral, an inactive webhook (nothing is sent), a participant and a waitlist with a signup,
# whose ids infra/schemathesis.toml gives the operations that take one, so that they get past
# "not found" to the code behind it.
eval "$(.venv/bin/python - "$url" "$REFWIRE_SECRET_KEY" <<'PY'
import json, sys, urllib.request

url, key = sys.argv[1:]

def post(path, body):
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    request = urllib.request.Request(url + path, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request) as response:
        return json.load(response)

referral = post("/v1/api/referral/create", {"user_id": "schemathesis"})
webhook = post("/v1/webhooks", {"name": "schemathesis", "url": "https://example.com/hook",
                                "events": ["*"], "active": False})
participant = post("/v1/participants", {"email": "ann@example.com"})
waitlist = post("/v1/waitlists", {"name": "schemathesis"})
signup = post(f"/v1/waitlists/{waitlist['id']}/signups", {"email": "bob@example.com"})
print(f"export REFWIRE_REFERRAL_CODE={referral['referral_code']} REFWIRE_WEBHOOK_ID={webhook['id']}"
      f" REFWIRE_PARTICIPANT_ID={participant['id']} REFWIRE_WAITLIST_ID={waitlist['id']}"
      f" REFWIRE_SIGNUP_ID={signup['id']}")
PY
)"

# From the temporary folder, so that Hypothesis's and schemathesis's caches go with it.
repo=$PWD
(cd "$work" && "$repo/.venv/bin/schemathesis" --config-file "$repo/infra/schemathesis.toml" \
  run "$repo/docs/openapi.json" --url "$url" --checks all --max-examples 50 --no-color "$@")
