/* test-editors.c - GLib unit tests of guestfix's pure config-file editors on the sample files
 * in tests/guestfix/data: each X.in edited must equal X.out byte for byte, editing the output
 * again must change nothing (idempotence), and malformed inputs must fail naming file:line. */
#include "guestfix.h"

#include <string.h>

static const char *datadir;

static char *
load (const char *name)
{
  g_autofree char *path = g_build_filename (datadir, name, NULL);
  char *text;
  g_autoptr (GError) err = NULL;
  if (!g_file_get_contents (path, &text, NULL, &err))
    g_error ("%s", err->message);
  return text;
}

static GfDevMap map;

static void
setup_map (void)
{
  const char *const uuid1 = "UUID=11111111-2222-3333-4444-555555555555";
  const char *const uuid2 = "UUID=66666666-7777-8888-9999-000000000000";
  const char *const prefixes[] = { "/dev/sd", "/dev/hd", "/dev/vd", "/dev/xvd" };
  for (size_t i = 0; i < G_N_ELEMENTS (prefixes); i++) {
    g_autofree char *a = g_strconcat (prefixes[i], "a1", NULL);
    g_autofree char *b = g_strconcat (prefixes[i], "a2", NULL);
    g_autofree char *c = g_strconcat (prefixes[i], "a3", NULL);
    gf_devmap_add (&map, a, uuid1);
    gf_devmap_add (&map, b, uuid2);
    gf_devmap_add (&map, c, "LABEL=srv");
  }
}

/* An editor with the common shape, bound to its extra arguments by a small adapter. */
typedef char *(*edit_fn) (const char *name, const char *text, bool *changed, GError **err);

/* IN edited equals OUT; editing OUT changes nothing. */
static void
check_golden (edit_fn edit, const char *in, const char *out)
{
  g_autofree char *src = load (in), *want = load (out);
  g_autoptr (GError) err = NULL;
  bool changed;
  g_autofree char *got = edit (in, src, &changed, &err);
  g_assert_no_error (err);
  g_assert_true (changed);
  g_assert_cmpstr (got, ==, want);
  g_autofree char *again = edit (out, got, &changed, &err);
  g_assert_no_error (err);
  g_assert_false (changed);
  g_assert_cmpstr (again, ==, want);
}

/* IN is malformed: the error names IN and LINE. */
static void
check_error (edit_fn edit, const char *in, int line)
{
  g_autofree char *src = load (in);
  g_autoptr (GError) err = NULL;
  bool changed;
  g_autofree char *got = edit (in, src, &changed, &err);
  g_assert_null (got);
  g_assert_error (err, GF_ERROR, GF_ERROR_PARSE);
  g_autofree char *prefix = line ? g_strdup_printf ("%s:%d: ", in, line) : g_strdup_printf ("%s: ", in);
  g_assert_true (g_str_has_prefix (err->message, prefix));
}

static char *fstab (const char *n, const char *t, bool *c, GError **e)
{ return gf_fstab_edit (n, t, &map, c, e); }
static char *grubdef (const char *n, const char *t, bool *c, GError **e)
{ return gf_grub_defaults_edit (n, t, &map, c, e); }
static char *grubcfg (const char *n, const char *t, bool *c, GError **e)
{ return gf_grub_cfg_edit (n, t, &map, c, e); }
static char *ifup_dhcp (const char *n, const char *t, bool *c, GError **e)
{ return gf_ifupdown_edit (n, t, NULL, c, e); }
static char *ifup_keep (const char *n, const char *t, bool *c, GError **e)
{
  GfIpConf k;
  g_assert_true (gf_ifupdown_find_static (t, &k));
  char *r = gf_ifupdown_edit (n, t, &k, c, e);
  gf_ipconf_clear (&k);
  return r;
}
static char *netplan_keep (const char *n, const char *t, bool *c, GError **e)
{
  GfIpConf k;
  if (!gf_netplan_find_static (t, &k))   /* the output has the old NIC second */
    g_error ("%s: no static address found", n);
  char *r = gf_netplan_edit (n, t, &k, true, c, e);
  gf_ipconf_clear (&k);
  return r;
}
static char *netplan_plain (const char *n, const char *t, bool *c, GError **e)
{ return gf_netplan_edit (n, t, NULL, true, c, e); }

