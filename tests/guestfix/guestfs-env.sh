# guestfs-env.sh - set up libguestfs on a host without a kernel in /boot (source it).
#
#   . tests/guestfix/guestfs-env.sh && guestfs_env_setup || exit 77
#
# supermin builds the appliance from the host's kernel; these machines have none in /boot.
# We fetch Debian's linux-image-cloud-amd64 with `apt-get download` into a cache directory
# ($GUESTFIX_KERNEL_CACHE, default /var/cache/velo-guestfs-kernel), extract it with dpkg -x,
# run depmod, and export SUPERMIN_KERNEL, SUPERMIN_MODULES and SUPERMIN_KERNEL_VERSION.
# It also exports LIBGUESTFS_BACKEND=direct and LIBGUESTFS_BACKEND_SETTINGS=force_tcg (KVM is
# unusable here, see shared notes), unless already set.  A host that has a kernel in /boot
# keeps its own unless GUESTFIX_FORCE_KERNEL=1.
# Returns 0 on success, 1 (with a message) on failure.

guestfs_env_setup() {
    export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
    export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
    if [ -n "${SUPERMIN_KERNEL:-}" ]; then
        return 0
    fi
    if ls /boot/vmlinuz-* >/dev/null 2>&1 && [ "${GUESTFIX_FORCE_KERNEL:-0}" != 1 ]; then
        return 0
    fi
    local cache=${GUESTFIX_KERNEL_CACHE:-/var/cache/velo-guestfs-kernel}
    local root=$cache/root kver deb
    if [ ! -f "$cache/complete" ]; then
        command -v apt-get >/dev/null || { echo "guestfs-env: no apt-get to fetch a kernel" >&2; return 1; }
        rm -rf "$cache" && mkdir -p "$cache/debs" || return 1
        # The meta package names the real image package; fetch both.
        local pkg
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
              awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
        if [ -z "$pkg" ]; then
            echo "guestfs-env: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2
            return 1
        fi
        (cd "$cache/debs" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
            { echo "guestfs-env: apt-get download $pkg failed" >&2; return 1; }
        for deb in "$cache"/debs/*.deb; do
            dpkg -x "$deb" "$root" || return 1
        done
        rm -rf "$cache/debs"
        kver=$(ls "$root/lib/modules" | head -n1)
        [ -n "$kver" ] && [ -f "$root/boot/vmlinuz-$kver" ] ||
            { echo "guestfs-env: no kernel in $pkg" >&2; return 1; }
        depmod -b "$root" "$kver" || return 1
        echo "$kver" > "$cache/complete"
    fi
    kver=$(cat "$cache/complete")
    mkdir -p /lib/modules
    export SUPERMIN_KERNEL=$root/boot/vmlinuz-$kver
    export SUPERMIN_MODULES=$root/lib/modules/$kver
    export SUPERMIN_KERNEL_VERSION=$kver
    return 0
}
