/* guestfix.h - the contract between guestfix's files, grouped by file.
 *
 * Two layers:
 *   - pure editors (string in, string out; no libguestfs): fstab.c, grub.c, initramfs-conf.c,
 *     netcfg-*.c, manifest.c (format/parse), editutil.c.  The unit tests link only these.
 *   - guest work on a launched libguestfs handle: everything else.
 *
 * Editors never modify their input.  They return a newly allocated string (the input copied when
 * nothing changes) and set *changed, or return NULL and set a GError whose message names the
 * file and line ("/etc/fstab:3: ...") on a parse error.
 */
#ifndef GUESTFIX_H
#define GUESTFIX_H

#include <glib.h>
#include <stdbool.h>

#define GF_ERROR (gf_error_quark ())
GQuark gf_error_quark (void);
enum { GF_ERROR_PARSE = 1, GF_ERROR_UNSAFE, GF_ERROR_FAILED };

/* Exit codes (documented in guestfix.pod). */
enum {
  GF_EXIT_OK = 0,          /* done, or nothing to do */
  GF_EXIT_FAILED = 1,      /* an operation failed; see the message (revert is possible) */
  GF_EXIT_USAGE = 2,       /* bad command line */
  GF_EXIT_UNSAFE = 3,      /* refused a hostile or unsafe input; nothing was changed */
  GF_EXIT_UNSUPPORTED = 4, /* no (single) supported guest OS found; nothing was changed */
};

/* Largest configuration file guestfix reads from a guest (checked before reading). */
#define GF_MAX_CONFIG_SIZE (1024 * 1024)

/* ---- editutil.c: helpers shared by the editors ------------------------------------------- */

/* Split TEXT into lines without their '\n'.  A final line without '\n' is kept; *FINAL_NL says
 * whether TEXT ended with a newline.  Free with g_strfreev. */
char **gf_lines (const char *text, bool *final_nl);
/* Join LINES with '\n', adding a trailing newline when FINAL_NL. */
char *gf_unlines (char **lines, bool final_nl);
/* Append LINE (no '\n') to the string array builder ARR (a GPtrArray of char *). */
void gf_push (GPtrArray *arr, const char *line);
/* The leading whitespace of LINE, newly allocated. */
char *gf_indent_of (const char *line);
/* True if LINE is blank or a comment starting with one of COMMENT_CHARS after whitespace. */
bool gf_is_blank_or_comment (const char *line, const char *comment_chars);
/* Set a parse error "NAME:LINENO: message". */
void gf_parse_error (GError **err, const char *name, size_t lineno, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);
/* Netmask "255.255.255.0" to prefix length; -1 if not a contiguous IPv4 mask. */
int gf_netmask_to_prefix (const char *mask);
/* key=value files (NetworkManager keyfiles, ifcfg): the value of KEY in SECTION ("[ipv4]";
 * NULL for files without sections), unquoted, newly allocated; NULL if absent. */
char *gf_kv_get (const char *text, const char *section, const char *key);
/* Comment out every "KEY=..." line whose KEY is in KEYS, with WHY in the comment. */
char *gf_kv_comment_out (const char *text, const char *const *keys, const char *why,
                         bool *changed);
/* Check TEXT is editable: no NUL bytes inside LEN. */
bool gf_check_text (const char *name, const char *text, size_t len, GError **err);

/* A device-name map: guest device names (/dev/sda1) to stable specs ("UUID=..."). */
typedef struct {
  char *dev;   /* as the guest names it, e.g. /dev/sda1 */
  char *spec;  /* UUID=... or LABEL=... */
} GfDevMapEntry;
typedef struct {
  GfDevMapEntry *e;
  size_t n;
} GfDevMap;
/* The stable spec for DEV, or NULL when DEV is not an unstable device name we know. */
const char *gf_devmap_lookup (const GfDevMap *map, const char *dev);
void gf_devmap_add (GfDevMap *map, const char *dev, const char *spec);
void gf_devmap_clear (GfDevMap *map);

