#!/usr/bin/env bash
# Builds one guest kernel variant from Debian's linux-source-6.1 into OUTDIR:
#   vmlinux (ELF, PVH note), bzImage (LZ4), vmlinux.bin (objcopy -O binary), config.
# Usage: kernel.sh OUTDIR pvm|standard
# build.sh calls this through its cache; run directly only to debug a kernel build.
# The source is unpacked and built out of tree inside OUTDIR/.work, removed on success.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib/env.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOURCE_TARBALL=/usr/src/linux-source-6.1.tar.xz

# The fragments and patches of a variant, in the order they apply; build.sh hashes the same list.
kernel_fragments() { echo "$GUEST_SCRIPTS/kernel/common.config" "$GUEST_SCRIPTS/kernel/$1.config"; }
kernel_patches() {
  if [ "$1" = pvm ]; then ls "$GUEST_SCRIPTS"/kernel/patches/*.patch; fi
}

# check_fragment CONFIG FRAGMENT: every option the fragment sets must have survived olddefconfig
# (Kconfig silently drops options whose dependencies are missing).
check_fragment() {
  local config=$1 fragment=$2 line name bad=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) name=${line%%=*} ;;
      "# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}; line="$name=n" ;;
      *) continue ;;
    esac
    local want=${line#*=} got
    got=$(grep -E "^$name=" "$config" | cut -d= -f2- || true)
    [ -n "$got" ] || got=n
    if [ "$want" != "$got" ]; then
      say "kernel: $(basename "$fragment"): $name wanted $want, got $got"
      bad=1
    fi
  done <"$fragment"
  return $bad
}

build_kernel() {
  local out=$1 variant=$2 start
  start=$(date +%s)
  local work="$out/.work" src obj
  src="$work/src"
  obj="$work/obj"
  mkdir -p "$src" "$obj"
  say "kernel[$variant]: unpacking $SOURCE_TARBALL"
  tar -xJf "$SOURCE_TARBALL" -C "$src" --strip-components=1
  local p
  for p in $(kernel_patches "$variant"); do
    say "kernel[$variant]: applying $(basename "$p")"
    patch -d "$src" -p1 --quiet --forward <"$p"
  done

  # Reproducible-ish identity strings; no host name or user leaks into the image.
  local make=(make -C "$src" O="$obj" ARCH=x86_64 -j"$(nproc)"
    KBUILD_BUILD_USER=stratovirt KBUILD_BUILD_HOST=guest-build)
  say "kernel[$variant]: configuring (tinyconfig + $(kernel_fragments "$variant" | xargs -n1 basename | tr '\n' ' '))"
  "${make[@]}" -s tinyconfig >/dev/null
  # shellcheck disable=SC2046
  "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" $(kernel_fragments "$variant") >/dev/null
  "${make[@]}" -s olddefconfig >&2
  local f
  for f in $(kernel_fragments "$variant"); do check_fragment "$obj/.config" "$f"; done

  say "kernel[$variant]: compiling with $(nproc) jobs"
  "${make[@]}" -s vmlinux bzImage >&2
  cp "$obj/vmlinux" "$out/vmlinux"
  cp "$obj/arch/x86/boot/bzImage" "$out/bzImage"
  cp "$obj/.config" "$out/config"
  objcopy -O binary "$out/vmlinux" "$out/vmlinux.bin"
  rm -rf "$work"
  say "kernel[$variant]: built in $(elapsed_since "$start")"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -eq 2 ] || die "usage: kernel.sh OUTDIR pvm|standard"
  case "$2" in pvm | standard) ;; *) die "unknown kernel variant '$2' (pvm or standard)" ;; esac
  mkdir -p "$1"
  build_kernel "$1" "$2"
fi
