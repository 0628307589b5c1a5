# Helpers shared by the guest image scripts: input hashes and atomic cache entries.
# shellcheck shell=bash

GUEST_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_CACHE="$STRATOVIRT_CACHE/guest"

# deb_version PACKAGE: the installed Debian version, or die naming the package to install.
deb_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) || v=""
  [ -n "$v" ] || die "Debian package $1 is not installed (run: bash scripts/setup.sh)"
  printf '%s\n' "$v"
}

# inputs_hash WORD_OR_PATH...: a short hash over the given strings and over the content of
# every path (files, or all files under a directory), so any change of inputs changes the key.
inputs_hash() {
  local item
  for item in "$@"; do
    if [ -d "$item" ]; then
      (cd "$item" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
      (cd "$item" && find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %a')
    elif [ -f "$item" ]; then
      printf '%s ' "$(basename "$item")"
      sha256sum <"$item"
    else
      printf 'word %s\n' "$item"
    fi
  done | sha256sum | cut -c1-16
}

# cached_build DIR BUILDER ARGS...: run `BUILDER TMPDIR ARGS...` unless DIR already exists,
# then rename TMPDIR to DIR. An interrupted build leaves only a *.tmp-* directory behind,
# never something that looks finished. A lock serialises concurrent builds of one entry, so
# the second waits and then finds it built; under the lock, leftover temp dirs are stale.
cached_build() {
  local dir=$1 builder=$2 lock
  shift 2
  [ -d "$dir" ] && return 0
  mkdir -p "$(dirname "$dir")"
  exec {lock}>"$dir.lock"
  flock "$lock"
  if [ -d "$dir" ]; then
    exec {lock}>&-
    return 0
  fi
  rm -rf "$dir".tmp-*
  local tmp
  tmp=$(mktemp -d "$dir.tmp-XXXXXX")
  chmod 755 "$tmp"
  # A subshell outside any `if`, so `set -e` stops the builder at its first failing command.
  local status=0
  set +e
  (
    set -e
    "$builder" "$tmp" "$@"
  )
  status=$?
  set -e
  if [ $status -ne 0 ]; then
    rm -rf "$tmp"
    exec {lock}>&-
    die "building $(basename "$dir") failed"
  fi
  mv -T "$tmp" "$dir"
  exec {lock}>&-
}

# elapsed_since START_SECONDS: "123 s" for progress messages.
elapsed_since() { printf '%d s' $(($(date +%s) - $1)); }