static void test_fstab (void) { check_golden (fstab, "fstab.in", "fstab.out"); }
static void test_fstab_bad (void) { check_error (fstab, "fstab-bad.in", 2); }
static void test_grub_defaults (void) { check_golden (grubdef, "grub-default.in", "grub-default.out"); }
static void test_grub_defaults_bad (void) { check_error (grubdef, "grub-default-bad.in", 2); }
static void test_grub_cfg (void) { check_golden (grubcfg, "grub.cfg.in", "grub.cfg.out"); }
static void test_bls (void) { check_golden (grubcfg, "bls-entry.in", "bls-entry.out"); }
static void test_ifupdown_dhcp (void) { check_golden (ifup_dhcp, "interfaces.in", "interfaces-dhcp.out"); }
static void test_ifupdown_keep (void) { check_golden (ifup_keep, "interfaces.in", "interfaces-keep.out"); }
static void test_ifupdown_bad (void) { check_error (ifup_dhcp, "interfaces-bad.in", 1); }
static void test_netplan_keep (void) { check_golden (netplan_keep, "netplan.in", "netplan-keep.out"); }
static void test_netplan_bad (void) { check_error (netplan_plain, "netplan-bad.in", 4); }
static void test_nm (void) { check_golden (gf_nm_neutralize, "nm.in", "nm.out"); }
static void test_ifcfg (void) { check_golden (gf_ifcfg_neutralize, "ifcfg.in", "ifcfg.out"); }
static void test_udev (void) { check_golden (gf_udev_rules_neutralize, "udev.in", "udev.out"); }
static void test_modules (void) { check_golden (gf_modules_list_edit, "modules.in", "modules.out"); }
static void test_mkinitcpio (void) { check_golden (gf_mkinitcpio_edit, "mkinitcpio.in", "mkinitcpio.out"); }

static void
test_nm_keyfile_keep (void)
{
  g_autofree char *src = load ("nm.in"), *want = load ("nm-cloud-keep.out");
  GfIpConf k;
  g_assert_true (gf_nm_find_static (src, &k));
  g_assert_cmpstr (k.iface, ==, "ens192");
  g_autofree char *got = gf_nm_cloud_keyfile (&k);
  g_assert_cmpstr (got, ==, want);
  gf_ipconf_clear (&k);
}

static void
test_ifcfg_keep (void)
{
  g_autofree char *src = load ("ifcfg.in"), *want = load ("ifcfg-cloud-keep.out");
  GfIpConf k;
  g_assert_true (gf_ifcfg_find_static (src, &k));
  g_assert_cmpstr (k.address, ==, "192.0.2.10/24");
  g_autofree char *got = gf_ifcfg_cloud_file (&k);
  g_assert_cmpstr (got, ==, want);
  gf_ipconf_clear (&k);
}

static void
test_cmdline (void)
{
  bool ch;
  g_autofree char *a = gf_cmdline_edit ("root=/dev/sda1 ro console=ttyS0", &map, &ch);
  g_assert_true (ch);
  g_assert_cmpstr (a, ==, "root=UUID=11111111-2222-3333-4444-555555555555 ro console=ttyS0");
  g_autofree char *b = gf_cmdline_edit ("ro quiet", &map, &ch);
  g_assert_cmpstr (b, ==, "ro quiet console=tty0 console=ttyS0,115200n8");
  g_autofree char *c = gf_cmdline_edit ("root=/dev/mapper/vg-root console=ttyS0", &map, &ch);
  g_assert_false (ch);
}

