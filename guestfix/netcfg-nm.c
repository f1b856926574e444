/* netcfg-nm.c - NetworkManager keyfile editor (/etc/NetworkManager/system-connections).
 *
 * Existing connections keep serving the old platform; their mac-address= pins are commented
 * out.  A new connection bound to the cloud NIC is written: DHCP, or the old static address. */
#include "guestfix.h"

#include <string.h>

bool
gf_nm_find_static (const char *text, GfIpConf *out)
{
  memset (out, 0, sizeof *out);
  g_autofree char *method = gf_kv_get (text, "[ipv4]", "method");
  if (method == NULL || strcmp (method, "manual") != 0)
    return false;
  /* address1=192.0.2.10/24,192.0.2.1 (or the older addresses=); gateway= may be separate. */
  g_autofree char *a = gf_kv_get (text, "[ipv4]", "address1");
  if (a == NULL)
    a = gf_kv_get (text, "[ipv4]", "addresses");
  if (a == NULL)
    return false;
  a[strcspn (a, ";")] = '\0';
  char *comma = strchr (a, ',');
  if (comma)
    *comma = '\0';
  if (!strchr (a, '/'))
    return false;
  if (comma && comma[1])
    out->gateway = g_strdup (comma + 1);
  out->address = g_strdup (a);
  if (!out->gateway)
    out->gateway = gf_kv_get (text, "[ipv4]", "gateway");
  g_autofree char *dns = gf_kv_get (text, "[ipv4]", "dns");
  if (dns && *dns) {
    g_strdelimit (dns, ";,", ' ');
    out->dns = g_strdup (g_strstrip (dns));
  }
  out->iface = gf_kv_get (text, "[connection]", "interface-name");
  return true;
}

char *
gf_nm_neutralize (const char *name, const char *text, bool *changed, GError **err)
{
  static const char *const keys[] = { "mac-address", NULL };
  return gf_kv_comment_out (text, keys, "pins the old MAC", changed);
}

char *
gf_nm_cloud_keyfile (const GfIpConf *keep)
{
  g_autoptr (GString) s = g_string_new (
    "# Added by guestfix: the cloud NIC.  Other connections still serve the old platform.\n"
    "[connection]\n"
    "id=guestfix-cloud\n"
    "uuid=2f1c0a6e-5c7b-4f0e-8d1a-9e3b6c2d4f10\n"
    "type=ethernet\n"
    "interface-name=" GF_CLOUD_NIC "\n"
    "\n[ethernet]\n\n[ipv4]\n");
  if (keep == NULL)
    g_string_append (s, "method=auto\n");
  else {
    g_string_append_printf (s, "method=manual\naddress1=%s%s%s\n", keep->address,
                            keep->gateway ? "," : "", keep->gateway ? keep->gateway : "");
    if (keep->dns) {
      g_auto (GStrv) d = g_strsplit (keep->dns, " ", -1);
      g_autofree char *list = g_strjoinv (";", d);
      g_string_append_printf (s, "dns=%s;\n", list);
    }
  }
  g_string_append (s, "\n[ipv6]\nmethod=auto\n");
  return g_string_free (g_steal_pointer (&s), FALSE);
}
