/* netcfg-netplan.c - netplan YAML editor (/etc/netplan/ *.yaml), on the indentation-based
 * subset of YAML that netplan files use (block mappings, flow lists "[a, b]", "- x" items).
 *
 * The cloud NIC is added under network: ethernets: (DHCP, or the old static address with
 * --keep-ip); match: macaddress: and set-name: pins are commented out. */
#include "guestfix.h"

#include <string.h>

/* Indentation of LINE in spaces, or -1 (with a parse error) if it contains a tab. */
static int
indent_of (const char *name, size_t lineno, const char *line, GError **err)
{
  size_t n = strspn (line, " \t");
  if (memchr (line, '\t', n)) {
    gf_parse_error (err, name, lineno, "tab in indentation (YAML forbids it)");
    return -1;
  }
  return (int) n;
}

/* The key of "key: value" / "key:" at the start of P, newly allocated, or NULL. */
static char *
key_of (const char *p)
{
  if (*p == '-' || *p == '#')
    return NULL;
  const char *c = strchr (p, ':');
  if (c == NULL || (c[1] != '\0' && c[1] != ' '))
    return NULL;
  return g_strstrip (g_strndup (p, c - p));
}

/* The value after "key:", stripped, without a trailing comment. */
static char *
value_of (const char *p)
{
  const char *c = strchr (p, ':');
  g_autofree char *v = g_strdup (c ? c + 1 : "");
  char *hash = strstr (v, " #");
  if (hash)
    *hash = '\0';
  return g_strdup (g_strstrip (v));
}

/* First element of a flow list "[a, b]" or a plain scalar, newly allocated; NULL if empty. */
static char *
first_of (const char *v)
{
  g_autofree char *s = g_strdup (v);
  char *p = s;
  if (*p == '[')
    p++;
  p[strcspn (p, ",]")] = '\0';
  g_strstrip (p);
  if (*p == '"' || *p == '\'') {
    p++;
    p[strcspn (p, "\"'")] = '\0';
  }
  return *p ? g_strdup (p) : NULL;
}

/* Structure found by scan(). */
typedef struct {
  ssize_t network, ethernets;   /* line indexes, -1 if absent */
  int eth_indent, child_indent; /* indentation of "ethernets:" and of its first child */
  bool has_cloud;
} layout;

static bool
scan (const char *name, char **lines, layout *L, GError **err)
{
  *L = (layout) { .network = -1, .ethernets = -1, .child_indent = -1 };
  for (size_t i = 0; lines[i] != NULL; i++) {
    if (gf_is_blank_or_comment (lines[i], "#"))
      continue;
    int ind = indent_of (name, i + 1, lines[i], err);
    if (ind < 0)
      return false;
    g_autofree char *key = key_of (lines[i] + ind);
    if (ind == 0) {
      if (key && strcmp (key, "network") == 0)
        L->network = i;
      continue;
    }
    if (L->network < 0)
      continue;
    if (L->ethernets < 0 || ind <= L->eth_indent) {
      if (key && strcmp (key, "ethernets") == 0 && L->ethernets < 0) {
        L->ethernets = i;
        L->eth_indent = ind;
      }
      continue;
    }
    if (L->child_indent < 0)
      L->child_indent = ind;
    if (ind == L->child_indent && key && strcmp (key, GF_CLOUD_NIC) == 0)
      L->has_cloud = true;
  }
  if (L->network < 0) {
    g_set_error (err, GF_ERROR, GF_ERROR_PARSE, "%s: no top-level 'network:' key", name);
    return false;
  }
  return true;
}

