#!/usr/bin/env bash
# Boots the images of a build.sh output directory under QEMU's microvm (the project's own VMM
# is not needed) and checks what the guest prints: a check of the images, not of the VMM.
#   1. initramfs-tiny.cpio          -> "BOOT-OK tiny-init", the VM ends itself
#   2. initramfs.cpio, sv.cmd=cpuinfo sv.halt -> BOOT-OK, CPUS/MEMTOTAL/E820, SV-CMD-DONE
#   3. rootfs.ext4 (copy) on virtio-blk as vda, a scratch disk as vdb,
#      sv.cmd=disks sv.cmd=blkpattern sv.halt -> DISK lines, PATTERN-MD5 matching the scratch file
# Usage: smoke-qemu.sh [DIR]   (default: the output of build.sh). Slow on kvm_pvm: 15-60 s a boot.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/env.sh"

dir=${1:-$(bash "$(dirname "${BASH_SOURCE[0]}")/build.sh")}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed"
cmdline="$(cat "$dir/cmdline") reboot=k"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# boot NAME TIMEOUT QEMU_ARGS...: boots, saves the console to $work/NAME.log, reports the time.
boot() {
  local name=$1 limit=$2 start status=0
  shift 2
  start=$(date +%s.%N)
  # microvm has no i8042 of its own: add one so the guest's reboot=k reset ends QEMU
  # (-no-reboot). kvm_pvm refuses MSR_IA32_ARCH_CAPABILITIES, which -cpu host would set.
  timeout "$limit" qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off,acpi=off \
    -enable-kvm -cpu host,-arch-capabilities -m 256 -smp 1 -nodefaults -no-user-config \
    -nographic -serial stdio -no-reboot -device i8042 -kernel "$dir/vmlinux" "$@" \
    </dev/null >"$work/$name.log" 2>&1 ||
    status=$?
  printf '%s: qemu exit %d after %.1f s\n' "$name" "$status" \
    "$(echo "$(date +%s.%N) - $start" | bc)" >&2
  return $status
}

# expect NAME PATTERN: the console log of NAME has a line matching PATTERN.
expect() {
  if grep -qE "$2" "$work/$1.log"; then return 0; fi
  say "$1: missing /$2/ in the console output:"
  tail -n 30 "$work/$1.log" | sed 's/^/    /' >&2
  failed=1
}

boot tiny 300 -initrd "$dir/initramfs-tiny.cpio" -append "$cmdline" || failed=1
expect tiny '^BOOT-OK tiny-init'

boot busybox 300 -initrd "$dir/initramfs.cpio" -append "$cmdline sv.cmd=cpuinfo sv.halt" ||
  failed=1
expect busybox '^BOOT-OK uptime=[0-9.]+ cpus=1 memkb=[0-9]+'
expect busybox '^CPUS 1'
expect busybox '^MEMTOTAL [0-9]+'
expect busybox '^E820 0x[0-9a-f]+-0x[0-9a-f]+ (usable|System_RAM)'
expect busybox '^SV-CMD-DONE cpuinfo rc=0'

cp "$dir/rootfs.ext4" "$work/root.ext4"
truncate -s 8M "$work/scratch.img"
boot disk 600 -append "$cmdline root=/dev/vda rw sv.cmd=disks sv.cmd=blkpattern sv.halt" \
  -drive "id=root,file=$work/root.ext4,format=raw,if=none" -device virtio-blk-device,drive=root \
  -drive "id=scratch,file=$work/scratch.img,format=raw,if=none" \
  -device virtio-blk-device,drive=scratch || failed=1
expect disk "^DISK vda $(($(stat -c %s "$work/root.ext4") / 512)) ro=0"
expect disk '^DISK vdb 16384 ro=0'
expect disk "^PATTERN-MD5 $(head -c 4194304 "$work/scratch.img" | md5sum | cut -d' ' -f1)"
expect disk '^SV-CMD-DONE blkpattern rc=0'
if [ "$(head -c 4194304 "$work/scratch.img" | tr -d Z | wc -c)" != 0 ]; then
  say "disk: the scratch disk does not hold 4 MiB of 'Z'"
  failed=1
fi

[ $failed = 0 ] && say "smoke-qemu: all boots passed" || say "smoke-qemu: FAILED"
exit $failed
