/* linux.c - the Linux adaptation, in order: fstab, hypervisor tools, network, initramfs,
 * bootloader.  The network step comes before the initramfs so files it adds can be picked up
 * by the rebuild. */
#include "guestfix.h"

#include <string.h>

static bool
fstab_adapt (GfCtx *c, const GfDevMap *map, GError **err)
{
  bool missing, changed;
  g_autofree char *text = gf_read (c, "/etc/fstab", GF_MAX_CONFIG_SIZE, &missing, err);
  if (text == NULL) {
    if (!missing)
      return false;
    gf_warning (c, "/etc/fstab: missing; nothing to move to UUIDs");
    return true;
  }
  g_autofree char *nt = gf_fstab_edit ("/etc/fstab", text, map, &changed, err);
  if (nt == NULL)
    return false;
  return !changed || gf_write (c, "/etc/fstab", nt, strlen (nt),
                               "device names to UUID=/LABEL= (stable on any controller)", err);
}

bool
gf_linux_adapt (GfCtx *c, GError **err)
{
  return gf_build_devmap (c, err) &&
         fstab_adapt (c, &c->devmap, err) &&
         gf_hvtools_adapt (c, err) &&
         gf_network_adapt (c, err) &&
         gf_initramfs_adapt (c, err) &&
         gf_bootloader_adapt (c, &c->devmap, err);
}
