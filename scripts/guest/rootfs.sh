#!/usr/bin/env bash
# Builds the busybox guest userspace into OUTDIR:
#   rootfs.ext4          busybox tree as ext4 (label svroot; root=/dev/vda rw), made with mke2fs -d
#   initramfs.cpio       the same tree as an uncompressed newc cpio
#   initramfs-tiny.cpio  /dev/console and the libc-free tiny-init/init.S as /init
# or, with --bench, only rootfs-bench.ext4: the busybox tree plus fio and iperf3 with their
# shared libraries.
# Usage: rootfs.sh OUTDIR [--bench]
# build.sh calls this through its cache; run directly only to debug.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/env.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/cpio.sh"

ROOTFS_LABEL=svroot
BUSYBOX=/bin/busybox

# stage_busybox TREE: busybox with a symlink per applet, then the project's files on top.
stage_busybox() {
  local tree=$1 applet
  mkdir -p "$tree"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,mnt,run,var/log}
  cp "$BUSYBOX" "$tree/bin/busybox"
  for applet in $("$BUSYBOX" --list-full); do
    [ -e "$tree/$applet" ] || ln -s /bin/busybox "$tree/$applet"
  done
  # The project's init, poweroff wrapper and /etc/sv scripts replace busybox's applets.
  rm -f "$tree/sbin/poweroff" "$tree/sbin/init"
  cp -a "$GUEST_SCRIPTS/rootfs/." "$tree/"
  ln -s /init "$tree/sbin/init"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$tree/etc/passwd"
  printf 'root:x:0:\n' >"$tree/etc/group"
  # busybox's shell runs its own poweroff/reboot/halt applets before PATH (they only signal PID 1),
  # so the login shell gets functions that end the VM the way /sbin/poweroff does.
  cat >"$tree/etc/profile" <<'PROFILE'
export PS1="sv# "
poweroff() { /sbin/poweroff; }
reboot() { if [ $# -eq 0 ]; then /sbin/poweroff; else command reboot "$@"; fi; }
halt() { /sbin/poweroff; }
PROFILE
  chmod 1777 "$tree/tmp"
}

# make_ext4 TREE IMAGE: an ext4 image of the tree, sized to its content plus room to write.
make_ext4() {
  local tree=$1 image=$2 used_kb size_kb
  used_kb=$(du -sk "$tree" | cut -f1)
  size_kb=$((used_kb * 3 / 2 + 8192))
  [ $size_kb -ge 16384 ] || size_kb=16384
  mke2fs -q -F -t ext4 -L "$ROOTFS_LABEL" -E root_owner=0:0 -d "$tree" "$image" "${size_kb}k" >/dev/null
}

# copy_with_libraries TREE BINARY...: the binaries and every shared library ldd names,
# at the same paths, including the dynamic loader.
copy_with_libraries() {
  local tree=$1 file
  shift
  # ldd lines: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" and the loader's
  # "/lib64/ld-linux-x86-64.so.2 (0x...)".
  for file in $( (
    printf '%s\n' "$@"
    for file in "$@"; do ldd "$file"; done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
      $1 ~ /^\// { print $1 }' | sort -u
  )); do
    mkdir -p "$tree$(dirname "$file")"
    cp -L "$file" "$tree$file"
  done
}

build_rootfs() {
  local out=$1 start
  start=$(date +%s)
  local work="$out/.work"
  mkdir -p "$work/tree" "$work/tiny"
  say "rootfs: staging busybox $(deb_version busybox-static)"
  stage_busybox "$work/tree"
  cpio_from_tree "$work/tree" dev/console:c:5:1:0600 >"$out/initramfs.cpio"
  make_ext4 "$work/tree" "$out/rootfs.ext4"

  say "rootfs: building tiny init"
  gcc -nostdlib -static -s -Wl,--build-id=none -Wl,-z,noseparate-code -o "$work/tiny/init" "$GUEST_SCRIPTS/tiny-init/init.S"
  mkdir -p "$work/tiny/dev"
  cpio_from_tree "$work/tiny" dev/console:c:5:1:0600 >"$out/initramfs-tiny.cpio"
  rm -rf "$work"
  say "rootfs: built in $(elapsed_since "$start")"
}

build_bench_rootfs() {
  local out=$1 start
  start=$(date +%s)
  local work="$out/.work"
  say "rootfs-bench: staging busybox, fio $(deb_version fio), iperf3 $(deb_version iperf3)"
  stage_busybox "$work/tree"
  copy_with_libraries "$work/tree" /usr/bin/fio /usr/bin/iperf3
  make_ext4 "$work/tree" "$out/rootfs-bench.ext4"
  rm -rf "$work"
  say "rootfs-bench: built in $(elapsed_since "$start")"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${2:-}" in
    "") [ $# -eq 1 ] || die "usage: rootfs.sh OUTDIR [--bench]"; mkdir -p "$1"; build_rootfs "$1" ;;
    --bench) mkdir -p "$1"; build_bench_rootfs "$1" ;;
    *) die "usage: rootfs.sh OUTDIR [--bench]" ;;
  esac
fi
