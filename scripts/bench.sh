#!/usr/bin/env bash
# Load-tests a release refwire-local on this machine.
#   scripts/bench.sh                     both benchmarks, one after the other, with their defaults
#   scripts/bench.sh milestones [ARGS]   milestone-report throughput and latency
#                                        (e.g. --referrals 5000 --concurrency 32)
#   scripts/bench.sh deliveries [ARGS]   webhook fan-out + delivery throughput and latency
#                                        (e.g. --events 2000 --concurrency 16)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p refwire-local -p refwire-bench
release="${CARGO_TARGET_DIR:-target}/release"

milestones() { "$release/milestone-load" --local "$release/refwire-local" "$@"; }
deliveries() { "$release/delivery-load" --local "$release/refwire-local" "$@"; }

case "${1:-}" in
  milestones | deliveries)
    benchmark="$1"
    shift
    "$benchmark" "$@"
    ;;
  "") milestones && deliveries ;;
  *)
    echo "usage: scripts/bench.sh [milestones|deliveries [ARGS]]" >&2
    exit 2
    ;;
esac
