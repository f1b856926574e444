/* editutil.c - helpers shared by the pure config-file editors: lines, errors, device maps. */
#include "guestfix.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

G_DEFINE_QUARK (guestfix-error-quark, gf_error)

char **
gf_lines (const char *text, bool *final_nl)
{
  size_t len = strlen (text);
  *final_nl = len > 0 && text[len - 1] == '\n';
  if (len == 0)
    return g_new0 (char *, 1);
  g_autofree char *copy = g_strndup (text, *final_nl ? len - 1 : len);
  return g_strsplit (copy, "\n", -1);
}

char *
gf_unlines (char **lines, bool final_nl)
{
  g_autofree char *joined = g_strjoinv ("\n", lines);
  if (final_nl && lines[0] != NULL)
    return g_strconcat (joined, "\n", NULL);
  return g_steal_pointer (&joined);
}

void
gf_push (GPtrArray *arr, const char *line)
{
  g_ptr_array_add (arr, g_strdup (line));
}

char *
gf_indent_of (const char *line)
{
  size_t n = strspn (line, " \t");
  return g_strndup (line, n);
}

bool
gf_is_blank_or_comment (const char *line, const char *comment_chars)
{
  const char *p = line + strspn (line, " \t\r");
  return *p == '\0' || strchr (comment_chars, *p) != NULL;
}

void
gf_parse_error (GError **err, const char *name, size_t lineno, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (err, GF_ERROR, GF_ERROR_PARSE, "%s:%zu: %s", name, lineno, msg);
}

int
gf_netmask_to_prefix (const char *mask)
{
  unsigned a, b, c, d;
  char extra;
  if (sscanf (mask, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 4 ||
      a > 255 || b > 255 || c > 255 || d > 255)
    return -1;
  guint32 m = (a << 24) | (b << 16) | (c << 8) | d;
  int prefix = 0;
  while (prefix < 32 && (m & (0x80000000u >> prefix)))
    prefix++;
  if (prefix < 32 && (m << prefix) != 0)
    return -1;
  return prefix;
}

bool
gf_check_text (const char *name, const char *text, size_t len, GError **err)
{
  if (memchr (text, '\0', len) != NULL) {
    g_set_error (err, GF_ERROR, GF_ERROR_PARSE, "%s: contains NUL bytes: not a text file", name);
    return false;
  }
  return true;
}

const char *
gf_devmap_lookup (const GfDevMap *map, const char *dev)
{
  for (size_t i = 0; i < map->n; i++)
    if (strcmp (map->e[i].dev, dev) == 0)
      return map->e[i].spec;
  return NULL;
}

void
gf_devmap_add (GfDevMap *map, const char *dev, const char *spec)
{
  map->e = g_renew (GfDevMapEntry, map->e, map->n + 1);
  map->e[map->n].dev = g_strdup (dev);
  map->e[map->n].spec = g_strdup (spec);
  map->n++;
}

void
gf_devmap_clear (GfDevMap *map)
{
  for (size_t i = 0; i < map->n; i++) {
    g_free (map->e[i].dev);
    g_free (map->e[i].spec);
  }
  g_free (map->e);
  map->e = NULL;
  map->n = 0;
}

void
gf_ipconf_clear (GfIpConf *c)
{
  g_clear_pointer (&c->iface, g_free);
  g_clear_pointer (&c->address, g_free);
  g_clear_pointer (&c->gateway, g_free);
  g_clear_pointer (&c->dns, g_free);
}

char *
gf_cloud_nic_link_file (void)
{
  return g_strdup (
    "# Added by guestfix: name the cloud (virtio) NIC " GF_CLOUD_NIC ".\n"
    "# Only virtio NICs match, so on the old platform this file does nothing.\n"
    "[Match]\n"
    "Driver=virtio_net\n"
    "\n"
    "[Link]\n"
    "NamePolicy=\n"
    "Name=" GF_CLOUD_NIC "\n");
}

char *
gf_kv_get (const char *text, const char *section, const char *key)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  bool in_section = section == NULL;
  size_t klen = strlen (key);

  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *p = lines[i] + strspn (lines[i], " \t");
    if (*p == '[') {
      in_section = section && g_str_has_prefix (p, section);
      continue;
    }
    if (!in_section || strncmp (p, key, klen) != 0 || p[klen] != '=')
      continue;
    g_autofree char *v = g_strstrip (g_strdup (p + klen + 1));
    size_t n = strlen (v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
      return g_strndup (v + 1, n - 2);
    return g_steal_pointer (&v);
  }
  return NULL;
}

char *
gf_kv_comment_out (const char *text, const char *const *keys, const char *why, bool *changed)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  *changed = false;

  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *p = lines[i] + strspn (lines[i], " \t");
    const char *eq = strchr (p, '=');
    if (eq == NULL || *p == '#')
      continue;
    g_autofree char *k = g_strstrip (g_strndup (p, eq - p));
    if (!g_strv_contains (keys, k))
      continue;
    char *nl = g_strdup_printf ("# disabled by guestfix (%s): %s", why, lines[i]);
    g_free (lines[i]);
    lines[i] = nl;
    *changed = true;
  }
  return gf_unlines (lines, final_nl);
}
