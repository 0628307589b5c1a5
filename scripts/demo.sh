#!/usr/bin/env bash
# README command 1: on a fresh machine, install everything, build, and boot the demo VM: the
# project's guest kernel and busybox initramfs, an interactive shell on the serial console.
# `poweroff` in the guest returns here.
set -euo pipefail
. "$(dirname "$0")/lib/env.sh"
cd "$ROOT"

bash scripts/setup.sh
bash scripts/build-helper.sh
GUEST=$(bash scripts/guest/build.sh)
bash scripts/build.sh
APPEND="$(cat "$GUEST/cmdline") reboot=k"
say "demo: booting $GUEST/vmlinux with $GUEST/initramfs.cpio (type 'poweroff' to leave)"
exec ./stratovirt -machine microvm -smp 1 -m 256M \
  -kernel "$GUEST/vmlinux" -initrd "$GUEST/initramfs.cpio" -append "$APPEND" \
  -serial stdio
