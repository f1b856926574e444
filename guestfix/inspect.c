/* inspect.c - libguestfs inspection: find the one guest OS, mount it, map device names. */
#include "guestfix.h"

#include <string.h>
#include <guestfs.h>

static int
by_length (const void *a, const void *b)
{
  const char *const *x = a, *const *y = b;
  return (int) strlen (x[0]) - (int) strlen (y[0]);
}

bool
gf_inspect_and_mount (GfCtx *c, bool readonly, GError **err)
{
  g_auto (GStrv) roots = guestfs_inspect_os (c->g);
  if (roots == NULL) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "inspection: %s", guestfs_last_error (c->g));
    return false;
  }
  guint n = g_strv_length (roots);
  if (n != 1) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED,
                 n == 0 ? "no operating system found on the disk(s)"
                        : "%u operating systems found; guestfix handles one", n);
    return false;
  }
  c->root = g_strdup (roots[0]);
  c->type = guestfs_inspect_get_type (c->g, c->root);
  c->distro = guestfs_inspect_get_distro (c->g, c->root);
  if (c->type == NULL || c->distro == NULL) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "inspection: %s", guestfs_last_error (c->g));
    return false;
  }

  /* Mount shortest mount point first ("/" before "/boot"). */
  g_auto (GStrv) mps = guestfs_inspect_get_mountpoints (c->g, c->root);
  if (mps == NULL) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "inspection: %s", guestfs_last_error (c->g));
    return false;
  }
  size_t pairs = g_strv_length (mps) / 2;
  qsort (mps, pairs, 2 * sizeof (char *), by_length);
  for (size_t i = 0; i < pairs; i++) {
    const char *mp = mps[2 * i], *dev = mps[2 * i + 1];
    int r = readonly ? guestfs_mount_ro (c->g, dev, mp) : guestfs_mount (c->g, dev, mp);
    if (r == -1) {
      if (strcmp (mp, "/") == 0) {
        g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "mount %s: %s", dev,
                     guestfs_last_error (c->g));
        return false;
      }
      gf_warning (c, "could not mount %s on %s; continuing without it", dev, mp);
    }
  }
  return true;
}

/* Guest kernels name the same disk sdX, hdX, vdX or xvdX depending on the controller. */
static const char *const disk_prefixes[] = { "/dev/sd", "/dev/hd", "/dev/vd", "/dev/xvd", NULL };

bool
gf_build_devmap (GfCtx *c, GError **err)
{
  if (c->devmap_built)
    return true;
  /* Partitions, and whole disks without partitions: LVM, md and mapper names are stable
   * already.  (Cheaper than guestfs_list_filesystems, which probes every block device.) */
  g_auto (GStrv) parts = guestfs_list_partitions (c->g);
  g_auto (GStrv) disks = guestfs_list_devices (c->g);
  if (parts == NULL || disks == NULL) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "list devices: %s", guestfs_last_error (c->g));
    return false;
  }
  g_autoptr (GPtrArray) devs = g_ptr_array_new ();
  for (size_t i = 0; parts[i]; i++)
    g_ptr_array_add (devs, parts[i]);
  for (size_t i = 0; disks[i]; i++) {
    bool partitioned = false;
    for (size_t k = 0; parts[k] && !partitioned; k++)
      partitioned = g_str_has_prefix (parts[k], disks[i]);
    if (!partitioned)
      g_ptr_array_add (devs, disks[i]);
  }
  for (guint i = 0; i < devs->len; i++) {
    const char *dev = devs->pdata[i];
    if (!g_str_has_prefix (dev, "/dev/sd"))
      continue;
    guestfs_push_error_handler (c->g, NULL, NULL);
    g_autofree char *uuid = guestfs_vfs_uuid (c->g, dev);
    g_autofree char *label = uuid && *uuid ? NULL : guestfs_vfs_label (c->g, dev);
    guestfs_pop_error_handler (c->g);
    g_autofree char *spec = uuid && *uuid ? g_strconcat ("UUID=", uuid, NULL)
                          : label && *label ? g_strconcat ("LABEL=", label, NULL) : NULL;
    if (spec == NULL)
      continue;
    for (size_t k = 0; disk_prefixes[k] != NULL; k++) {
      g_autofree char *name = g_strconcat (disk_prefixes[k], dev + strlen ("/dev/sd"), NULL);
      gf_devmap_add (&c->devmap, name, spec);
    }
  }
  c->devmap_built = true;
  return true;
}
