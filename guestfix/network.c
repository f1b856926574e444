/* network.c - the cloud NIC: named eth0 by a systemd .link file that matches only virtio NICs,
 * configured by DHCP (or, with --keep-ip, with the old NIC's static address) in whichever
 * formats the guest uses: ifupdown, netplan, NetworkManager keyfiles, ifcfg.  The old NIC's
 * configuration stays (it still serves on the old platform); MAC pins are neutralized. */
#include "guestfix.h"

#include <string.h>
#include <guestfs.h>

typedef bool (*find_fn) (const char *, GfIpConf *);
typedef char *(*neutralize_fn) (const char *, const char *, bool *, GError **);

/* Read PATH (NULL if missing, *ok=false on error). */
static char *
read_opt (GfCtx *c, const char *path, bool *ok, GError **err)
{
  bool missing;
  char *t = gf_read (c, path, GF_MAX_CONFIG_SIZE, &missing, err);
  *ok = t != NULL || missing;
  return t;
}

/* Write PATH with CONTENT if it differs (MODE applied to a new file, 0 for the default). */
static bool
ensure_file (GfCtx *c, const char *path, const char *content, int mode, const char *why,
             GError **err)
{
  bool ok;
  g_autofree char *have = read_opt (c, path, &ok, err);
  if (!ok)
    return false;
  if (have && strcmp (have, content) == 0)
    return true;
  if (!gf_write (c, path, content, strlen (content), why, err))
    return false;
  if (mode && !have && !c->dry_run && guestfs_chmod (c->g, mode, path) == -1) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "chmod %s: %s", path, guestfs_last_error (c->g));
    return false;
  }
  return true;
}

/* Files matching PATTERN in the guest (sorted), never NULL. */
static char **
glob (GfCtx *c, const char *pattern)
{
  guestfs_push_error_handler (c->g, NULL, NULL);
  char **r = guestfs_glob_expand (c->g, pattern);
  guestfs_pop_error_handler (c->g);
  return r ? r : g_new0 (char *, 1);
}

/* For each file: take the static config (first found) and neutralize MAC pins. */
static bool
scan_files (GfCtx *c, char **files, find_fn find, neutralize_fn neutralize, GfIpConf *keep,
            GError **err)
{
  for (size_t i = 0; files[i]; i++) {
    bool ok, changed;
    g_autofree char *text = read_opt (c, files[i], &ok, err);
    if (!ok)
      return false;
    if (text == NULL)
      continue;
    if (keep && !keep->address)
      find (text, keep);
    if (neutralize == NULL)
      continue;
    g_autofree char *nt = neutralize (files[i], text, &changed, err);
    if (nt == NULL)
      return false;
    if (changed && !gf_write (c, files[i], nt, strlen (nt), "neutralize the old MAC pin", err))
      return false;
  }
  return true;
}

static char *
netplan_neutralize (const char *name, const char *text, bool *changed, GError **err)
{
  return gf_netplan_edit (name, text, NULL, false, changed, err);
}