bool
gf_netplan_find_static (const char *text, GfIpConf *out)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  layout L;
  memset (out, 0, sizeof *out);
  if (!scan ("netplan", lines, &L, NULL) || L.ethernets < 0)
    return false;
  g_autofree char *iface = NULL;
  bool in_addresses = false, in_dns = false;
  for (size_t i = L.ethernets + 1; lines[i] != NULL; i++) {
    if (gf_is_blank_or_comment (lines[i], "#"))
      continue;
    int ind = strspn (lines[i], " ");
    const char *p = lines[i] + ind;
    if (ind <= L.eth_indent)
      break;
    g_autofree char *key = key_of (p);
    if (ind == L.child_indent) {
      if (out->address)
        break;                  /* done with the first static NIC */
      g_free (iface);
      iface = key ? g_strdup (key) : NULL;
      in_addresses = in_dns = false;
      continue;
    }
    if (key) {
      g_autofree char *v = value_of (p);
      in_addresses = strcmp (key, "addresses") == 0 && *v == '\0';
      if (strcmp (key, "addresses") == 0 && *v) {
        if (in_dns && !out->dns)
          out->dns = first_of (v);
        else if (!in_dns && !out->address)
          out->address = first_of (v);
      }
      if (strcmp (key, "nameservers") == 0)
        in_dns = true;
      if ((strcmp (key, "gateway4") == 0 || strcmp (key, "via") == 0) && !out->gateway && *v)
        out->gateway = first_of (v);
    } else if (*p == '-' && in_addresses && !out->address) {
      g_autofree char *item = g_strdup (p + 1);
      out->address = first_of (g_strstrip (item));
    } else if (*p == '-') {
      g_autofree char *item = g_strdup (p + 1);
      g_autofree char *k2 = key_of (g_strstrip (item));
      g_autofree char *v2 = value_of (item);
      if (k2 && strcmp (k2, "via") == 0 && !out->gateway)
        out->gateway = first_of (v2);
    }
  }
  if (!out->address || !strchr (out->address, '/')) {
    gf_ipconf_clear (out);
    return false;
  }
  out->iface = g_steal_pointer (&iface);
  return true;
}

char *
gf_netplan_edit (const char *name, const char *text, const GfIpConf *keep,
                 bool add_cloud, bool *changed, GError **err)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  layout L;
  *changed = false;
  if (!scan (name, lines, &L, err))
    return NULL;

  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  bool under_match = false;
  int match_indent = -1;
  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];
    int ind = strspn (line, " ");
    const char *p = line + ind;
    g_autofree char *key = gf_is_blank_or_comment (line, "#") ? NULL : key_of (p);
    if (key && under_match && ind <= match_indent)
      under_match = false;
    if (key && strcmp (key, "match") == 0) {
      under_match = true;
      match_indent = ind;
    }
    if (key && ((under_match && ind > match_indent && strcmp (key, "macaddress") == 0) ||
                strcmp (key, "set-name") == 0)) {
      g_ptr_array_add (out, g_strdup_printf ("%*s# disabled by guestfix (pins the old NIC): %s",
                                             ind, "", p));
      *changed = true;
      continue;
    }
    gf_push (out, line);
    if (L.has_cloud || !add_cloud)
      continue;
    /* Insert the cloud NIC right after "ethernets:" (or a new ethernets: after "network:"). */
    int ci;
    if ((ssize_t) i == L.ethernets)
      ci = L.child_indent > L.eth_indent ? L.child_indent : L.eth_indent + 2;
    else if ((ssize_t) i == L.network && L.ethernets < 0) {
      gf_push (out, "  ethernets:");
      ci = 4;
    } else
      continue;
    g_ptr_array_add (out, g_strdup_printf ("%*s%s:   # added by guestfix: the cloud NIC", ci, "",
                                           GF_CLOUD_NIC));
    if (keep == NULL)
      g_ptr_array_add (out, g_strdup_printf ("%*sdhcp4: true", ci + 2, ""));
    else {
      g_ptr_array_add (out, g_strdup_printf ("%*saddresses: [%s]", ci + 2, "", keep->address));
      if (keep->gateway) {
        g_ptr_array_add (out, g_strdup_printf ("%*sroutes:", ci + 2, ""));
        g_ptr_array_add (out, g_strdup_printf ("%*s- to: default", ci + 4, ""));
        g_ptr_array_add (out, g_strdup_printf ("%*svia: %s", ci + 6, "", keep->gateway));
      }
      if (keep->dns) {
        g_auto (GStrv) d = g_strsplit (keep->dns, " ", -1);
        g_autofree char *list = g_strjoinv (", ", d);
        g_ptr_array_add (out, g_strdup_printf ("%*snameservers:", ci + 2, ""));
        g_ptr_array_add (out, g_strdup_printf ("%*saddresses: [%s]", ci + 4, "", list));
      }
    }
    *changed = true;
  }
  g_ptr_array_add (out, NULL);
  return gf_unlines ((char **) out->pdata, final_nl);
}
