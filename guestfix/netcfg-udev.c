/* netcfg-udev.c - udev rules editor: rules that pin a NIC name to a MAC address (the
 * 70-persistent-net.rules of older distributions) are commented out, so the cloud NIC is not
 * renamed after the old one nor left without a name. */
#include "guestfix.h"

#include <string.h>

char *
gf_udev_rules_neutralize (const char *name, const char *text, bool *changed, GError **err)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  *changed = false;

  for (size_t i = 0; lines[i] != NULL; i++) {
    if (gf_is_blank_or_comment (lines[i], "#"))
      continue;
    if (strstr (lines[i], "ATTR{address}") && strstr (lines[i], "NAME")) {
      char *nl = g_strconcat ("# disabled by guestfix (pins the old MAC): ", lines[i], NULL);
      g_free (lines[i]);
      lines[i] = nl;
      *changed = true;
    }
  }
  return gf_unlines (lines, final_nl);
}
