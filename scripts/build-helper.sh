#!/usr/bin/env bash
# Builds the Zig helper library (helper/zig-out/lib/libstratovirt_helper.so) and the tiny test
# guests (helper/zig-out/guests/*.bin). Quiet when everything is up to date; errors go to stderr.
set -euo pipefail
. "$(dirname "$0")/lib/env.sh"

command -v zig >/dev/null || die "build-helper: zig $ZIG_VERSION not found in $TOOLS/zig (run scripts/setup.sh)"
cd "$ROOT/helper"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The cache stays inside helper/ (git-ignored) so a clean build needs nothing from $HOME.
if ! zig build --summary none --global-cache-dir "$ROOT/helper/zig-cache/global" >"$log" 2>&1; then
  cat "$log" >&2
  die "build-helper: zig build failed"
fi
bash "$ROOT/tests/guests/build.sh"
