/* guestio.c - safe guest file access through the appliance, every change recorded.
 *
 * Safety: guest paths are resolved only inside the appliance (libguestfs chroots to the guest
 * root), and a file guestfix edits may not be, or sit under, a symlink: a hostile guest could
 * otherwise point /etc/fstab at /proc/... or at another filesystem.  Sizes are checked before
 * any read.
 *
 * Reversibility: before the first change to a path its original is copied (cp -a: content,
 * mode, owner, times) to STATE_DIR/originals/NNNN, or its creation is noted, and the manifest
 * is rewritten at once, so an interrupted run can still be reverted. */
#include "guestfix.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <guestfs.h>

static bool
guest_error (GfCtx *c, GError **err, const char *what, const char *path)
{
  g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "%s %s: %s", what, path,
               guestfs_last_error (c->g) ? guestfs_last_error (c->g) : "failed");
  return false;
}

/* lstat PATH: 1 exists (mode in *MODE), 0 missing, -1 error. */
static int
lstat_mode (GfCtx *c, const char *path, long *mode, long *size)
{
  guestfs_push_error_handler (c->g, NULL, NULL);
  struct guestfs_statns *st = guestfs_lstatns (c->g, path);
  int e = guestfs_last_errno (c->g);
  guestfs_pop_error_handler (c->g);
  if (st == NULL)
    return e == ENOENT || e == ENOTDIR ? 0 : -1;
  *mode = st->st_mode;
  if (size)
    *size = st->st_size;
  guestfs_free_statns (st);
  return 1;
}

bool
gf_check_path (GfCtx *c, const char *path, GError **err)
{
  if (path[0] != '/' || strstr (path, "/../") || g_str_has_suffix (path, "/..")) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: not a plain absolute guest path", path);
    return false;
  }
  /* Every component, the last included, must not be a symlink. */
  g_autofree char *p = g_strdup (path);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char saved = *s;
    *s = '\0';
    long mode;
    int r = lstat_mode (c, p, &mode, NULL);
    if (r < 0)
      return guest_error (c, err, "lstat", p);
    if (r == 1 && S_ISLNK (mode)) {
      g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE,
                   "%s: %s is a symbolic link; guestfix does not edit through links", path, p);
      return false;
    }
    *s = saved;
    if (r == 0 || saved == '\0')
      break;
  }
  return true;
}

bool
gf_exists (GfCtx *c, const char *path)
{
  long mode;
  return lstat_mode (c, path, &mode, NULL) == 1;
}

char *
gf_read (GfCtx *c, const char *path, size_t max, bool *missing, GError **err)
{
  long mode, size;
  *missing = false;
  if (!gf_check_path (c, path, err))
    return NULL;
  int r = lstat_mode (c, path, &mode, &size);
  if (r < 0) {
    guest_error (c, err, "lstat", path);
    return NULL;
  }
  if (r == 0) {
    *missing = true;
    return NULL;
  }
  if (!S_ISREG (mode)) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: not a regular file", path);
    return NULL;
  }
  if ((size_t) size > max) {
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE,
                 "%s: %ld bytes, larger than the %zu-byte limit for configuration files",
                 path, size, max);
    return NULL;
  }
  /* pread, not read_file: the latter goes through a download, which settles udev each time
   * (a quarter of a second apiece under TCG).  SIZE is at most MAX (1 MiB), within one
   * protocol message. */
  size_t len = 0;
  char *buf = size > 0 ? guestfs_pread (c->g, path, size, 0, &len) : g_strdup ("");
  if (buf == NULL) {
    guest_error (c, err, "read", path);
    return NULL;
  }
  if (len != (size_t) size) {
    g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "%s: short read (%zu of %ld bytes)", path,
                 len, size);
    free (buf);
    return NULL;
  }
  buf = g_realloc (buf, len + 1);
  buf[len] = '\0';
  if (!gf_check_text (path, buf, len, err)) {
    free (buf);
    return NULL;
  }
  return buf;
}

