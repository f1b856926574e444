/* hvtools.c - old-platform hypervisor tools stop running off that platform.
 *
 * Instead of removing packages (which could not be undone and would break the disk on the old
 * platform), each tool's systemd unit gets a drop-in with ConditionVirtualization=, so it still
 * runs on its own hypervisor and is skipped in a KVM cloud. */
#include "guestfix.h"

#include <string.h>
#include <guestfs.h>

/* Units of hypervisor tools and the platform each belongs to. */
static const struct {
  const char *unit;
  const char *virt;     /* systemd ConditionVirtualization= value */
} units[] = {
  { "open-vm-tools.service", "vmware" },
  { "vmtoolsd.service", "vmware" },
  { "vgauth.service", "vmware" },
  { "vmware-tools.service", "vmware" },
  { "vmware-tools-thinprint.service", "vmware" },
  { "run-vmblock\\x2dfuse.mount", "vmware" },
  { "hv-kvp-daemon.service", "microsoft" },
  { "hv-vss-daemon.service", "microsoft" },
  { "hv-fcopy-daemon.service", "microsoft" },
};

/* /usr/lib first: on merged-/usr systems /lib is a symlink, which gf_read refuses. */
static const char *const unit_dirs[] = {
  "/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system", NULL,
};

/* The unit file of UNIT (not an alias symlink), "" for a SysV script systemd turns into a unit,
 * or NULL if not installed. */
static char *
unit_file (GfCtx *c, const char *unit)
{
  for (size_t i = 0; unit_dirs[i]; i++) {
    g_autofree char *p = g_strconcat (unit_dirs[i], "/", unit, NULL);
    if (gf_exists (c, p) && guestfs_is_symlink (c->g, p) == 0)
      return g_steal_pointer (&p);
  }
  if (g_str_has_suffix (unit, ".service")) {
    g_autofree char *base = g_strndup (unit, strlen (unit) - strlen (".service"));
    g_autofree char *p = g_strconcat ("/etc/init.d/", base, NULL);
    if (gf_exists (c, p))
      return g_strdup ("");
  }
  return NULL;
}

bool
gf_hvtools_adapt (GfCtx *c, GError **err)
{
  bool systemd = gf_exists (c, "/lib/systemd/systemd") || gf_exists (c, "/usr/lib/systemd/systemd");
  for (size_t i = 0; i < G_N_ELEMENTS (units); i++) {
    g_autofree char *file = unit_file (c, units[i].unit);
    if (file == NULL)
      continue;
    if (!systemd) {
      gf_warning (c, "%s: no systemd, so it is left as it is", units[i].unit);
      continue;
    }
    g_autofree char *cond = g_strconcat ("ConditionVirtualization=", units[i].virt, NULL);
    if (*file) {
      bool missing;
      g_autofree char *text = gf_read (c, file, GF_MAX_CONFIG_SIZE, &missing, err);
      if (text == NULL && !missing)
        return false;
      if (text && strstr (text, cond)) {
        gf_report (c, "note", file, "already runs only on %s", units[i].virt);
        continue;
      }
    }
    g_autofree char *path = g_strdup_printf ("/etc/systemd/system/%s.d/90-guestfix.conf",
                                             units[i].unit);
    g_autofree char *want = g_strdup_printf (
      "# Added by guestfix: run only on %s, so the same disk works there and in a KVM cloud.\n"
      "[Unit]\nConditionVirtualization=%s\n", units[i].virt, units[i].virt);
    bool missing;
    g_autofree char *have = gf_read (c, path, GF_MAX_CONFIG_SIZE, &missing, err);
    if (have == NULL && !missing)
      return false;
    if (have && strcmp (have, want) == 0)
      continue;
    g_autofree char *why = g_strdup_printf ("%s runs only on %s", units[i].unit, units[i].virt);
    if (!gf_write (c, path, want, strlen (want), why, err))
      return false;
  }
  return true;
}
