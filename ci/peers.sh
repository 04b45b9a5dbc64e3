#!/usr/bin/env bash
# The peers' extra setup, idempotent (ci/setup.sh runs it):
# - bcc compiles its BPF C against kernel headers, and this kernel ships none: Debian's two
#   header directories of linux-headers-amd64 (-common and -amd64) are merged into one tree
#   of symlinks at /usr/src/usdtkit-kernel, which the harness points BCC_KERNEL_SOURCE at.
# - Debian 13 (trixie) root with the current peers (bpftrace, bcc, gdb, perf) at
#   $USDTKIT_DEBIAN13_ROOT (default /var/lib/usdtkit/debian13), built with debootstrap from
#   the Debian archive. When it cannot be built (no network...), the reason goes to
#   ROOT.failed, which `usdtkit check` shows in those columns, and setup goes on.
set -uo pipefail

log() { printf 'peers: %s\n' "$*" >&2; }

merge_headers() { # ROOT: merge ROOT/usr/src/linux-headers-*-{common,amd64} into ROOT/usr/src/usdtkit-kernel
  local root=$1 dst=$1/usr/src/usdtkit-kernel d found=0
  [ -d "$dst/include" ] && return 0
  rm -rf "$dst" && mkdir -p "$dst"
  for d in "$root"/usr/src/linux-headers-*-common "$root"/usr/src/linux-headers-*-amd64; do
    [ -d "$d" ] || continue
    # Symlinks must resolve inside the root too: link to the path as seen from there.
    (cd "$d" && find . -type d -exec mkdir -p "$dst/{}" \; &&
      find . ! -type d -exec sh -c 'for f; do ln -sfn "${0}/${f#./}" "'"$dst"'/${f#./}"; done' "${d#"$root"}" {} +)
    found=1
  done
  if [ "$found" = 0 ]; then rm -rf "$dst"; return 1; fi
}

if merge_headers ""; then log "kernel headers for bcc: /usr/src/usdtkit-kernel"; else
  log "no linux-headers-*-amd64 in /usr/src: bcc will be reported not available"
fi

root=${USDTKIT_DEBIAN13_ROOT:-/var/lib/usdtkit/debian13}
packages="bpftrace python3-bpfcc gdb linux-perf linux-headers-amd64 libc6-i386"
stamp="$root/.usdtkit-ready"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ]; then
  log "Debian 13 root ready: $root"
  exit 0
fi
log "building the Debian 13 root in $root (debootstrap, about a minute)"
fail() { log "Debian 13 root not built: $*"; mkdir -p "$(dirname "$root")"; echo "$*" > "$root.failed"; exit 0; }
command -v debootstrap >/dev/null || fail "debootstrap is not installed"
rm -rf "$root" "$root.failed"
mkdir -p "$root"
if ! out=$(debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian 2>&1); then
  fail "debootstrap trixie failed: $(printf '%s' "$out" | tail -n 1)"
fi
# The root sees the host's /proc, /sys and /dev only while a command runs in it, through a
# private mount namespace: nothing stays mounted.
inroot() {
  unshare --mount --propagation private -- sh -c \
    'r=$1; shift; for d in proc sys dev; do mount --rbind "/$d" "$r/$d"; done; exec chroot "$r" "$@"' \
    sh "$root" "$@"
}
if ! out=$(inroot sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages" 2>&1); then
  fail "apt-get install in the Debian 13 root failed: $(printf '%s' "$out" | tail -n 1)"
fi
merge_headers "$root" || fail "no kernel headers in the Debian 13 root"
printf '%s' "$packages" > "$stamp"
log "Debian 13 root ready: $root ($(inroot bpftrace --version 2>/dev/null), $(inroot perf --version 2>/dev/null))"
