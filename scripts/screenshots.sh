#!/usr/bin/env bash
# Re-takes the screenshots in docs/screenshots/ by running the browser tests with REFWIRE_SCREENSHOTS
# set (each test saves the pages it visits). Needs the .venv that scripts/test.sh creates.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p refwire-local
REFWIRE_SCREENSHOTS=docs/screenshots REFWIRE_LOCAL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/refwire-local" \
  .venv/bin/python -m unittest tests/browser/test_dashboard.py
