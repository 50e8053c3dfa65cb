#!/usr/bin/env bash
# Follows the README's "Deploy to AWS" up to the first step that needs AWS credentials: installs the
# tools into .venv-deploy, adds the Rust target, copies the example configuration (to a temporary
# file, so a samconfig.toml of yours is left alone), runs `sam validate --lint` and `sam build`, then
# checks each function's bootstrap (present, architecture, size) and stops before `sam deploy`.
# Not part of scripts/test.sh, which builds and runs the same code for x86_64 (README, "Check and
# build", says why).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { printf '== [%dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }

# AWS Lambda's limit is 50 MB zipped; this is the project's own budget per binary.
max_bytes=6000000
# No usage data sent from this check.
export SAM_CLI_TELEMETRY=0

step "tools: the SAM CLI and cargo-lambda (with Zig) into .venv-deploy"
venv=.venv-deploy
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck source=/dev/null
. "$venv/bin/activate"
pip install --quiet --disable-pip-version-check aws-sam-cli cargo-lambda
rustup target add aarch64-unknown-linux-gnu
sam --version
cargo lambda --version

step "configure: infra/samconfig.example.toml as the configuration"
scratch=$(mktemp -d)
progress=""
cleanup() {
  [ -z "$progress" ] || kill "$progress" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
config=$scratch/samconfig.toml
cp infra/samconfig.example.toml "$config"

step "sam validate --lint"
sam validate --lint --config-file "$config"

step "sam build (cargo's output is shown only on failure; a line a minute shows its progress)"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
(
  while sleep 60; do
    compiled=$(find "$target_dir/aarch64-unknown-linux-gnu/release/deps" -name '*.rlib' -newer "$config" 2>/dev/null | wc -l)
    step "sam build: $compiled crates compiled for aarch64 so far"
  done
) &
progress=$!
sam build --config-file "$config"
kill "$progress"
progress=""

step "the built functions"
for function in ApiFunction FanoutFunction DeliveryFunction SweepFunction; do
  bootstrap=.aws-sam/build/$function/bootstrap
  [ -x "$bootstrap" ] || { echo "missing: $bootstrap" >&2; exit 1; }
  size=$(stat -c %s "$bootstrap")
  description=$(file -b "$bootstrap")
  printf '%-17s %9d bytes  %s\n' "$function" "$size" "$description"
  case "$description" in
    *"ARM aarch64"*) ;;
    *) echo "$bootstrap is not an arm64 executable" >&2; exit 1 ;;
  esac
  [ "$size" -lt "$max_bytes" ] || { echo "$bootstrap is $size bytes, over $max_bytes" >&2; exit 1; }
done

step "done: the next step, sam deploy, needs AWS credentials (README, First deploy)"
