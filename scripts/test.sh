#!/usr/bin/env bash
# README command 2: on a fresh machine, install everything, build the helper, the guest images and
# ./stratovirt, then run the whole test suite. Ends with `N passed, N failed, N skipped`.
# Extra arguments go to `deno test` (a file, --filter NAME).
set -euo pipefail
. "$(dirname "$0")/lib/env.sh"
cd "$ROOT"

bash scripts/setup.sh
bash scripts/build-helper.sh
STRATOVIRT_GUEST_DIR=$(bash scripts/guest/build.sh)
export STRATOVIRT_GUEST_DIR
bash scripts/build.sh
exec deno task --quiet test "$@"
