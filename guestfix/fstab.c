/* fstab.c - /etc/fstab editor: device names in the first field become UUID= or LABEL=.
 *
 * Only the first field of a line changes, in place, so comments, spacing and the other fields
 * stay byte for byte.  Devices not in the map (LVM, /dev/disk/by-*, UUID= already) are kept. */
#include "guestfix.h"

#include <string.h>

char *
gf_fstab_edit (const char *name, const char *text, const GfDevMap *map,
               bool *changed, GError **err)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  *changed = false;

  for (size_t i = 0; lines[i] != NULL; i++) {
    char *line = lines[i];
    if (gf_is_blank_or_comment (line, "#"))
      continue;
    g_auto (GStrv) fields = g_strsplit_set (line, " \t", -1);
    size_t nf = 0;
    const char *first = NULL;
    for (size_t k = 0; fields[k] != NULL; k++)
      if (fields[k][0] != '\0') {
        if (nf == 0)
          first = fields[k];
        nf++;
      }
    if (nf < 3) {
      gf_parse_error (err, name, i + 1, "expected at least 3 fields (device, mount point, type), "
                      "found %zu", nf);
      return NULL;
    }
    const char *spec = gf_devmap_lookup (map, first);
    if (spec == NULL)
      continue;
    /* Replace the first field where it stands. */
    const char *at = strstr (line, first);
    g_autofree char *head = g_strndup (line, at - line);
    char *repl = g_strconcat (head, spec, at + strlen (first), NULL);
    g_free (lines[i]);
    lines[i] = repl;
    *changed = true;
  }
  return gf_unlines (lines, final_nl);
}
