/* report.c - what guestfix does or would do: progress lines on stdout and the --json report. */
#include "guestfix.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <json-glib/json-glib.h>

void
gf_report_item_free (gpointer p)
{
  GfReportItem *it = p;
  g_free (it->action);
  g_free (it->path);
  g_free (it->detail);
  g_free (it);
}

/* Record one item (ACTION, PATH, the formatted detail) and return the detail; NULL in the
 * preflight, which records nothing. */
static const char *
add_item (GfCtx *c, const char *action, const char *path, const char *fmt, va_list ap)
{
  if (c->preflight)
    return NULL;
  GfReportItem *it = g_new0 (GfReportItem, 1);
  it->action = g_strdup (action);
  it->path = g_strdup (path);
  it->detail = g_strdup_vprintf (fmt, ap);
  g_ptr_array_add (c->report, it);
  return it->detail;
}

void
gf_report (GfCtx *c, const char *action, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  const char *detail = add_item (c, action, path, fmt, ap);
  va_end (ap);
  if (detail == NULL)
    return;
  bool note = strcmp (action, "note") == 0;
  if (!note)
    c->changes++;
  printf ("%s%s %s: %s\n", c->dry_run && !note ? "would " : "", action, path, detail);
  fflush (stdout);
}

void
gf_warning (GfCtx *c, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  const char *msg = add_item (c, "warning", "", fmt, ap);
  va_end (ap);
  if (msg)
    fprintf (stderr, "guestfix: warning: %s\n", msg);
}

bool
gf_report_write_json (GfCtx *c, const char *file, const char *mode, int exit_code,
                      GError **err)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "program");
  json_builder_add_string_value (b, "guestfix");
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, mode);
  json_builder_set_member_name (b, "dry-run");
  json_builder_add_boolean_value (b, c->dry_run);
  json_builder_set_member_name (b, "os-type");
  json_builder_add_string_value (b, c->type ? c->type : "");
  json_builder_set_member_name (b, "distro");
  json_builder_add_string_value (b, c->distro ? c->distro : "");
  json_builder_set_member_name (b, "exit-code");
  json_builder_add_int_value (b, exit_code);
  json_builder_set_member_name (b, "changes");
  json_builder_add_int_value (b, c->changes);
  json_builder_set_member_name (b, "actions");
  json_builder_begin_array (b);
  for (guint i = 0; i < c->report->len; i++) {
    const GfReportItem *it = c->report->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "action");
    json_builder_add_string_value (b, it->action);
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, it->path);
    json_builder_set_member_name (b, "detail");
    json_builder_add_string_value (b, it->detail);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  if (strcmp (file, "-") == 0) {
    printf ("%s\n", text);
    return true;
  }
  g_autofree char *withnl = g_strconcat (text, "\n", NULL);
  return g_file_set_contents (file, withnl, -1, err);
}
