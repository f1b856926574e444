/* windows.c - Windows: virtio storage and network drivers load at boot, set up through the
 * registry (hivex, inside the appliance) and files, plus a first-boot script.
 *
 *   - the user's drivers (--virtio-win DIR: viostor.sys, vioscsi.sys, netkvm.sys and their
 *     .inf/.cat) are copied to %SystemRoot%\System32\drivers and %SystemRoot%\guestfix\drivers;
 *   - SYSTEM hive, current control set: Services\viostor and Services\vioscsi as boot-start
 *     SCSI miniports, Services\netkvm on demand, and CriticalDeviceDatabase entries mapping the
 *     virtio PCI IDs to the storage services, so the boot disk is found on first boot;
 *   - SOFTWARE hive: RunOnce runs %SystemRoot%\guestfix\firstboot.cmd, which installs the INF
 *     files with pnputil (needed for the NIC, and to finish the storage installation).
 * Each hive is checked read-only first; it is saved and written only if something is missing,
 * so a second run changes nothing, and revert restores the hives byte for byte.  Nothing here
 * is removed from the old platform's configuration: the old drivers stay, so the disk still
 * boots there. */
#include "guestfix.h"

#include <string.h>
#include <guestfs.h>

enum { REG_SZ = 1, REG_EXPAND_SZ = 2, REG_DWORD = 4 };

#define SCSI_CLASS "{4D36E97B-E325-11CE-BFC1-08002BE10318}"

/* The drivers guestfix knows, with their service settings and the PCI IDs they handle. */
static const struct {
  const char *service;
  guint32 start;        /* 0 boot, 3 on demand */
  const char *group;
  const char *pci_ids[3];
} drivers[] = {
  { "viostor", 0, "SCSI miniport", { "pci#ven_1af4&dev_1001&subsys_00021af4&rev_00",
                                     "pci#ven_1af4&dev_1042&subsys_11001af4&rev_01" } },
  { "vioscsi", 0, "SCSI miniport", { "pci#ven_1af4&dev_1004&subsys_00081af4&rev_00",
                                     "pci#ven_1af4&dev_1048&subsys_11001af4&rev_01" } },
  { "netkvm", 3, "NDIS", { NULL } },
};

/* A registry value to ensure. */
typedef struct {
  const char *key;
  int type;
  GBytes *data;
} regval;

static GBytes *
utf16 (const char *s)
{
  glong n;
  gunichar2 *w = g_utf8_to_utf16 (s, -1, NULL, &n, NULL);
  guint8 *b = g_malloc ((n + 1) * 2);
  for (glong i = 0; i <= n; i++) {      /* little endian, with the terminating NUL */
    b[2 * i] = w[i] & 0xff;
    b[2 * i + 1] = w[i] >> 8;
  }
  g_free (w);
  return g_bytes_new_take (b, (n + 1) * 2);
}

static GBytes *
dword (guint32 v)
{
  guint8 b[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };
  return g_bytes_new (b, 4);
}

/* Walk (APPLY: creating) the key PATH ('\'-separated) from the root; 0 if missing. */
static gint64
key (GfCtx *c, const char *path, bool apply)
{
  gint64 node = guestfs_hivex_root (c->g);
  g_auto (GStrv) parts = g_strsplit (path, "\\", -1);
  for (size_t i = 0; node > 0 && parts[i]; i++) {
    gint64 child = guestfs_hivex_node_get_child (c->g, node, parts[i]);
    if (child == 0 && apply)
      child = guestfs_hivex_node_add_child (c->g, node, parts[i]);
    node = child;
  }
  return node;
}

/* Check (or, with APPLY, set) VALS under key PATH.  *NEEDED is set if anything differs. */
static bool
ensure_values (GfCtx *c, const char *path, const regval *vals, size_t n, bool apply,
               bool *needed, GError **err)
{
  gint64 node = key (c, path, apply);
  if (node < 0 || (node == 0 && apply)) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "registry key %s: %s", path,
                 guestfs_last_error (c->g));
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    gsize len;
    const char *want = g_bytes_get_data (vals[i].data, &len);
    bool same = false;
    if (node > 0) {
      guestfs_push_error_handler (c->g, NULL, NULL);
      gint64 v = guestfs_hivex_node_get_value (c->g, node, vals[i].key);
      size_t have_len = 0;
      g_autofree char *have = v > 0 ? guestfs_hivex_value_value (c->g, v, &have_len) : NULL;
      same = have && have_len == len && memcmp (have, want, len) == 0 &&
             guestfs_hivex_value_type (c->g, v) == vals[i].type;
      guestfs_pop_error_handler (c->g);
    }
    if (same)
      continue;
    *needed = true;
    if (apply && guestfs_hivex_node_set_value (c->g, node, vals[i].key, vals[i].type, want,
                                               len) == -1) {
      g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "registry %s\\%s: %s", path, vals[i].key,
                   guestfs_last_error (c->g));
      return false;
    }
  }
  return true;
}

