# Sourced by scripts/test.sh and scripts/bench.sh: builds the four Lambda binaries into
# target/release as `sam build` does (`cargo lambda build --release --bin <binary>` at the
# workspace root, so with the features of the whole workspace), with panic = "abort", which
# cargo-lambda adds because Cargo.toml leaves `panic` unset.
build_lambda_binaries() {
  cargo build --release --quiet --config 'profile.release.panic="abort"' \
    --bin refwire-api --bin refwire-fanout --bin refwire-delivery --bin refwire-sweep
}
