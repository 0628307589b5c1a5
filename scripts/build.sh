#!/usr/bin/env bash
# Builds the single executable ./stratovirt and its twin ./ozone (see docs/build.md).
#   - With a Deno runtime for compiled programs (DENORT_BIN, or $STRATOVIRT_CACHE/denort/denort):
#     `deno compile --self-extracting`, one binary per entry point.
#   - Otherwise the fallback: a small Zig launcher with the Deno runtime, the sources and the helper
#     appended as a payload, extracted once into a cache keyed by its content hash.
# Usage: scripts/build.sh [OUTPUT_DIR]   (or STRATOVIRT_BUILD_OUT; default: the repository root)
# Environment: DENORT_BIN (a denort runtime: use deno compile); STRATOVIRT_BUILD_MODE=auto|compile|
# launcher (force one way); STRATOVIRT_BUILD_SRC (the program tree to package, default the repo).
# Incremental and quiet: when no input changed it does nothing and prints nothing.
set -euo pipefail
. "$(dirname "$0")/lib/env.sh"

OUT=${1:-${STRATOVIRT_BUILD_OUT:-$ROOT}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SRC=$(cd "${STRATOVIRT_BUILD_SRC:-$ROOT}" && pwd)
cd "$SRC"
STRATOVIRT_OUT=$OUT/stratovirt
OZONE_OUT=$OUT/ozone

HELPER=helper/zig-out/lib/libstratovirt_helper.so
RUNTIME=$TOOLS/deno/deno
WORK=$ROOT/build/single-binary
mkdir -p "$WORK/stamps"

DENORT=${DENORT_BIN:-}
if [ -z "$DENORT" ] && [ -x "$CACHE/denort/denort" ]; then DENORT=$CACHE/denort/denort; fi
MODE=${STRATOVIRT_BUILD_MODE:-auto}
case "$MODE" in
  auto) if [ -n "$DENORT" ]; then MODE=compile; else MODE=launcher; fi ;;
  compile) [ -n "$DENORT" ] || die "build: compile mode needs DENORT_BIN or $CACHE/denort/denort" ;;
  launcher) DENORT= ;;
  *) die "build: STRATOVIRT_BUILD_MODE must be auto, compile or launcher, not '$MODE'" ;;
esac
if [ "$MODE" = compile ] && [ ! -x "$DENORT" ]; then
  die "build: the denort runtime $DENORT is not an executable file"
fi

# What the program is made of: entry points, config and every non-test source file.
sources() {
  local roots=() r
  for r in main.ts deno.json src ffi; do [ -e "$r" ] && roots+=("$r"); done
  find "${roots[@]}" -type f ! -name '*_test.ts' | LC_ALL=C sort
}

# Everything that decides the output. Large binaries by identity (size, mtime, inode), the rest
# by content.
inputs_digest() {
  {
    echo "mode=$MODE denort=$DENORT src=$SRC deno=$DENO_VERSION zig=$ZIG_VERSION"
    (cd "$ROOT" && sha256sum scripts/build.sh scripts/build/launcher.zig scripts/build/pack.ts)
    sources | xargs -d '\n' sha256sum
    if [ -f "$HELPER" ]; then sha256sum "$HELPER"; else echo "no helper"; fi
    stat -L -c '%n %s %Y %i' "$RUNTIME" ${DENORT:+"$DENORT"}
  } | sha256sum | cut -d' ' -f1
}

outputs_identity() {
  stat -c '%n %s %Y %i' "$STRATOVIRT_OUT" "$OZONE_OUT" 2>/dev/null || echo missing
}

# One stamp per output dir: its path, then the inputs' digest and the outputs' identity.
STAMP=$WORK/stamps/$(printf '%s' "$OUT" | sha256sum | cut -c1-16)
DIGEST=$(inputs_digest)
stamp_text() { printf '%s\n%s %s\n' "$OUT" "$DIGEST" "$(outputs_identity | tr '\n' ' ')"; }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_text)" ]; then
  exit 0
fi

# Forget stamps of output dirs that are gone (tests build into temp dirs).
for old in "$WORK"/stamps/*; do
  if [ -f "$old" ] && [ ! -d "$(head -n1 "$old")" ]; then rm -f "$old"; fi
done

[ -f main.ts ] || die "build: main.ts is missing in $SRC"
if [ ! -f "$HELPER" ]; then
  say "build: warning: $HELPER is missing (run scripts/build-helper.sh); packaging without the helper"
fi

build_compiled() {
  local entry=$1 output=$2 includes=() dir
  # Workers and the helper are loaded by URL at run time, so the compiler must be told about them.
  for dir in src ffi "$HELPER"; do [ -e "$dir" ] && includes+=(--include "$dir"); done
  [ -f deno.json ] && includes+=(--config deno.json)
  DENORT_BIN=$DENORT deno compile --quiet -A --no-check --no-remote --no-npm --self-extracting \
    "${includes[@]}" --output "$output.tmp-$$" "$entry" ||
    die "build: deno compile of $entry failed"
  mv -f "$output.tmp-$$" "$output"
}

# The launcher is compiled once per launcher.zig content; concurrent builds never share a temp file.
build_launcher() {
  local key bin
  key=$(sha256sum "$ROOT/scripts/build/launcher.zig" | cut -c1-16)
  bin=$WORK/launcher-$key
  if [ ! -x "$bin" ]; then
    zig build-exe "$ROOT/scripts/build/launcher.zig" -O ReleaseSmall -target x86_64-linux -mcpu baseline \
      -fstrip -fsingle-threaded --name launcher -femit-bin="$bin.tmp-$$" \
      --cache-dir "$WORK/zig-cache" --global-cache-dir "$CACHE/zig" ||
      die "build: compiling the launcher (scripts/build/launcher.zig) failed"
    rm -f "$bin.tmp-$$.o"
    mv -f "$bin.tmp-$$" "$bin"
    find "$WORK" -maxdepth 1 -name 'launcher-*' ! -name "launcher-$key*" -delete

  fi
  echo "$bin"
}

build_fallback() {
  local launcher entries=() f
  launcher=$(build_launcher)
  while IFS= read -r f; do entries+=("$f=$f"); done < <(sources)
  [ -f "$HELPER" ] && entries+=("$HELPER=$HELPER")
  deno run -A --quiet --no-config --no-lock "$ROOT/scripts/build/pack.ts" "$launcher" "$STRATOVIRT_OUT" \
    "$RUNTIME" "${entries[@]}" >/dev/null || die "build: packing $STRATOVIRT_OUT failed"
  # Same file under a second name: the launcher picks the entry point from argv[0].
  rm -f "$OZONE_OUT"
  ln "$STRATOVIRT_OUT" "$OZONE_OUT" 2>/dev/null || cp "$STRATOVIRT_OUT" "$OZONE_OUT"
}

if [ "$MODE" = compile ]; then
  build_compiled main.ts "$STRATOVIRT_OUT"
  build_compiled src/ozone/main.ts "$OZONE_OUT"
else
  build_fallback
fi
stamp_text >"$STAMP"
say "build: $STRATOVIRT_OUT and $OZONE_OUT ($MODE, $(($(stat -c %s "$STRATOVIRT_OUT") / 1048576)) MiB)"