static void
free_vals (regval *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    g_bytes_unref (v[i].data);
}

/* The SYSTEM hive changes for the drivers in HAVE (one flag per drivers[] entry). */
static bool
system_changes (GfCtx *c, const char *ccs, const bool *have, bool apply, bool *needed,
                GError **err)
{
  for (size_t d = 0; d < G_N_ELEMENTS (drivers); d++) {
    if (!have[d])
      continue;
    g_autofree char *svc = g_strdup_printf ("%s\\Services\\%s", ccs, drivers[d].service);
    g_autofree char *image = g_strdup_printf ("system32\\drivers\\%s.sys", drivers[d].service);
    regval v[] = {
      { "Type", REG_DWORD, dword (1) },
      { "Start", REG_DWORD, dword (drivers[d].start) },
      { "ErrorControl", REG_DWORD, dword (1) },
      { "Group", REG_SZ, utf16 (drivers[d].group) },
      { "ImagePath", REG_EXPAND_SZ, utf16 (image) },
    };
    bool ok = ensure_values (c, svc, v, G_N_ELEMENTS (v), apply, needed, err);
    free_vals (v, G_N_ELEMENTS (v));
    if (!ok)
      return false;
    for (size_t i = 0; i < G_N_ELEMENTS (drivers[d].pci_ids) && drivers[d].pci_ids[i]; i++) {
      g_autofree char *cdd = g_strdup_printf ("%s\\Control\\CriticalDeviceDatabase\\%s", ccs,
                                              drivers[d].pci_ids[i]);
      regval cv[] = {
        { "Service", REG_SZ, utf16 (drivers[d].service) },
        { "ClassGUID", REG_SZ, utf16 (SCSI_CLASS) },
      };
      ok = ensure_values (c, cdd, cv, G_N_ELEMENTS (cv), apply, needed, err);
      free_vals (cv, G_N_ELEMENTS (cv));
      if (!ok)
        return false;
    }
  }
  return true;
}

static bool
software_changes (GfCtx *c, const char *unused, const bool *have, bool apply, bool *needed,
                  GError **err)
{
  regval v[] = {
    { "guestfix-firstboot", REG_EXPAND_SZ,
      utf16 ("cmd.exe /c \"%SystemRoot%\\guestfix\\firstboot.cmd\"") },
  };
  bool ok = ensure_values (c, "Microsoft\\Windows\\CurrentVersion\\RunOnce", v, 1, apply,
                           needed, err);
  free_vals (v, 1);
  return ok;
}

typedef bool (*hive_changes) (GfCtx *, const char *, const bool *, bool, bool *, GError **);

/* Check HIVE read-only; if CHANGES finds something missing, save it and apply them. */
static bool
edit_hive (GfCtx *c, const char *hive, hive_changes changes, const char *ccs, const bool *have,
           const char *why, GError **err)
{
  bool needed = false, ok;
  if (!gf_check_path (c, hive, err))
    return false;
  if (guestfs_hivex_open (c->g, hive, GUESTFS_HIVEX_OPEN_WRITE, 0, -1) == -1)
    goto fail;
  ok = changes (c, ccs, have, false, &needed, err);
  guestfs_hivex_close (c->g);
  if (!ok || !needed)
    return ok;
  gf_report (c, "modify", hive, "%s", why);
  if (c->dry_run)
    return true;
  if (!gf_save_original (c, hive, err))
    return false;
  if (guestfs_hivex_open (c->g, hive, GUESTFS_HIVEX_OPEN_WRITE, 1, -1) == -1)
    goto fail;
  ok = changes (c, ccs, have, true, &needed, err) && guestfs_hivex_commit (c->g, NULL) == 0;
  guestfs_hivex_close (c->g);
  if (!ok && err && !*err)
    goto fail;
  return ok;
 fail:
  g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "hive %s: %s", hive, guestfs_last_error (c->g));
  return false;
}

/* Copy host file SRC (a regular file of at most 64 MiB) to guest DST if it differs. */
static bool
copy_in (GfCtx *c, const char *src, const char *dst, GError **err)
{
  if (!g_file_test (src, G_FILE_TEST_IS_REGULAR) || g_file_test (src, G_FILE_TEST_IS_SYMLINK)) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: not a regular file", src);
    return false;
  }
  g_autofree char *data = NULL;
  gsize len;
  if (!g_file_get_contents (src, &data, &len, err))
    return false;
  if (len > 64 * 1024 * 1024) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: too large for a driver file", src);
    return false;
  }
  if (gf_exists (c, dst)) {
    g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) data, len);
    g_autofree char *have = guestfs_checksum (c->g, "sha256", dst);
    if (have && strcmp (have, sum) == 0)
      return true;
  }
  return gf_write (c, dst, data, len, "virtio driver from --virtio-win", err);
}