/* Create the state directory (mode 0700) and its originals/ if needed. */
static bool
ensure_state_dir (GfCtx *c, GError **err)
{
  if (!gf_check_path (c, c->state_dir, err))
    return false;
  g_autofree char *odir = g_strdup_printf ("%s/originals", c->state_dir);
  if (guestfs_is_dir (c->g, odir) > 0 && c->manifest->entries->len > 0)
    return true;
  /* No manifest entry yet: whatever is there was not made by this manifest (a leftover, or a
   * trap such as originals/0001 -> /etc/shadow); start it afresh. */
  if (c->manifest->entries->len == 0 && guestfs_rm_rf (c->g, odir) == -1)
    return guest_error (c, err, "remove", odir);
  if (guestfs_mkdir_p (c->g, odir) == -1 || guestfs_chmod (c->g, 0700, c->state_dir) == -1)
    return guest_error (c, err, "mkdir", odir);
  return true;
}

/* Record PATH in the manifest before its first change: back it up if it exists. */
static bool
record (GfCtx *c, const char *path, GError **err)
{
  if (gf_manifest_find (c->manifest, path))
    return true;
  if (c->dry_run)
    return true;
  if (!ensure_state_dir (c, err))
    return false;
  if (gf_exists (c, path)) {
    g_autofree char *rel = g_strdup_printf ("originals/%04u", c->manifest->entries->len + 1);
    g_autofree char *dst = g_strdup_printf ("%s/%s", c->state_dir, rel);
    if (guestfs_cp_a (c->g, path, dst) == -1)
      return guest_error (c, err, "back up", path);
    gf_manifest_add (c->manifest, GF_CHANGE_MODIFIED, path, rel);
  } else
    gf_manifest_add (c->manifest, GF_CHANGE_CREATED, path, NULL);
  c->manifest_dirty = true;
  return gf_manifest_save (c, err);
}

bool
gf_mkdir (GfCtx *c, const char *path, GError **err)
{
  long mode;
  if (!gf_check_path (c, path, err))
    return false;
  int r = lstat_mode (c, path, &mode, NULL);
  if (r == 1) {
    if (S_ISDIR (mode))
      return true;
    g_set_error (err, GF_ERROR, GF_ERROR_UNSAFE, "%s: exists and is not a directory", path);
    return false;
  }
  if (r < 0)
    return guest_error (c, err, "lstat", path);
  g_autofree char *parent = g_path_get_dirname (path);
  if (strcmp (parent, "/") != 0 && !gf_mkdir (c, parent, err))
    return false;
  gf_report (c, "mkdir", path, "directory for guestfix's files");
  if (c->dry_run)
    return true;
  if (!gf_manifest_find (c->manifest, path)) {
    if (!ensure_state_dir (c, err))
      return false;
    gf_manifest_add (c->manifest, GF_CHANGE_MKDIR, path, NULL);
    c->manifest_dirty = true;
    if (!gf_manifest_save (c, err))
      return false;
  }
  if (guestfs_mkdir (c->g, path) == -1)
    return guest_error (c, err, "mkdir", path);
  return true;
}

bool
gf_write (GfCtx *c, const char *path, const char *content, size_t len,
          const char *why, GError **err)
{
  if (!gf_check_path (c, path, err))
    return false;
  bool existed = gf_exists (c, path);
  if (!existed) {
    g_autofree char *parent = g_path_get_dirname (path);
    if (!gf_mkdir (c, parent, err))
      return false;
  }
  gf_report (c, existed ? "modify" : "create", path, "%s", why);
  if (c->dry_run)
    return true;
  if (!record (c, path, err))
    return false;
  if (guestfs_write (c->g, path, content, len) == -1)
    return guest_error (c, err, "write", path);
  return true;
}

bool
gf_save_original (GfCtx *c, const char *path, GError **err)
{
  if (!gf_check_path (c, path, err))
    return false;
  return record (c, path, err);
}