/* ---- fstab.c ------------------------------------------------------------------------------ */

/* Replace first fields naming unstable devices (in MAP) by UUID=/LABEL=.  Comments, spacing and
 * other fields are kept byte for byte.  Lines with fewer than 3 fields are parse errors. */
char *gf_fstab_edit (const char *name, const char *text, const GfDevMap *map,
                     bool *changed, GError **err);

/* ---- grub.c ------------------------------------------------------------------------------- */

/* The kernel arguments guestfix ensures: a serial console next to the existing one. */
/* Edit a kernel command line (space-separated): root=DEV mapped through MAP, and
 * "console=ttyS0,115200n8" added (with "console=tty0" first when there was no console=). */
char *gf_cmdline_edit (const char *cmdline, const GfDevMap *map, bool *changed);
/* /etc/default/grub: edit GRUB_CMDLINE_LINUX with gf_cmdline_edit (appended if missing);
 * comment out GRUB_DISABLE_LINUX_UUID=true.  Unbalanced quotes are parse errors. */
char *gf_grub_defaults_edit (const char *name, const char *text, const GfDevMap *map,
                             bool *changed, GError **err);
/* grub.cfg and BLS entries: edit the arguments of every "linux", "linux16", "linuxefi" and
 * BLS "options" line with gf_cmdline_edit. */
char *gf_grub_cfg_edit (const char *name, const char *text, const GfDevMap *map,
                        bool *changed, GError **err);
/* True when grub.cfg TEXT was written by grub-mkconfig (so it may be regenerated). */
bool gf_grub_cfg_is_generated (const char *text);

/* ---- initramfs-conf.c --------------------------------------------------------------------- */

/* The virtio modules guestfix adds to initramfs images. */
extern const char *const gf_virtio_modules[];
/* initramfs-tools /etc/initramfs-tools/modules: append missing module lines. */
char *gf_modules_list_edit (const char *name, const char *text, bool *changed, GError **err);
/* mkinitcpio.conf: add missing modules to MODULES=(...); parse error if the array is unclosed. */
char *gf_mkinitcpio_edit (const char *name, const char *text, bool *changed, GError **err);
/* The content of guestfix's dracut drop-in (add_drivers+=...). */
char *gf_dracut_conf (void);

/* ---- netcfg-*.c: network configuration editors -------------------------------------------- */

/* A static IPv4 configuration found on the old NIC. */
typedef struct {
  char *iface;    /* old NIC name, e.g. ens192 */
  char *address;  /* CIDR, e.g. 192.0.2.10/24 */
  char *gateway;  /* or NULL */
  char *dns;      /* space-separated, or NULL */
} GfIpConf;
void gf_ipconf_clear (GfIpConf *c);

/* The name guestfix gives the cloud (virtio) NIC, and the systemd .link file that pins it. */
#define GF_CLOUD_NIC "eth0"
char *gf_cloud_nic_link_file (void);

/* netcfg-ifupdown.c: /etc/network/interfaces. */
/* Find the first "iface X inet static" stanza (X not lo); false if none. */
bool gf_ifupdown_find_static (const char *text, GfIpConf *out);
/* Add a stanza for the cloud NIC: DHCP, or KEEP (if non-NULL) copied as static.  The old
 * stanzas stay (they still serve on the old platform).  No change if the cloud NIC already has
 * a stanza. */
char *gf_ifupdown_edit (const char *name, const char *text, const GfIpConf *keep,
                        bool *changed, GError **err);

/* netcfg-netplan.c: /etc/netplan/ *.yaml (indentation-based subset of YAML). */
bool gf_netplan_find_static (const char *text, GfIpConf *out);
/* Comment out match: macaddress: and set-name: pins; with ADD_CLOUD also add the cloud NIC
 * under network: ethernets: (DHCP, or KEEP as static) unless it is there.  Tabs in
 * indentation and a missing "network:" are parse errors. */
