# Sourced by every script: where the project, its tools and its caches live.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="$ROOT/.tools"
# Builds that take minutes (guest kernels, rootfs) are cached outside the repo, keyed by input hash.
CACHE="${STRATOVIRT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stratovirt}"
DENO_VERSION=2.9.6
ZIG_VERSION=0.11.0
export PATH="$TOOLS/deno:$TOOLS/zig:$PATH"
export DENO_NO_UPDATE_CHECK=1
export STRATOVIRT_CACHE="$CACHE"
export ROOT TOOLS CACHE DENO_VERSION ZIG_VERSION

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
