#!/usr/bin/env bash
# Assembles the tiny test guests (tests/guests/*.S) into flat binaries in
# helper/zig-out/guests/NAME.bin with Zig's clang assembler and objcopy.
# Quiet, and does nothing for a guest whose binary is newer than its source.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib/env.sh"

src_dir="$ROOT/tests/guests"
out_dir="${STRATOVIRT_GUESTS_OUT:-$ROOT/helper/zig-out/guests}"
mkdir -p "$out_dir"
command -v zig >/dev/null || die "guests: zig not found (run scripts/setup.sh)"

for src in "$src_dir"/*.S; do
  name=$(basename "$src" .S)
  bin="$out_dir/$name.bin"
  [ "$bin" -nt "$src" ] && continue
  obj=$(mktemp --suffix=.o)
  zig cc -target x86_64-freestanding -c "$src" -o "$obj" || { rm -f "$obj"; die "guests: cannot assemble $src"; }
  zig objcopy -O binary "$obj" "$bin.tmp" || { rm -f "$obj" "$bin.tmp"; die "guests: objcopy failed for $src"; }
  rm -f "$obj"
  mv "$bin.tmp" "$bin"
done
