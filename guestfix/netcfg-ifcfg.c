/* netcfg-ifcfg.c - ifcfg editor: RHEL/CentOS/Fedora network-scripts and SUSE sysconfig.
 *
 * The old ifcfg file keeps serving the old platform; its HWADDR=/MACADDR= pins are commented
 * out.  ifcfg-eth0 is written for the cloud NIC: DHCP, or the old static address. */
#include "guestfix.h"

#include <stdlib.h>
#include <string.h>

bool
gf_ifcfg_find_static (const char *text, GfIpConf *out)
{
  memset (out, 0, sizeof *out);
  g_autofree char *proto = gf_kv_get (text, NULL, "BOOTPROTO");
  g_autofree char *ip = gf_kv_get (text, NULL, "IPADDR");
  if (ip == NULL || (proto && strcmp (proto, "none") != 0 && strcmp (proto, "static") != 0))
    return false;
  g_autofree char *prefix = gf_kv_get (text, NULL, "PREFIX");
  g_autofree char *mask = gf_kv_get (text, NULL, "NETMASK");
  int pfx = prefix ? atoi (prefix) : mask ? gf_netmask_to_prefix (mask) : -1;
  if (strchr (ip, '/'))          /* SUSE: IPADDR=192.0.2.10/24 */
    out->address = g_strdup (ip);
  else
    out->address = g_strdup_printf ("%s/%d", ip, pfx < 0 || pfx > 32 ? 24 : pfx);
  out->gateway = gf_kv_get (text, NULL, "GATEWAY");
  g_autofree char *d1 = gf_kv_get (text, NULL, "DNS1");
  g_autofree char *d2 = gf_kv_get (text, NULL, "DNS2");
  if (d1)
    out->dns = d2 ? g_strconcat (d1, " ", d2, NULL) : g_strdup (d1);
  out->iface = gf_kv_get (text, NULL, "DEVICE");
  if (out->iface == NULL)
    out->iface = gf_kv_get (text, NULL, "NAME");
  return true;
}

char *
gf_ifcfg_neutralize (const char *name, const char *text, bool *changed, GError **err)
{
  static const char *const keys[] = { "HWADDR", "MACADDR", NULL };
  return gf_kv_comment_out (text, keys, "pins the old MAC", changed);
}

char *
gf_ifcfg_cloud_file (const GfIpConf *keep)
{
  g_autoptr (GString) s = g_string_new (
    "# Added by guestfix: the cloud NIC.  The other ifcfg files still serve the old platform.\n"
    "DEVICE=" GF_CLOUD_NIC "\nNAME=" GF_CLOUD_NIC "\nTYPE=Ethernet\nONBOOT=yes\nSTARTMODE=auto\n");
  if (keep == NULL)
    g_string_append (s, "BOOTPROTO=dhcp\n");
  else {
    g_auto (GStrv) parts = g_strsplit (keep->address, "/", 2);
    g_string_append_printf (s, "BOOTPROTO=none\nIPADDR=%s\nPREFIX=%s\n", parts[0],
                            parts[1] ? parts[1] : "24");
    if (keep->gateway)
      g_string_append_printf (s, "GATEWAY=%s\n", keep->gateway);
    if (keep->dns) {
      g_auto (GStrv) d = g_strsplit (keep->dns, " ", -1);
      for (size_t i = 0; d[i] && i < 3; i++)
        g_string_append_printf (s, "DNS%zu=%s\n", i + 1, d[i]);
    }
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}