char *gf_netplan_edit (const char *name, const char *text, const GfIpConf *keep,
                       bool add_cloud, bool *changed, GError **err);

/* netcfg-nm.c: NetworkManager keyfiles. */
bool gf_nm_find_static (const char *text, GfIpConf *out);
/* Comment out mac-address= pins in an existing keyfile. */
char *gf_nm_neutralize (const char *name, const char *text, bool *changed, GError **err);
/* A keyfile for the cloud NIC (DHCP, or KEEP as static). */
char *gf_nm_cloud_keyfile (const GfIpConf *keep);

/* netcfg-ifcfg.c: ifcfg-* files (RHEL network-scripts, SUSE sysconfig). */
bool gf_ifcfg_find_static (const char *text, GfIpConf *out);
/* Comment out HWADDR=/MACADDR= pins. */
char *gf_ifcfg_neutralize (const char *name, const char *text, bool *changed, GError **err);
/* ifcfg-eth0 for the cloud NIC (DHCP, or KEEP as static). */
char *gf_ifcfg_cloud_file (const GfIpConf *keep);

/* netcfg-udev.c: udev rules pinning a MAC (70-persistent-net.rules): comment such lines out. */
char *gf_udev_rules_neutralize (const char *name, const char *text, bool *changed, GError **err);

/* ---- manifest.c: the record of changes kept inside the guest ------------------------------- */

#define GF_STATE_DIR "/var/lib/guestfix"   /* Linux; Windows uses /guestfix */
typedef enum {
  GF_CHANGE_MODIFIED,  /* the file existed; its original is in the backup */
  GF_CHANGE_CREATED,   /* the file did not exist; revert removes it */
  GF_CHANGE_MKDIR,     /* the directory did not exist; revert removes it if empty */
  GF_CHANGE_LAST
} GfChangeKind;
typedef struct {
  GfChangeKind kind;
  char *path;    /* guest path */
  char *backup;  /* relative to the state dir ("originals/0001"), or NULL */
} GfManifestEntry;
typedef struct {
  GPtrArray *entries;  /* of GfManifestEntry * */
} GfManifest;
GfManifest *gf_manifest_new (void);
void gf_manifest_free (GfManifest *m);
/* The entry for PATH, or NULL. */
GfManifestEntry *gf_manifest_find (GfManifest *m, const char *path);
void gf_manifest_add (GfManifest *m, GfChangeKind kind, const char *path, const char *backup);
/* Text form: a header line, then "KIND<TAB>PATH<TAB>BACKUP" lines, fields C-escaped. */
char *gf_manifest_format (const GfManifest *m);
GfManifest *gf_manifest_parse (const char *name, const char *text, GError **err);
const char *gf_change_kind_name (GfChangeKind k);

/* ---- guest context (main.c owns it) -------------------------------------------------------- */

typedef struct guestfs_h guestfs_h;
typedef struct {
  guestfs_h *g;
  bool dry_run;
  bool preflight;             /* a silent dry run before the real one (see main.c) */
  bool verbose;
  bool keep_ip;
  const char *virtio_win;     /* Windows: host directory with the user's virtio drivers */
  char *root;                 /* inspection root device */
  char *type;                 /* "linux", "windows" */
  char *distro;
  char *state_dir;            /* GF_STATE_DIR or the Windows one */
  GfManifest *manifest;       /* loaded at start; written back when dirty */
  bool manifest_dirty;
  unsigned changes;           /* changes made (or planned, in dry-run) this run */
  GPtrArray *report;          /* of GfReportItem * */
  GfDevMap devmap;            /* built once by gf_build_devmap */
  bool devmap_built;
} GfCtx;

/* ---- report.c: the plan (--dry-run), progress and the --json report --------------------- */

