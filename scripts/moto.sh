# Sourced by scripts/test.sh and scripts/bench.sh: starts moto server (the AWS emulator) from .venv
# on 127.0.0.1:$1, logging to $2, stops it when the calling script exits, and exports
# REFWIRE_TEST_AWS_ENDPOINT for the tests.
start_moto() {
  local port=$1 log=$2
  mkdir -p "$(dirname "$log")"
  # One request at a time, so DynamoDB transactions are isolated as on AWS (see infra/moto_server.py).
  .venv/bin/python infra/moto_server.py 127.0.0.1 "$port" >"$log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
  export REFWIRE_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/')" \
      "$REFWIRE_TEST_AWS_ENDPOINT" >/dev/null 2>&1; then
      echo "moto server on $REFWIRE_TEST_AWS_ENDPOINT"
      return 0
    fi
    kill -0 "$moto_pid" 2>/dev/null || { echo "moto server failed to start:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.2
  done
  echo "moto server did not answer on $REFWIRE_TEST_AWS_ENDPOINT" >&2
  exit 1
}