/* PATH with its existing components in their on-disk case (Windows names are case
 * insensitive); components that do not exist yet are kept as given. */
static char *
ci_path (GfCtx *c, const char *path)
{
  if (strcmp (path, "/") == 0)
    return g_strdup (path);
  guestfs_push_error_handler (c->g, NULL, NULL);
  char *r = guestfs_case_sensitive_path (c->g, path);
  guestfs_pop_error_handler (c->g);
  if (r)
    return r;
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *cdir = ci_path (c, dir);
  return g_build_filename (cdir, base, NULL);
}

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static char *
winpath (GfCtx *c, const char *systemroot, const char *rel)
{
  g_autofree char *p = g_strconcat (systemroot, "/", rel, NULL);
  return ci_path (c, p);
}

bool
gf_windows_adapt (GfCtx *c, GError **err)
{
  if (c->virtio_win == NULL) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED,
                 "Windows guest: give --virtio-win DIR with the virtio drivers");
    return false;
  }
  g_autofree char *sysroot = guestfs_inspect_get_windows_systemroot (c->g, c->root);
  g_autofree char *system = guestfs_inspect_get_windows_system_hive (c->g, c->root);
  g_autofree char *software = guestfs_inspect_get_windows_software_hive (c->g, c->root);
  g_autofree char *ccs = guestfs_inspect_get_windows_current_control_set (c->g, c->root);
  if (!sysroot || !system || !software || !ccs) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "Windows inspection incomplete: %s",
                 guestfs_last_error (c->g));
    return false;
  }

  /* The user's drivers: every .sys/.inf/.cat goes to %SystemRoot%\guestfix\drivers for the
   * first-boot script; the known .sys files also to System32\drivers. */
  g_autoptr (GDir) dir = g_dir_open (c->virtio_win, 0, err);
  if (dir == NULL)
    return false;
  bool have[G_N_ELEMENTS (drivers)] = { false };
  bool any = false;
  g_autofree char *sysdrv = winpath (c, sysroot, "System32/drivers");
  g_autofree char *gfdrv = winpath (c, sysroot, "guestfix/drivers");
  const char *name;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    gf_push (names, name);
  g_ptr_array_sort (names, by_name);   /* a stable order of changes */
  for (guint i = 0; i < names->len; i++) {
    name = names->pdata[i];
    g_autofree char *lower = g_ascii_strdown (name, -1);
    if (!g_str_has_suffix (lower, ".sys") && !g_str_has_suffix (lower, ".inf") &&
        !g_str_has_suffix (lower, ".cat"))
      continue;
    g_autofree char *src = g_build_filename (c->virtio_win, name, NULL);
    g_autofree char *dst = g_strconcat (gfdrv, "/", lower, NULL);
    if (!copy_in (c, src, dst, err))
      return false;
    for (size_t d = 0; d < G_N_ELEMENTS (drivers); d++) {
      g_autofree char *sys = g_strconcat (drivers[d].service, ".sys", NULL);
      if (strcmp (lower, sys) != 0)
        continue;
      g_autofree char *dst2 = g_strconcat (sysdrv, "/", sys, NULL);
      if (!copy_in (c, src, dst2, err))
        return false;
      have[d] = any = true;
    }
  }
  if (!any) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED,
                 "%s: no virtio driver (viostor.sys, vioscsi.sys, netkvm.sys)", c->virtio_win);
    return false;
  }

  const char *script =
    "@echo off\r\n"
    "rem Added by guestfix: install the virtio drivers on the first boot.\r\n"
    "pnputil -i -a \"%SystemRoot%\\guestfix\\drivers\\*.inf\" "
    "> \"%SystemRoot%\\guestfix\\firstboot.log\" 2>&1\r\n";
  g_autofree char *fb = winpath (c, sysroot, "guestfix/firstboot.cmd");
  bool missing;
  g_autofree char *cur = gf_read (c, fb, GF_MAX_CONFIG_SIZE, &missing, err);
  if (cur == NULL && !missing)
    return false;
  if ((cur == NULL || strcmp (cur, script) != 0) &&
      !gf_write (c, fb, script, strlen (script), "first-boot driver installation", err))
    return false;

  return edit_hive (c, system, system_changes, ccs, have,
                    "virtio storage services and CriticalDeviceDatabase", err) &&
         edit_hive (c, software, software_changes, NULL, have,
                    "RunOnce: first-boot script", err);
}
