#!/bin/sh
# prepare-tree.sh: turn a pristine QEMU 7.2 tree into one that builds velo.
# Our sources are symlinked into the tree (so edits rebuild incrementally)
# and the hook-line patches in patches/ are applied once.
#
# Usage: scripts/prepare-tree.sh TREE
set -eu

tree=${1:?usage: prepare-tree.sh TREE}
repo=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "$tree" && pwd)

case "$(cat "$tree/VERSION" 2>/dev/null)" in
    7.2.*) ;;
    *) echo "prepare-tree: $tree is not a QEMU 7.2.x tree (VERSION says '$(cat "$tree/VERSION" 2>/dev/null)')" >&2
       exit 1 ;;
esac

link() {
    # link TARGET LINKNAME: (re)create a symlink, refusing to clobber a real file
    if [ -e "$2" ] && [ ! -L "$2" ]; then
        echo "prepare-tree: $2 exists and is not our symlink; use a pristine tree" >&2
        exit 1
    fi
    ln -sfn "$1" "$2"
}

link "$repo/block" "$tree/block/velo"
link "$repo/qapi/velo.json" "$tree/qapi/velo.json"

for p in "$repo"/patches/*.patch; do
    stamp="$tree/.velo-applied-$(basename "$p" .patch)"
    [ -f "$stamp" ] && continue
    patch -d "$tree" -p1 --forward --batch --quiet < "$p"
    touch "$stamp"
done
echo "prepare-tree: $tree is ready"
