# Writes an uncompressed "newc" cpio archive (the initramfs format) from a directory tree,
# without root: every entry is owned by 0:0 with mtime 0 (so the archive is reproducible),
# and device nodes the tree cannot hold without mknod are given as extra arguments.
# shellcheck shell=bash

# cpio_pad LENGTH: zero bytes up to the next multiple of 4.
cpio_pad() { head -c $(((4 - $1 % 4) % 4)) /dev/zero; }

# cpio_header INO MODE NLINK SIZE RDEV_MAJOR RDEV_MINOR NAME (mode as a number, e.g. 0100755)
cpio_header() {
  local namesize=$((${#7} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
    "$1" "$(($2))" 0 0 "$3" 0 "$4" 0 0 "$5" "$6" "$namesize" 0 "$7"
  cpio_pad $((110 + namesize))
}

# cpio_from_tree TREE [NAME:c:MAJOR:MINOR:MODE ...] > archive.cpio
# Extra arguments add character device nodes, e.g. dev/console:c:5:1:0600.
cpio_from_tree() {
  local tree=$1 ino=1 path mode size target node
  shift
  local LC_ALL=C
  while IFS= read -r path; do
    path=${path#./}
    mode=$((0x$(stat -c %f "$tree/$path")))
    if [ -L "$tree/$path" ]; then
      target=$(readlink "$tree/$path")
      cpio_header $ino "$mode" 1 ${#target} 0 0 "$path"
      printf '%s' "$target"
      cpio_pad ${#target}
    elif [ -d "$tree/$path" ]; then
      cpio_header $ino "$mode" 2 0 0 0 "$path"
    elif [ -f "$tree/$path" ]; then
      size=$(stat -c %s "$tree/$path")
      cpio_header $ino "$mode" 1 "$size" 0 0 "$path"
      cat "$tree/$path"
      cpio_pad "$size"
    else
      die "cpio: $tree/$path is neither a file, a directory nor a symlink"
    fi
    ino=$((ino + 1))
  done < <(cd "$tree" && find . -mindepth 1 | sort)
  for node in "$@"; do
    IFS=: read -r path _ major minor mode <<<"$node"
    cpio_header $ino $((020000 | 0$mode)) 1 0 "$major" "$minor" "$path"
    ino=$((ino + 1))
  done
  cpio_header 0 0 1 0 0 0 "TRAILER!!!"
}