static void
test_netmask (void)
{
  g_assert_cmpint (gf_netmask_to_prefix ("255.255.255.0"), ==, 24);
  g_assert_cmpint (gf_netmask_to_prefix ("255.255.0.0"), ==, 16);
  g_assert_cmpint (gf_netmask_to_prefix ("255.0.255.0"), ==, -1);
  g_assert_cmpint (gf_netmask_to_prefix ("junk"), ==, -1);
}

static void
test_manifest (void)
{
  GfManifest *m = gf_manifest_new ();
  gf_manifest_add (m, GF_CHANGE_MODIFIED, "/etc/fstab", "originals/0001");
  gf_manifest_add (m, GF_CHANGE_MKDIR, "/etc/a dir\twith tab", NULL);
  gf_manifest_add (m, GF_CHANGE_CREATED, "/etc/a dir\twith tab/f", NULL);
  g_autofree char *text = gf_manifest_format (m);
  g_autoptr (GError) err = NULL;
  GfManifest *m2 = gf_manifest_parse ("manifest", text, &err);
  g_assert_no_error (err);
  g_autofree char *text2 = gf_manifest_format (m2);
  g_assert_cmpstr (text, ==, text2);
  g_assert_nonnull (gf_manifest_find (m2, "/etc/a dir\twith tab"));
  gf_manifest_free (m);
  gf_manifest_free (m2);
  /* A hostile manifest: relative paths and backups escaping the state directory. */
  const char *bad[] = {
    "guestfix-manifest 1\nmodified\tetc/fstab\toriginals/0001\n",
    "guestfix-manifest 1\nmodified\t/etc/fstab\t../../etc/shadow\n",
    "guestfix-manifest 1\nmodified\t/etc/../../x\toriginals/1\n",
    "guestfix-manifest 1\ncreated\t/etc/x\n",
    "not a manifest\n",
  };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) e = NULL;
    g_assert_null (gf_manifest_parse ("manifest", bad[i], &e));
    g_assert_error (e, GF_ERROR, GF_ERROR_PARSE);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  datadir = g_getenv ("GUESTFIX_TEST_DATA");
  if (datadir == NULL)
    datadir = SRCDATA;
  setup_map ();
  g_test_add_func ("/fstab/golden", test_fstab);
  g_test_add_func ("/fstab/malformed", test_fstab_bad);
  g_test_add_func ("/grub/defaults", test_grub_defaults);
  g_test_add_func ("/grub/defaults-malformed", test_grub_defaults_bad);
  g_test_add_func ("/grub/cfg", test_grub_cfg);
  g_test_add_func ("/grub/bls", test_bls);
  g_test_add_func ("/grub/cmdline", test_cmdline);
  g_test_add_func ("/ifupdown/dhcp", test_ifupdown_dhcp);
  g_test_add_func ("/ifupdown/keep-ip", test_ifupdown_keep);
  g_test_add_func ("/ifupdown/malformed", test_ifupdown_bad);
  g_test_add_func ("/netplan/keep-ip", test_netplan_keep);
  g_test_add_func ("/netplan/malformed", test_netplan_bad);
  g_test_add_func ("/nm/neutralize", test_nm);
  g_test_add_func ("/nm/cloud-keyfile-keep-ip", test_nm_keyfile_keep);
  g_test_add_func ("/ifcfg/neutralize", test_ifcfg);
  g_test_add_func ("/ifcfg/cloud-file-keep-ip", test_ifcfg_keep);
  g_test_add_func ("/udev/neutralize", test_udev);
  g_test_add_func ("/initramfs/modules", test_modules);
  g_test_add_func ("/initramfs/mkinitcpio", test_mkinitcpio);
  g_test_add_func ("/util/netmask", test_netmask);
  g_test_add_func ("/manifest/roundtrip-and-hostile", test_manifest);
  return g_test_run ();
}
