/* manifest.c - the manifest of changes kept inside the guest: in-memory form, text format and
 * parser (pure; the guest side is in guestio.c).
 *
 *   guestfix-manifest 1
 *   modified<TAB>/etc/fstab<TAB>originals/0001
 *   created<TAB>/etc/systemd/network/10-guestfix-cloud-nic.link<TAB>-
 *   mkdir<TAB>/etc/systemd/system/open-vm-tools.service.d<TAB>-
 *
 * Entries are in the order the changes were made; revert walks them backwards.  Fields are
 * C-escaped (g_strescape), so any path fits on one line. */
#include "guestfix.h"

#include <string.h>

#define HEADER "guestfix-manifest 1"

static const char *const kind_names[] = {
  [GF_CHANGE_MODIFIED] = "modified",
  [GF_CHANGE_CREATED] = "created",
  [GF_CHANGE_MKDIR] = "mkdir",
};
G_STATIC_ASSERT (G_N_ELEMENTS (kind_names) == GF_CHANGE_LAST);

const char *
gf_change_kind_name (GfChangeKind k)
{
  return kind_names[k];
}

static void
entry_free (gpointer p)
{
  GfManifestEntry *e = p;
  g_free (e->path);
  g_free (e->backup);
  g_free (e);
}

GfManifest *
gf_manifest_new (void)
{
  GfManifest *m = g_new0 (GfManifest, 1);
  m->entries = g_ptr_array_new_with_free_func (entry_free);
  return m;
}

void
gf_manifest_free (GfManifest *m)
{
  if (m == NULL)
    return;
  g_ptr_array_unref (m->entries);
  g_free (m);
}

GfManifestEntry *
gf_manifest_find (GfManifest *m, const char *path)
{
  for (guint i = 0; i < m->entries->len; i++) {
    GfManifestEntry *e = m->entries->pdata[i];
    if (strcmp (e->path, path) == 0)
      return e;
  }
  return NULL;
}

void
gf_manifest_add (GfManifest *m, GfChangeKind kind, const char *path, const char *backup)
{
  GfManifestEntry *e = g_new0 (GfManifestEntry, 1);
  e->kind = kind;
  e->path = g_strdup (path);
  e->backup = g_strdup (backup);
  g_ptr_array_add (m->entries, e);
}

char *
gf_manifest_format (const GfManifest *m)
{
  g_autoptr (GString) s = g_string_new (HEADER "\n");
  for (guint i = 0; i < m->entries->len; i++) {
    const GfManifestEntry *e = m->entries->pdata[i];
    g_autofree char *p = g_strescape (e->path, NULL);
    g_autofree char *b = e->backup ? g_strescape (e->backup, NULL) : g_strdup ("-");
    g_string_append_printf (s, "%s\t%s\t%s\n", kind_names[e->kind], p, b);
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

GfManifest *
gf_manifest_parse (const char *name, const char *text, GError **err)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  if (lines[0] == NULL || strcmp (lines[0], HEADER) != 0) {
    gf_parse_error (err, name, 1, "not a guestfix manifest (expected '%s')", HEADER);
    return NULL;
  }
  GfManifest *m = gf_manifest_new ();
  for (size_t i = 1; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    g_auto (GStrv) f = g_strsplit (lines[i], "\t", -1);
    int kind = -1;
    for (int k = 0; k < GF_CHANGE_LAST && g_strv_length (f) == 3; k++)
      if (strcmp (f[0], kind_names[k]) == 0)
        kind = k;
    g_autofree char *path = kind >= 0 ? g_strcompress (f[1]) : NULL;
    g_autofree char *backup = kind >= 0 && strcmp (f[2], "-") != 0 ? g_strcompress (f[2]) : NULL;
    /* Paths must be absolute and backups relative without "..": the manifest lives in the guest
     * and is as untrusted as the rest of it. */
    if (kind < 0 || path[0] != '/' || strstr (path, "/../") || g_str_has_suffix (path, "/..") ||
        (kind == GF_CHANGE_MODIFIED) != (backup != NULL) ||
        (backup && (backup[0] == '/' || strstr (backup, "..")))) {
      gf_parse_error (err, name, i + 1, "malformed manifest entry");
      gf_manifest_free (m);
      return NULL;
    }
    gf_manifest_add (m, kind, path, backup);
  }
  return m;
}
