#!/usr/bin/env bash
# Load-tests a release refwire-local on this machine.
#   scripts/bench.sh                     both benchmarks, one after the other, with their defaults
#   scripts/bench.sh milestones [ARGS]   milestone-report throughput and latency
#                                        (e.g. --referrals 5000 --concurrency 32)
#   scripts/bench.sh deliveries [ARGS]   webhook fan-out + delivery throughput and latency, after a
#                                        direct-POST baseline (e.g. --events 2000 --concurrency 16;
#                                        --rate 100 for a steady load; --stall 25 for one stalled
#                                        receiver among the ten)
#   scripts/bench.sh waitlist-costs      DynamoDB operations of a waitlist position read and a boost
#                                        at 100,000 signups, on moto (REFWIRE_WAITLIST_SIGNUPS=n
#                                        for another size; needs .venv, which scripts/test.sh makes)
#   scripts/bench.sh cold-start          each release Lambda binary started 20 times under the
#                                        in-repo Runtime API emulator: median and p90 from process
#                                        start to first poll and to response, beside a minimal
#                                        function (REFWIRE_COLD_STARTS=n for another count; moto)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p refwire-local -p refwire-bench
release="${CARGO_TARGET_DIR:-target}/release"

milestones() { "$release/milestone-load" --local "$release/refwire-local" "$@"; }
deliveries() { "$release/delivery-load" --local "$release/refwire-local" "$@"; }

waitlist_costs() {
  [ -x .venv/bin/python ] || { echo "run scripts/test.sh once first: it creates .venv with moto" >&2; exit 1; }
  # shellcheck source=scripts/moto.sh
  . scripts/moto.sh
  start_moto "${REFWIRE_MOTO_PORT:-5066}" target/moto-bench.log
  cargo test --quiet -p refwire-tests --test integration waitlist_costs_at_scale -- --ignored --nocapture
}

cold_start() {
  [ -x .venv/bin/python ] || { echo "run scripts/test.sh once first: it creates .venv with moto" >&2; exit 1; }
  # shellcheck source=scripts/lambda.sh
  . scripts/lambda.sh
  build_lambda_binaries
  # shellcheck source=scripts/moto.sh
  . scripts/moto.sh
  start_moto "${REFWIRE_MOTO_PORT:-5067}" target/moto-cold-start.log
  cargo test --quiet -p refwire-tests --test integration --no-run
  echo "$(date -u "+%F %H:%M UTC"): $(nproc) cores, $(uname -m), $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  REFWIRE_LAMBDA_BIN_DIR="$(cd "$release" && pwd)" \
    cargo test --quiet -p refwire-tests --test integration cold_starts -- --ignored --nocapture
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

case "${1:-}" in
  waitlist-costs) waitlist_costs ;;
  cold-start) cold_start ;;
  milestones | deliveries)
    benchmark="$1"
    shift
    "$benchmark" "$@"
    ;;
  "") milestones && deliveries ;;
  *)
    echo "usage: scripts/bench.sh [milestones|deliveries [ARGS]|waitlist-costs|cold-start]" >&2
    exit 2
    ;;
esac