bool
gf_run (GfCtx *c, const char *const *argv, const char *why, GError **err)
{
  g_autofree char *cmd = g_strjoinv (" ", (char **) argv);
  gf_report (c, "run", cmd, "%s", why);
  if (c->dry_run)
    return true;
  gint64 t0 = g_get_monotonic_time ();
  /* The guest's own tool, with its scratch files (TMPDIR) in the appliance's RAM (/dev/shm,
   * bound into the guest while commands run) instead of on the guest disk: some 13% faster
   * for update-initramfs under TCG, and the same output. */
  g_autoptr (GPtrArray) full = g_ptr_array_new ();
  const char *const wrap[] = {
    "/bin/sh", "-c", "[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm; exec \"$@\"",
    "guestfix-run",
  };
  for (size_t i = 0; i < G_N_ELEMENTS (wrap); i++)
    g_ptr_array_add (full, (gpointer) wrap[i]);
  for (size_t i = 0; argv[i]; i++)
    g_ptr_array_add (full, (gpointer) argv[i]);
  g_ptr_array_add (full, NULL);
  char *out = guestfs_command (c->g, (char **) full->pdata);
  if (out == NULL)
    return guest_error (c, err, "run", cmd);
  if (c->verbose)
    g_printerr ("guestfix: %s took %.1f s; output:\n%s", cmd,
                (g_get_monotonic_time () - t0) / 1e6, out);
  free (out);
  return true;
}

bool
gf_manifest_load (GfCtx *c, GError **err)
{
  g_autofree char *path = g_strdup_printf ("%s/manifest", c->state_dir);
  bool missing;
  g_autofree char *text = gf_read (c, path, GF_MAX_CONFIG_SIZE, &missing, err);
  if (text == NULL && !missing)
    return false;
  gf_manifest_free (c->manifest);
  c->manifest = text ? gf_manifest_parse (path, text, err) : gf_manifest_new ();
  return c->manifest != NULL;
}

bool
gf_manifest_save (GfCtx *c, GError **err)
{
  if (c->dry_run || !c->manifest_dirty)
    return true;
  g_autofree char *path = g_strdup_printf ("%s/manifest", c->state_dir);
  g_autofree char *text = gf_manifest_format (c->manifest);
  if (!ensure_state_dir (c, err) || !gf_check_path (c, path, err))
    return false;
  if (guestfs_write (c->g, path, text, strlen (text)) == -1)
    return guest_error (c, err, "write", path);
  c->manifest_dirty = false;
  return true;
}

bool
gf_revert (GfCtx *c, GError **err)
{
  GPtrArray *es = c->manifest->entries;
  if (es->len == 0) {
    gf_report (c, "note", c->state_dir, "no guestfix manifest: nothing to revert");
    return true;
  }
  for (guint i = es->len; i-- > 0;) {
    const GfManifestEntry *e = es->pdata[i];
    long mode;
    if (!gf_check_path (c, e->path, err))
      return false;
    int r = lstat_mode (c, e->path, &mode, NULL);
    switch (e->kind) {
    case GF_CHANGE_MODIFIED: {
      g_autofree char *src = g_strdup_printf ("%s/%s", c->state_dir, e->backup);
      gf_report (c, "restore", e->path, "from %s", src);
      if (c->dry_run)
        break;
      if (!gf_check_path (c, src, err))
        return false;
      if (r == 1 && guestfs_rm_f (c->g, e->path) == -1)
        return guest_error (c, err, "remove", e->path);
      if (guestfs_cp_a (c->g, src, e->path) == -1)
        return guest_error (c, err, "restore", e->path);
      break;
    }
    case GF_CHANGE_CREATED:
      if (r != 1)
        break;
      gf_report (c, "remove", e->path, "created by guestfix");
      if (!c->dry_run && guestfs_rm_f (c->g, e->path) == -1)
        return guest_error (c, err, "remove", e->path);
      break;
    case GF_CHANGE_MKDIR:
      if (r != 1 || !S_ISDIR (mode))
        break;
      gf_report (c, "rmdir", e->path, "created by guestfix");
      if (!c->dry_run && guestfs_rmdir (c->g, e->path) == -1)
        gf_warning (c, "%s: not removed (not empty?)", e->path);
      break;
    case GF_CHANGE_LAST:
      g_assert_not_reached ();
    }
  }
  gf_report (c, "remove", c->state_dir, "manifest and originals");
  if (!c->dry_run && guestfs_rm_rf (c->g, c->state_dir) == -1)
    return guest_error (c, err, "remove", c->state_dir);
  g_ptr_array_set_size (es, 0);
  return true;
}
