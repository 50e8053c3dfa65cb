#!/usr/bin/env bash
# Measures milestone-report throughput and latency of a release refwire-local on this machine.
# Extra arguments go to the load generator, e.g. scripts/bench.sh --referrals 5000 --concurrency 32
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p refwire-local -p refwire-bench
exec target/release/milestone-load --local target/release/refwire-local "$@"