/* Configure the cloud NIC (DHCP, or KEEP) in each format in use. */
static bool
configure_cloud_nic (GfCtx *c, const GfIpConf *keep, bool has_netplan, bool has_ifcfg1,
                     bool has_ifcfg2, GError **err)
{
  const char *why = keep ? "the cloud NIC keeps the old static address"
                         : "the cloud NIC gets DHCP";
  const char *ifupdown = "/etc/network/interfaces";
  bool any = false, ok;

  if (guestfs_is_dir (c->g, "/etc/systemd") > 0) {
    g_autofree char *link = gf_cloud_nic_link_file ();
    if (!ensure_file (c, "/etc/systemd/network/10-guestfix-cloud-nic.link", link, 0,
                      "name the cloud (virtio) NIC " GF_CLOUD_NIC, err))
      return false;
  } else
    gf_warning (c, "no systemd: the cloud NIC is assumed to be named " GF_CLOUD_NIC);

  g_autofree char *ifup = read_opt (c, ifupdown, &ok, err);
  if (!ok)
    return false;
  if (ifup) {
    bool changed;
    any = true;
    g_autofree char *nt = gf_ifupdown_edit (ifupdown, ifup, keep, &changed, err);
    if (nt == NULL || (changed && !gf_write (c, ifupdown, nt, strlen (nt), why, err)))
      return false;
  }
  if (has_netplan) {
    bool changed;
    any = true;
    g_autofree char *nt = gf_netplan_edit ("guestfix", "network:\n  version: 2\n", keep, true,
                                           &changed, err);
    if (nt == NULL || !ensure_file (c, "/etc/netplan/90-guestfix-cloud.yaml", nt, 0600, why, err))
      return false;
  }
  if (guestfs_is_dir (c->g, "/etc/NetworkManager/system-connections") > 0) {
    any = true;
    g_autofree char *kf = gf_nm_cloud_keyfile (keep);
    if (!ensure_file (c, "/etc/NetworkManager/system-connections/guestfix-cloud.nmconnection",
                      kf, 0600, why, err))
      return false;
  }
  const char *ifcfg_dirs[] = { has_ifcfg1 ? "/etc/sysconfig/network-scripts" : NULL,
                               has_ifcfg2 ? "/etc/sysconfig/network" : NULL };
  for (size_t i = 0; i < G_N_ELEMENTS (ifcfg_dirs); i++) {
    if (!ifcfg_dirs[i])
      continue;
    any = true;
    g_autofree char *path = g_strconcat (ifcfg_dirs[i], "/ifcfg-" GF_CLOUD_NIC, NULL);
    g_autofree char *f = gf_ifcfg_cloud_file (keep);
    if (!gf_exists (c, path) && !ensure_file (c, path, f, 0, why, err))
      return false;
  }
  if (!any)
    gf_warning (c, "no known network configuration (ifupdown, netplan, NetworkManager, ifcfg)");
  return true;
}

bool
gf_network_adapt (GfCtx *c, GError **err)
{
  GfIpConf found = { 0 };
  GfIpConf *keep = c->keep_ip ? &found : NULL;

  /* The static configuration to keep, if asked; MAC pins neutralized everywhere. */
  g_auto (GStrv) netplan = glob (c, "/etc/netplan/*.yaml");
  g_auto (GStrv) nm = glob (c, "/etc/NetworkManager/system-connections/*");
  g_auto (GStrv) ifcfg1 = glob (c, "/etc/sysconfig/network-scripts/ifcfg-*");
  g_auto (GStrv) ifcfg2 = glob (c, "/etc/sysconfig/network/ifcfg-*");
  g_auto (GStrv) udev = glob (c, "/etc/udev/rules.d/*persistent-net*.rules");
  char *ifupdown[] = { (char *) "/etc/network/interfaces", NULL };
  bool ok = scan_files (c, ifupdown, gf_ifupdown_find_static, NULL, keep, err) &&
            scan_files (c, netplan, gf_netplan_find_static, netplan_neutralize, keep, err) &&
            scan_files (c, nm, gf_nm_find_static, gf_nm_neutralize, keep, err) &&
            scan_files (c, ifcfg1, gf_ifcfg_find_static, gf_ifcfg_neutralize, keep, err) &&
            scan_files (c, ifcfg2, gf_ifcfg_find_static, gf_ifcfg_neutralize, keep, err) &&
            scan_files (c, udev, NULL, gf_udev_rules_neutralize, NULL, err);
  if (ok && keep && !keep->address) {
    gf_warning (c, "--keep-ip: no static IPv4 address found; the cloud NIC gets DHCP");
    keep = NULL;
  } else if (ok && keep)
    gf_report (c, "note", keep->iface ? keep->iface : "", "--keep-ip: %s gateway %s",
               keep->address, keep->gateway ? keep->gateway : "none");
  ok = ok && configure_cloud_nic (c, keep, netplan[0] != NULL, ifcfg1[0] != NULL,
                                  ifcfg2[0] != NULL, err);
  gf_ipconf_clear (&found);
  return ok;
}
