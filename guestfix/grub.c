/* grub.c - kernel command line editors: /etc/default/grub, grub.cfg and BLS entries.
 *
 * One rule for every place a kernel command line lives (gf_cmdline_edit):
 *   - root=/dev/sdXN (an unstable name in the device map) becomes root=UUID=... (or LABEL=);
 *   - a serial console is added next to the existing one: "console=ttyS0,115200n8" last (so it
 *     is /dev/console), preceded by "console=tty0" when the line named no console at all.
 * An argument already present is never added twice, so editing twice changes nothing. */
#include "guestfix.h"

#include <string.h>

char *
gf_cmdline_edit (const char *cmdline, const GfDevMap *map, bool *changed)
{
  g_auto (GStrv) args = g_strsplit_set (cmdline, " \t", -1);
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  bool has_console = false, has_serial = false;
  *changed = false;

  for (size_t i = 0; args[i] != NULL; i++) {
    const char *a = args[i];
    if (a[0] == '\0')
      continue;
    if (g_str_has_prefix (a, "console="))
      has_console = true;
    if (g_str_has_prefix (a, "console=ttyS0"))
      has_serial = true;
    const char *spec = g_str_has_prefix (a, "root=") ? gf_devmap_lookup (map, a + 5) : NULL;
    if (spec != NULL) {
      g_ptr_array_add (out, g_strconcat ("root=", spec, NULL));
      *changed = true;
    } else
      gf_push (out, a);
  }
  if (!has_serial) {
    if (!has_console)
      gf_push (out, "console=tty0");
    gf_push (out, "console=ttyS0,115200n8");
    *changed = true;
  }
  if (!*changed)
    return g_strdup (cmdline);
  g_ptr_array_add (out, NULL);
  return g_strjoinv (" ", (char **) out->pdata);
}

/* Find the value of "KEY=value" in LINE: sets *start and *end (exclusive) of the raw value and
 * *quote ('"', '\'' or 0).  False on unbalanced quotes. */
static bool
shell_value (const char *line, const char *eq, const char **start, const char **end, char *quote)
{
  const char *p = eq + 1;
  if (*p == '"' || *p == '\'') {
    *quote = *p;
    const char *q = p + 1;
    while (*q && *q != *quote) {
      if (*q == '\\' && *quote == '"' && q[1])
        q++;
      q++;
    }
    if (*q != *quote)
      return false;
    *start = p + 1;
    *end = q;
  } else {
    *quote = 0;
    *start = p;
    *end = p + strcspn (p, " \t#");
  }
  return true;
}

char *
gf_grub_defaults_edit (const char *name, const char *text, const GfDevMap *map,
                       bool *changed, GError **err)
{
  bool final_nl, found = false;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  *changed = false;

  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];
    const char *p = line + strspn (line, " \t");
    if (g_str_has_prefix (p, "GRUB_DISABLE_LINUX_UUID=")) {
      const char *s, *e;
      char q;
      if (!shell_value (p, strchr (p, '='), &s, &e, &q)) {
        gf_parse_error (err, name, i + 1, "unbalanced quote");
        return NULL;
      }
      if (e - s == 4 && strncmp (s, "true", 4) == 0) {
        g_ptr_array_add (out, g_strconcat ("# disabled by guestfix: ", line, NULL));
        *changed = true;
        continue;
      }
    }
    if (!g_str_has_prefix (p, "GRUB_CMDLINE_LINUX=")) {
      gf_push (out, line);
      continue;
    }
    const char *s, *e;
    char q;
    if (!shell_value (p, strchr (p, '='), &s, &e, &q)) {
      gf_parse_error (err, name, i + 1, "unbalanced quote in GRUB_CMDLINE_LINUX");
      return NULL;
    }
    found = true;
    g_autofree char *value = g_strndup (s, e - s);
    bool ch;
    g_autofree char *nv = gf_cmdline_edit (value, map, &ch);
    if (!ch) {
      gf_push (out, line);
      continue;
    }
    char qq = q ? q : '"';
    g_autofree char *head = g_strndup (line, (s - line) - (q ? 1 : 0));
    g_ptr_array_add (out, g_strdup_printf ("%s%c%s%c%s", head, qq, nv, qq, e + (q ? 1 : 0)));
    *changed = true;
  }
  if (!found) {
    bool ch;
    g_autofree char *nv = gf_cmdline_edit ("", map, &ch);
    g_ptr_array_add (out, g_strdup_printf ("GRUB_CMDLINE_LINUX=\"%s\"", nv));
    *changed = true;
  }
  g_ptr_array_add (out, NULL);
  return gf_unlines ((char **) out->pdata, final_nl || !found);
}

/* The first words of grub.cfg / BLS lines that carry kernel arguments, and how many words
 * (command, kernel path) come before the arguments. */
static const struct {
  const char *word;
  int skip;
} kernel_lines[] = {
  { "linux", 2 }, { "linux16", 2 }, { "linuxefi", 2 }, { "options", 1 },
};

char *
gf_grub_cfg_edit (const char *name, const char *text, const GfDevMap *map,
                  bool *changed, GError **err)
{
  bool final_nl, bls = false;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  *changed = false;

  /* A BLS entry carries the arguments on "options"; its "linux" line is the kernel alone. */
  for (size_t i = 0; lines[i] != NULL; i++)
    bls |= g_str_has_prefix (lines[i], "options ");

  for (size_t i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];
    g_autofree char *indent = gf_indent_of (line);
    const char *p = line + strlen (indent);
    size_t wlen = strcspn (p, " \t");
    int skip = -1;
    for (size_t k = 0; k < G_N_ELEMENTS (kernel_lines); k++)
      if (strlen (kernel_lines[k].word) == wlen && strncmp (p, kernel_lines[k].word, wlen) == 0)
        skip = kernel_lines[k].skip;
    if (skip < 0 || (skip == 1) != bls)
      continue;
    /* Skip the command word and (for linux*) the kernel path. */
    const char *args = p;
    for (int k = 0; k < skip; k++) {
      args += strcspn (args, " \t");
      args += strspn (args, " \t");
    }
    if (skip == 2 && args == p + strlen (p) && strcspn (p + wlen, " \t") == strlen (p + wlen)) {
      gf_parse_error (err, name, i + 1, "'%.*s' without a kernel path", (int) wlen, p);
      return NULL;
    }
    bool ch;
    g_autofree char *nargs = gf_cmdline_edit (args, map, &ch);
    if (!ch)
      continue;
    g_autofree char *head = g_strndup (line, args - line);
    /* A line that ended at the kernel path needs a separating space. */
    const char *sep = (*args == '\0' && head[strlen (head) - 1] != ' ') ? " " : "";
    char *nl = g_strconcat (head, sep, nargs, NULL);
    g_free (lines[i]);
    lines[i] = nl;
    *changed = true;
  }
  return gf_unlines (lines, final_nl);
}

bool
gf_grub_cfg_is_generated (const char *text)
{
  return strstr (text, "### BEGIN /etc/grub.d/") != NULL;
}