typedef struct {
  char *action;   /* "modify", "create", "mkdir", "run", "remove", "restore", "warning" */
  char *path;     /* file or command */
  char *detail;   /* why */
} GfReportItem;
/* Record (and print, prefixed by "would" in dry-run) one action. */
void gf_report (GfCtx *c, const char *action, const char *path, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);
void gf_warning (GfCtx *c, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
/* Write the JSON report to FILE ("-" for stdout). */
bool gf_report_write_json (GfCtx *c, const char *file, const char *mode, int exit_code,
                           GError **err);
void gf_report_item_free (gpointer p);

/* ---- guestio.c: safe guest file access, each change recorded in the manifest ---------------- */

/* Read a regular guest file: refuses symlinks (anywhere in the path), non-regular files,
 * files over MAX bytes and NUL bytes.  Returns NULL with *missing=true if it does not exist. */
char *gf_read (GfCtx *c, const char *path, size_t max, bool *missing, GError **err);
/* True if PATH exists in the guest (lstat; does not follow a final symlink). */
bool gf_exists (GfCtx *c, const char *path);
/* Replace or create the guest file PATH with CONTENT; the first change to a path saves the
 * original (or notes its creation) in the manifest.  In dry-run only reports. */
bool gf_write (GfCtx *c, const char *path, const char *content, size_t len,
               const char *why, GError **err);
/* Create directory PATH (and parents) with each creation recorded. */
bool gf_mkdir (GfCtx *c, const char *path, GError **err);
/* Save PATH's original before a guest tool rewrites it (no-op if already recorded). */
bool gf_save_original (GfCtx *c, const char *path, GError **err);
/* Run a guest command (argv) chrooted in the guest; reports it. */
bool gf_run (GfCtx *c, const char *const *argv, const char *why, GError **err);
/* Refuse PATH if it or a parent is a symlink, or it resolves outside where it is named. */
bool gf_check_path (GfCtx *c, const char *path, GError **err);
/* Load the manifest (empty if none) and write it back. */
bool gf_manifest_load (GfCtx *c, GError **err);
bool gf_manifest_save (GfCtx *c, GError **err);
/* Restore every recorded change, newest first, then remove the state directory. */
bool gf_revert (GfCtx *c, GError **err);

/* ---- inspect.c ---------------------------------------------------------------------------- */

/* Inspect, require one OS root, mount its filesystems (read-write unless READONLY). */
bool gf_inspect_and_mount (GfCtx *c, bool readonly, GError **err);
/* Map unstable guest device names (/dev/sda1, /dev/hda1, /dev/vda1, ...) to UUID=/LABEL=,
 * into c->devmap (built once; later calls return at once). */
bool gf_build_devmap (GfCtx *c, GError **err);

/* ---- linux.c: the Linux adaptation, step by step ------------------------------------------- */
bool gf_linux_adapt (GfCtx *c, GError **err);

/* ---- initramfs.c: virtio drivers in the initramfs, rebuilt with the guest's tool ----------- */
bool gf_initramfs_adapt (GfCtx *c, GError **err);

/* ---- bootloader.c: root=UUID and the serial console; regeneration with the guest's tool ---- */
bool gf_bootloader_adapt (GfCtx *c, const GfDevMap *map, GError **err);

/* ---- network.c: DHCP (or --keep-ip) on the cloud NIC; MAC/name pins neutralized ------------ */
bool gf_network_adapt (GfCtx *c, GError **err);

/* ---- hvtools.c: old-platform hypervisor tools disabled off that platform --------------------- */
bool gf_hvtools_adapt (GfCtx *c, GError **err);

/* ---- windows.c: virtio drivers and first-boot script through the registry -------------------- */
bool gf_windows_adapt (GfCtx *c, GError **err);

/* ---- safety.c: refuse hostile disk images before libguestfs opens them ---------------------- */
/* Run qemu-img info -f FMT --output=json on FILE; refuse backing files, external data files
 * and multi-file vmdk extents unless ALLOW_BACKING. */
bool gf_check_image (const char *file, const char *format, bool allow_backing, GError **err);

#endif /* GUESTFIX_H */
