/* safety.c - refuse hostile disk images before libguestfs (QEMU) opens them.
 *
 * A qcow2 can name a backing file or an external data file anywhere on the host; a vmdk
 * descriptor can name extents anywhere.  Opening such an image would read (and, for a writable
 * data file, write) host files the user never named.  We ask `qemu-img info --output=json`
 * with the format given explicitly (never probed) and refuse those unless allowed. */
#include "guestfix.h"

#include <stdlib.h>
#include <string.h>
#include <json-glib/json-glib.h>

static bool
refuse (GError **err, const char *file, const char *what, const char *target)
{
  g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE,
               "%s: refusing an image whose %s points at a host file (%s); "
               "use --allow-backing if you trust it", file, what, target);
  return false;
}

bool
gf_check_image (const char *file, const char *format, bool allow_backing, GError **err)
{
  const char *qemu_img = g_getenv ("GUESTFIX_QEMU_IMG");
  if (qemu_img == NULL)
    qemu_img = "qemu-img";
  const char *argv[] = { qemu_img, "info", "--output=json", "-U", "-f", format, file, NULL };
  g_autofree char *out = NULL, *errout = NULL;
  int status;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &errout,
                     &status, err))
    return false;
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: qemu-img info -f %s failed: %s", file,
                 format, g_strstrip (errout));
    return false;
  }
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, out, -1, err))
    return false;
  JsonNode *root = json_parser_get_root (p);
  if (!JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: unexpected qemu-img info output", file);
    return false;
  }
  JsonObject *o = json_node_get_object (root);
  if (allow_backing)
    return true;
  if (json_object_has_member (o, "backing-filename"))
    return refuse (err, file, "backing file", json_object_get_string_member (o, "backing-filename"));
  JsonObject *fs = json_object_has_member (o, "format-specific")
                 ? json_object_get_object_member (o, "format-specific") : NULL;
  JsonObject *data = fs && json_object_has_member (fs, "data")
                   ? json_object_get_object_member (fs, "data") : NULL;
  if (data && json_object_has_member (data, "data-file"))
    return refuse (err, file, "data file", json_object_get_string_member (data, "data-file"));
  if (data && json_object_has_member (data, "extents")) {
    g_autofree char *self = realpath (file, NULL);
    JsonArray *ex = json_object_get_array_member (data, "extents");
    for (guint i = 0; i < json_array_get_length (ex); i++) {
      JsonObject *e = json_array_get_object_element (ex, i);
      const char *fn = e && json_object_has_member (e, "filename")
                     ? json_object_get_string_member (e, "filename") : NULL;
      g_autofree char *real = fn ? realpath (fn, NULL) : NULL;
      if (fn && (real == NULL || self == NULL || strcmp (real, self) != 0))
        return refuse (err, file, "vmdk extent", fn);
    }
  }
  return true;
}
