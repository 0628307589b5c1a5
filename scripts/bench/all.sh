#!/usr/bin/env bash
# `deno task bench`: every benchmark, one after the other, each printing its own ratios.
# Results and the commands that produced them are kept in docs/benchmarks.md.
set -euo pipefail
here=$(dirname "$0")
. "$here/../lib/env.sh"
bash "$ROOT/scripts/build-helper.sh"
for bench in exit-latency blk-qtest boot blk; do
  printf '\n== %s ==\n' "$bench"
  bash "$here/$bench"
done
