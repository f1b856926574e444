/* netcfg-ifupdown.c - /etc/network/interfaces editor (Debian/Ubuntu ifupdown).
 *
 * The old NIC's stanzas stay as they are (they still serve on the old platform); a stanza for
 * the cloud NIC is appended: DHCP, or the old static address with --keep-ip. */
#include "guestfix.h"

#include <string.h>

/* Words that start a new stanza; anything else non-blank is an option of the current one. */
static const char *const stanza_words[] = {
  "iface", "auto", "mapping", "source", "source-directory", "rename", "no-auto-down",
  "no-scripts", NULL,
};

static bool
is_stanza (const char *word)
{
  return g_strv_contains (stanza_words, word) || g_str_has_prefix (word, "allow-");
}

/* Walk the file: calls VISIT for each option of each iface stanza.  Returns false with a parse
 * error on an option outside any stanza or a short iface line. */
typedef void (*visit_fn) (const char *iface, const char *method, char **words, void *opaque);

static bool
walk (const char *name, const char *text, visit_fn visit, void *opaque, GError **err)
{
  bool final_nl;
  g_auto (GStrv) lines = gf_lines (text, &final_nl);
  g_autofree char *iface = NULL, *method = NULL;
  bool in_stanza = false;

  for (size_t i = 0; lines[i] != NULL; i++) {
    if (gf_is_blank_or_comment (lines[i], "#"))
      continue;
    g_autofree char *t = g_strstrip (g_strdup (lines[i]));
    g_auto (GStrv) words = g_regex_split_simple ("[ \t]+", t, 0, 0);
    if (is_stanza (words[0])) {
      g_clear_pointer (&iface, g_free);
      g_clear_pointer (&method, g_free);
      in_stanza = true;
      if (strcmp (words[0], "iface") == 0) {
        if (g_strv_length (words) < 4) {
          gf_parse_error (err, name, i + 1, "expected 'iface NAME FAMILY METHOD'");
          return false;
        }
        iface = g_strdup (words[1]);
        method = g_strdup_printf ("%s %s", words[2], words[3]);
      }
      if (visit)
        visit (iface, method, words, opaque);
      continue;
    }
    if (!in_stanza) {
      gf_parse_error (err, name, i + 1, "option '%s' outside any stanza", words[0]);
      return false;
    }
    if (visit && iface)
      visit (iface, method, words, opaque);
  }
  return true;
}

typedef struct {
  GfIpConf *out;
  char *netmask;
  bool found;
} find_state;

static void
find_visit (const char *iface, const char *method, char **w, void *opaque)
{
  find_state *st = opaque;
  if (iface == NULL || strcmp (method, "inet static") != 0 || strcmp (iface, "lo") == 0)
    return;
  if (st->found && strcmp (st->out->iface, iface) != 0)
    return;                     /* only the first static stanza */
  if (!st->found) {
    st->found = true;
    st->out->iface = g_strdup (iface);
  }
  if (w[1] == NULL)
    return;
  if (strcmp (w[0], "address") == 0 && !st->out->address)
    st->out->address = g_strdup (w[1]);
  else if (strcmp (w[0], "netmask") == 0 && !st->netmask)
    st->netmask = g_strdup (w[1]);
  else if (strcmp (w[0], "gateway") == 0 && !st->out->gateway)
    st->out->gateway = g_strdup (w[1]);
  else if (strcmp (w[0], "dns-nameservers") == 0 && !st->out->dns)
    st->out->dns = g_strjoinv (" ", w + 1);
}

bool
gf_ifupdown_find_static (const char *text, GfIpConf *out)
{
  find_state st = { .out = out };
  memset (out, 0, sizeof *out);
  if (!walk ("interfaces", text, find_visit, &st, NULL) || !st.found || !out->address) {
    g_free (st.netmask);
    gf_ipconf_clear (out);
    return false;
  }
  if (!strchr (out->address, '/')) {
    int prefix = st.netmask ? gf_netmask_to_prefix (st.netmask) : 24;
    char *a = g_strdup_printf ("%s/%d", out->address, prefix < 0 ? 24 : prefix);
    g_free (out->address);
    out->address = a;
  }
  g_free (st.netmask);
  return true;
}

static void
cloud_visit (const char *iface, const char *method, char **w, void *opaque)
{
  bool *has = opaque;
  if ((iface && strcmp (iface, GF_CLOUD_NIC) == 0) ||
      ((strcmp (w[0], "auto") == 0 || g_str_has_prefix (w[0], "allow-")) &&
       g_strv_contains ((const char *const *) w + 1, GF_CLOUD_NIC)))
    *has = true;
}

char *
gf_ifupdown_edit (const char *name, const char *text, const GfIpConf *keep,
                  bool *changed, GError **err)
{
  bool has_cloud = false;
  *changed = false;
  if (!walk (name, text, cloud_visit, &has_cloud, err))
    return NULL;
  if (has_cloud)
    return g_strdup (text);

  g_autoptr (GString) s = g_string_new (text);
  if (s->len > 0 && s->str[s->len - 1] != '\n')
    g_string_append_c (s, '\n');
  g_string_append (s, "\n# Added by guestfix: the cloud NIC.  The stanzas above still serve "
                   "the old platform.\n");
  g_string_append (s, "allow-hotplug " GF_CLOUD_NIC "\n");
  if (keep == NULL)
    g_string_append (s, "iface " GF_CLOUD_NIC " inet dhcp\n");
  else {
    g_string_append_printf (s, "iface " GF_CLOUD_NIC " inet static\n\taddress %s\n",
                            keep->address);
    if (keep->gateway)
      g_string_append_printf (s, "\tgateway %s\n", keep->gateway);
    if (keep->dns)
      g_string_append_printf (s, "\tdns-nameservers %s\n", keep->dns);
  }
  *changed = true;
  return g_string_free (g_steal_pointer (&s), FALSE);
}
