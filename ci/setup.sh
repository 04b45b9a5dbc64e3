#!/usr/bin/env bash
# Install what usdtkit's build, tests and conformance runs need, when missing. Idempotent:
# a machine that already has everything installs nothing. Runs as root (CI) or with sudo.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages:
# - binutils: readelf, the independent reference for note contents in tests.
# - gcc, libc6-dev: C toolchain for build scripts.
# - python3.11-minimal, postgresql-15, openjdk-17-jre-headless, libstdc++6: probe-rich real
#   binaries the tests read (/usr/bin/python3.11, postgres, libjvm.so, libstdc++.so.6).
# - systemtap-sdt-dev (sys/sdt.h), clang, g++: the fixture generator's compilers; i386
#   fixtures use Debian's i686 cross compiler and libc (gcc-multilib conflicts with every
#   cross compiler in Debian, so it is not used), libc6-i386 runs them.
# - gdb: an independent reader of probe arguments, used to check expected values.
# - libelf-dev, zlib1g-dev, pkg-config: libbpf (vendored by libbpf-sys) links them; clang
#   also builds the recorder BPF program. libbpf-dev: <bpf/usdt.bpf.h> for the README's
#   attach example, which a test builds and runs.
# - bpftrace, python3-bpfcc, linux-perf: peers the conformance harness runs (with gdb);
#   linux-headers-amd64: the kernel headers bcc compiles against (ci/peers.sh merges them);
#   debootstrap: the Debian 13 root with the peers' current versions (ci/peers.sh).
# - lld: the lld-linked fixtures (clang -fuse-ld=lld), whose semaphores share a file page
#   with RELRO.
# - gcc-<arch> cross compilers and their libc: the generator's fixtures for aarch64, arm,
#   riscv64, s390x, powerpc64 (both byte orders) and mips64el; clang-19 and lld-19 for
#   loongarch64 (Debian 12 has no LoongArch gcc or libc: a freestanding static build).
# - qemu-user, gdb-multiarch: run those fixtures under user-mode emulation and read their
#   registers and memory at each probe (the value check of foreign-architecture decoders).
APT_PACKAGES=(
  binutils gcc g++ libc6-dev
  python3.11-minimal postgresql-15 openjdk-17-jre-headless libstdc++6
  systemtap-sdt-dev clang gdb
  gcc-i686-linux-gnu libc6-dev-i386-cross libc6-i386
  libelf-dev zlib1g-dev pkg-config libbpf-dev
  bpftrace python3-bpfcc linux-perf linux-headers-amd64 debootstrap lld
  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-riscv64-linux-gnu gcc-s390x-linux-gnu
  gcc-powerpc64le-linux-gnu gcc-powerpc64-linux-gnu gcc-mips64el-linux-gnuabi64
  libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-riscv64-cross libc6-dev-s390x-cross
  libc6-dev-ppc64el-cross libc6-dev-ppc64-cross libc6-dev-mips64el-cross
  clang-19 lld-19 qemu-user gdb-multiarch
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
  log "cargo is missing: install a Rust toolchain (rustup) first"
  exit 1
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
    log "installing rust component $comp"
    rustup component add "$comp"
  fi
done
# The peers' kernel headers and the Debian 13 root (cached; a failure is recorded for the
# report, not fatal).
bash "$(dirname "$0")/peers.sh"
log "ready: $(cargo --version), $(readelf --version | head -1)"
