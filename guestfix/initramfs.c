/* initramfs.c - virtio drivers into the initramfs, rebuilt with the guest's own generator:
 * initramfs-tools (Debian, Ubuntu), dracut (RHEL family, Fedora, SUSE) or mkinitcpio (Arch).
 *
 * Only the kernels installed in /boot are rebuilt, each one once, and only when the
 * configuration changed.  The images are saved before the generator rewrites them, so revert
 * restores them byte for byte. */
#include "guestfix.h"

#include <string.h>
#include <guestfs.h>

typedef enum { TOOL_INITRAMFS_TOOLS, TOOL_DRACUT, TOOL_MKINITCPIO, TOOL_LAST } tool_kind;

/* The generators, looked up by their program in the guest (first match wins). */
static const struct {
  const char *name;
  const char *prog[3];
} tools[] = {
  [TOOL_INITRAMFS_TOOLS] = { "initramfs-tools", { "/usr/sbin/update-initramfs",
                                                  "/sbin/update-initramfs" } },
  [TOOL_DRACUT] = { "dracut", { "/usr/bin/dracut", "/sbin/dracut", "/usr/sbin/dracut" } },
  [TOOL_MKINITCPIO] = { "mkinitcpio", { "/usr/bin/mkinitcpio", "/sbin/mkinitcpio" } },
};
G_STATIC_ASSERT (G_N_ELEMENTS (tools) == TOOL_LAST);

static const char *
find_prog (GfCtx *c, tool_kind t)
{
  for (size_t i = 0; i < G_N_ELEMENTS (tools[t].prog) && tools[t].prog[i]; i++)
    if (guestfs_exists (c->g, tools[t].prog[i]) > 0)
      return tools[t].prog[i];
  return NULL;
}

/* Kernel versions with both /lib/modules/KVER and /boot/vmlinuz-KVER. */
static GPtrArray *
kernels (GfCtx *c)
{
  GPtrArray *k = g_ptr_array_new_with_free_func (g_free);
  guestfs_push_error_handler (c->g, NULL, NULL);
  g_auto (GStrv) mods = guestfs_ls (c->g, "/lib/modules");
  guestfs_pop_error_handler (c->g);
  for (size_t i = 0; mods && mods[i]; i++) {
    g_autofree char *img = g_strconcat ("/boot/vmlinuz-", mods[i], NULL);
    if (gf_exists (c, img))
      gf_push (k, mods[i]);
  }
  return k;
}

/* Edit config file PATH with EDIT; *changed says whether it was written. */
typedef char *(*editor_fn) (const char *, const char *, bool *, GError **);
static bool
edit_config (GfCtx *c, const char *path, editor_fn edit, bool *changed, GError **err)
{
  bool missing;
  g_autofree char *text = gf_read (c, path, GF_MAX_CONFIG_SIZE, &missing, err);
  if (text == NULL && !missing)
    return false;
  g_autofree char *nt = edit (path, text ? text : "", changed, err);
  if (nt == NULL)
    return false;
  return !*changed || gf_write (c, path, nt, strlen (nt), "add virtio drivers", err);
}

static bool
rebuild_initramfs_tools (GfCtx *c, const char *prog, GPtrArray *kv, GError **err)
{
  for (guint i = 0; i < kv->len; i++) {
    g_autofree char *img = g_strconcat ("/boot/initrd.img-", (char *) kv->pdata[i], NULL);
    if (!gf_save_original (c, img, err))
      return false;
    const char *argv[] = { prog, "-u", "-k", kv->pdata[i], NULL };
    if (!gf_run (c, argv, "rebuild the initramfs with the virtio drivers", err))
      return false;
  }
  return true;
}

static bool
rebuild_dracut (GfCtx *c, const char *prog, GPtrArray *kv, GError **err)
{
  for (guint i = 0; i < kv->len; i++) {
    const char *k = kv->pdata[i];
    /* RHEL/Fedora name it initramfs-KVER.img, SUSE initrd-KVER. */
    g_autofree char *rh = g_strconcat ("/boot/initramfs-", k, ".img", NULL);
    g_autofree char *suse = g_strconcat ("/boot/initrd-", k, NULL);
    const char *img = gf_exists (c, suse) && !gf_exists (c, rh) ? suse : rh;
    if (!gf_save_original (c, img, err))
      return false;
    const char *argv[] = { prog, "-f", img, k, NULL };
    if (!gf_run (c, argv, "rebuild the initramfs with the virtio drivers", err))
      return false;
  }
  return true;
}

static bool
rebuild_mkinitcpio (GfCtx *c, const char *prog, GError **err)
{
  g_auto (GStrv) imgs = guestfs_glob_expand (c->g, "/boot/initramfs-*.img");
  for (size_t i = 0; imgs && imgs[i]; i++)
    if (!gf_save_original (c, imgs[i], err))
      return false;
  const char *argv[] = { prog, "-P", NULL };
  return gf_run (c, argv, "rebuild every preset's initramfs with the virtio drivers", err);
}

bool
gf_initramfs_adapt (GfCtx *c, GError **err)
{
  tool_kind t;
  const char *prog = NULL;
  for (t = 0; t < TOOL_LAST && prog == NULL; t++)
    prog = find_prog (c, t);
  if (prog == NULL) {
    gf_warning (c, "no initramfs generator (initramfs-tools, dracut, mkinitcpio) found; "
                "virtio drivers not added");
    return true;
  }
  t--;
  g_autoptr (GPtrArray) kv = kernels (c);
  if (kv->len == 0) {
    gf_warning (c, "no kernel with modules found in /boot; initramfs not rebuilt");
    return true;
  }

  bool changed = false;
  switch (t) {
  case TOOL_INITRAMFS_TOOLS:
    return edit_config (c, "/etc/initramfs-tools/modules", gf_modules_list_edit, &changed, err) &&
           (!changed || rebuild_initramfs_tools (c, prog, kv, err));
  case TOOL_DRACUT: {
    const char *path = "/etc/dracut.conf.d/90-guestfix-virtio.conf";
    g_autofree char *want = gf_dracut_conf ();
    bool missing;
    g_autofree char *have = gf_read (c, path, GF_MAX_CONFIG_SIZE, &missing, err);
    if (have == NULL && !missing)
      return false;
    if (have && strcmp (have, want) == 0)
      return true;
    return gf_write (c, path, want, strlen (want), "add virtio drivers", err) &&
           rebuild_dracut (c, prog, kv, err);
  }
  case TOOL_MKINITCPIO:
    return edit_config (c, "/etc/mkinitcpio.conf", gf_mkinitcpio_edit, &changed, err) &&
           (!changed || rebuild_mkinitcpio (c, prog, err));
  case TOOL_LAST:
    break;
  }
  g_assert_not_reached ();
}
