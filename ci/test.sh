#!/usr/bin/env bash
# Set up the machine, then run every check CI runs: formatting, each cargo feature alone
# (ci/features.sh: build, lint, test, the reader without C, docs, the package), clippy, all
# tests (unit, integration against real binaries, property tests, CLI tests, benches in
# test mode) and doc tests. Usage: ci/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== each feature alone and together (ci/features.sh)"
bash ci/features.sh
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test (all targets; benches run once in test mode)"
cargo test --all-targets --locked
echo "== cargo test --doc"
cargo test --doc --locked
