#!/usr/bin/env bash
# Each cargo feature alone and all together: build, lint and test; the reader's dependency
# tree free of -sys crates and of the cc crate; a crate depending on the reader alone built
# and run with no C compiler in reach; the package and its docs. Part of ci/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Alone: the reader, then each feature with only what it implies. `harness` and `cli`
# differ only by the binary, and `cli` (the default) runs every test in ci/test.sh: here
# `harness` is linted, its library tests run and its integration tests are built.
for f in "" serde attach libbpf-rs recorder harness; do
  echo "== feature '${f:-<none>}' alone: clippy"
  cargo clippy --locked --no-default-features --features "$f" --all-targets -- -D warnings
  if [ "$f" = harness ]; then
    echo "== feature 'harness' alone: library tests, integration tests built"
    cargo test --locked --no-default-features --features "$f" --lib
    cargo test --locked --no-default-features --features "$f" --tests --no-run
  else
    echo "== feature '${f:-<none>}' alone: tests"
    cargo test --locked --no-default-features --features "$f"
  fi
done
echo "== all features: clippy"
cargo clippy --locked --all-features --all-targets -- -D warnings

echo "== the reader's dependency tree: no -sys crate, no cc"
tree=$(cargo tree --locked --no-default-features -e normal,build --prefix none)
echo "$tree" | sort -u
if echo "$tree" | grep -E -- '^[a-z0-9_-]+-sys |^cc '; then
  echo "features: the reader (default-features = false) depends on the crates above" >&2
  exit 1
fi

echo "== a crate using the reader alone, built with no C compiler and no libelf in reach"
# The linker rustc calls (cc) stays; clang, CC, CXX and pkg-config's libelf do not.
nocc=$(mktemp -d)
trap 'rm -rf "$nocc"' EXIT
for dir in ${PATH//:/ }; do
  [ -d "$dir" ] || continue
  for tool in "$dir"/*; do
    name=${tool##*/}
    case "$name" in clang*|pkg-config|*-pkg-config|bpftool) continue ;; esac
    [ -e "$nocc/$name" ] || ln -s "$tool" "$nocc/$name"
  done
done
(
  cd ci/consumer
  env PATH="$nocc" CC=/bin/false CXX=/bin/false PKG_CONFIG_LIBDIR=/nonexistent \
    CARGO_TARGET_DIR="$PWD/../../target/consumer" cargo build --quiet
  out=$(../../target/consumer/debug/usdtkit-consumer /usr/bin/python3.11)
  echo "$out" | grep -q "^/usr/bin/python3.11 python:function__entry " || {
    echo "features: the consumer did not list python3.11's function__entry:" >&2
    echo "$out" >&2
    exit 1
  }
  echo "$out" | wc -l | sed 's/^/probes listed: /'
  if ldd ../../target/consumer/debug/usdtkit-consumer | grep -E 'libelf|libz|libbpf'; then
    echo "features: the consumer links a C library it should not" >&2
    exit 1
  fi
)

echo "== cargo doc (the reader alone, and all features; warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --no-default-features
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --all-features
echo "== cargo package --list, cargo publish --dry-run"
cargo package --locked --list --allow-dirty | sed 's/^/  /'
cargo publish --locked --dry-run --allow-dirty
