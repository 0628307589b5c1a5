#!/usr/bin/env bash
# Builds the guest images the tests and the demo boot, caching every part outside the repo
# under $STRATOVIRT_CACHE/guest/, keyed by a hash of its inputs (these scripts, the kernel
# fragments and patches, the Debian package versions): a second run rebuilds nothing and
# prints nothing but the path.
#
# Usage: bash scripts/guest/build.sh [--variant pvm|standard|auto] [--bench]
#   --variant  pvm: for hosts whose /dev/kvm is kvm_pvm (tinyconfig + pvm.config + patches/);
#              standard: for hardware KVM (a fuller config, a long build);
#              auto (default, or $STRATOVIRT_GUEST_VARIANT): pvm when kvm_pvm is loaded.
#   --bench    also build rootfs-bench.ext4 (busybox + fio + iperf3).
# Prints ONLY the output directory on stdout; it holds vmlinux, bzImage, vmlinux.bin, config,
# rootfs.ext4, initramfs.cpio, initramfs-tiny.cpio, cmdline, variant (and rootfs-bench.ext4).
# The images there are shared by every user of the cache: copy rootfs.ext4 before booting it rw.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/env.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/kernel.sh"
. "$(dirname "${BASH_SOURCE[0]}")/rootfs.sh"

PVM_CMDLINE="console=ttyS0 panic=-1 noxsave no_int3_selftest"
PVM_CMDLINE+=" clearcpuid=popcnt,fsgsbase,invpcid,pcid,erms,fsrm,cx16,bmi1,bmi2,smap,rep_good"
PVM_CMDLINE+=" pvm_syscall_fixup rodata=off percpu_alloc=page quiet"
STANDARD_CMDLINE="console=ttyS0 panic=-1 quiet"

usage() { die "usage: build.sh [--variant pvm|standard|auto] [--bench]"; }

variant=${STRATOVIRT_GUEST_VARIANT:-auto}
bench=0
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) [ $# -ge 2 ] || usage; variant=$2; shift 2 ;;
    --variant=*) variant=${1#--variant=}; shift ;;
    --bench) bench=1; shift ;;
    -h | --help) usage ;;
    *) say "build.sh: unknown argument '$1'"; usage ;;
  esac
done
if [ "$variant" = auto ]; then
  if [ -e /sys/module/kvm_pvm ]; then variant=pvm; else variant=standard; fi
fi
case "$variant" in
  pvm | standard) ;;
  *) die "unknown guest variant '$variant' (pvm, standard or auto)" ;;
esac

command -v gcc >/dev/null || die "gcc is missing (run: bash scripts/setup.sh)"
gcc_version=$(gcc -dumpfullversion)

# shellcheck disable=SC2046
kernel_key=$(inputs_hash "kernel-$variant" "$gcc_version" "$(deb_version linux-source-6.1)" \
  "$GUEST_SCRIPTS/kernel.sh" $(kernel_fragments "$variant") $(kernel_patches "$variant"))
rootfs_key=$(inputs_hash rootfs "$gcc_version" "$(deb_version busybox-static)" \
  "$(deb_version e2fsprogs)" "$GUEST_SCRIPTS/rootfs.sh" "$GUEST_SCRIPTS/cpio.sh" \
  "$GUEST_SCRIPTS/rootfs" "$GUEST_SCRIPTS/tiny-init")
kernel_dir="$GUEST_CACHE/kernel-$variant-$kernel_key"
rootfs_dir="$GUEST_CACHE/rootfs-$rootfs_key"
if [ "$variant" = pvm ]; then cmdline=$PVM_CMDLINE; else cmdline=$STANDARD_CMDLINE; fi
# The output directory only links the two entries, so its key is theirs plus the command line.
out_dir="$GUEST_CACHE/$variant-$(inputs_hash "$kernel_key" "$rootfs_key" "$cmdline")"

cached_build "$kernel_dir" build_kernel "$variant"
cached_build "$rootfs_dir" build_rootfs

# assemble_output TMPDIR: hard links to the kernel and rootfs entries (same filesystem), and
# the command line that boots this variant.
assemble_output() {
  local tmp=$1 f
  for f in vmlinux bzImage vmlinux.bin config; do ln "$kernel_dir/$f" "$tmp/$f"; done
  for f in rootfs.ext4 initramfs.cpio initramfs-tiny.cpio; do ln "$rootfs_dir/$f" "$tmp/$f"; done
  echo "$variant" >"$tmp/variant"
  echo "$cmdline" >"$tmp/cmdline"
}
cached_build "$out_dir" assemble_output

if [ "$bench" = 1 ] && [ ! -e "$out_dir/rootfs-bench.ext4" ]; then
  bench_key=$(inputs_hash bench "$(deb_version busybox-static)" "$(deb_version fio)" \
    "$(deb_version iperf3)" "$(deb_version libc6)" "$(deb_version e2fsprogs)" \
    "$GUEST_SCRIPTS/rootfs.sh" "$GUEST_SCRIPTS/rootfs")
  bench_dir="$GUEST_CACHE/rootfs-bench-$bench_key"
  cached_build "$bench_dir" build_bench_rootfs
  # Link under a temporary name, then rename: the file appears complete or not at all.
  ln -f "$bench_dir/rootfs-bench.ext4" "$out_dir/.rootfs-bench.ext4.tmp"
  mv -f "$out_dir/.rootfs-bench.ext4.tmp" "$out_dir/rootfs-bench.ext4"
fi

printf '%s\n' "$out_dir"
