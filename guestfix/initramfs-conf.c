/* initramfs-conf.c - editors for the initramfs generators' configuration: initramfs-tools'
 * module list, mkinitcpio.conf MODULES=(), and guestfix's dracut drop-in.  Modules are only
 * ever added, so the image keeps booting on the old platform too. */
#include "guestfix.h"

#include <string.h>

const char *const gf_virtio_modules[] = {
  "virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net", NULL,
};

char *
gf_modules_list_edit (const char *name, const char *text, bool *changed, GError **err)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  g_autoptr (GString) s = g_string_new (text);
  *changed = false;

  for (size_t m = 0; gf_virtio_modules[m] != NULL; m++) {
    bool present = false;
    for (size_t i = 0; lines[i] != NULL && !present; i++) {
      if (gf_is_blank_or_comment (lines[i], "#"))
        continue;
      g_autofree char *word = g_strstrip (g_strdup (lines[i]));
      word[strcspn (word, " \t")] = '\0';
      present = strcmp (word, gf_virtio_modules[m]) == 0;
    }
    if (present)
      continue;
    if (s->len > 0 && s->str[s->len - 1] != '\n')
      g_string_append_c (s, '\n');
    if (!*changed)
      g_string_append (s, "# Added by guestfix: virtio drivers for KVM clouds\n");
    g_string_append_printf (s, "%s\n", gf_virtio_modules[m]);
    *changed = true;
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

char *
gf_mkinitcpio_edit (const char *name, const char *text, bool *changed, GError **err)
{
  bool final_nl, found = false;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  *changed = false;

  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *p = lines[i] + strspn (lines[i], " \t");
    if (!g_str_has_prefix (p, "MODULES="))
      continue;
    const char *open = p + strlen ("MODULES=");
    const char *close = strchr (open, ')');
    if (*open != '(' || close == NULL) {
      gf_parse_error (err, name, i + 1, "MODULES= is not a one-line array (...)");
      return NULL;
    }
    found = true;
    g_autofree char *inner = g_strndup (open + 1, close - open - 1);
    g_auto (GStrv) mods = g_strsplit_set (inner, " \t", -1);
    g_autoptr (GString) add = g_string_new (NULL);
    for (size_t m = 0; gf_virtio_modules[m] != NULL; m++)
      if (!g_strv_contains ((const char *const *) mods, gf_virtio_modules[m]))
        g_string_append_printf (add, "%s%s", (add->len || strspn (inner, " \t") != strlen (inner))
                                ? " " : "", gf_virtio_modules[m]);
    if (add->len == 0)
      continue;
    g_autofree char *head = g_strndup (lines[i], close - lines[i]);
    char *nl = g_strconcat (head, add->str, close, NULL);
    g_free (lines[i]);
    lines[i] = nl;
    *changed = true;
  }
  if (!found) {
    g_set_error (err, GF_ERROR, GF_ERROR_PARSE, "%s: no MODULES=(...) line", name);
    return NULL;
  }
  return gf_unlines (lines, final_nl);
}

char *
gf_dracut_conf (void)
{
  g_autofree char *mods = g_strjoinv (" ", (char **) gf_virtio_modules);
  return g_strdup_printf ("# Added by guestfix: virtio drivers for KVM clouds\n"
                          "add_drivers+=\" %s \"\n", mods);
}
