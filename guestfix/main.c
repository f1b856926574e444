/* main.c - guestfix: options, the flow (check images, launch, inspect, adapt or revert, save
 * the manifest, report) and exit codes. */
#include "guestfix.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <guestfs.h>

#define VERSION "1.0"

typedef struct {
  char *file;        /* host file, or NULL for NBD */
  char *format;
  char *nbd_server;  /* "unix:/path" or "host:port" */
  char *nbd_export;
} drive;

static void
usage (int status)
{
  FILE *f = status ? stderr : stdout;
  fprintf (f,
    "guestfix: adapt a guest disk for a KVM cloud, reversibly\n"
    "usage: guestfix [OPTIONS] --format FMT -a DISK [--format FMT -a DISK ...]\n"
    "       guestfix [OPTIONS] -a nbd+unix:///EXPORT?socket=PATH | nbd://HOST[:PORT]/EXPORT\n"
    "Options:\n"
    "  -a, --add DISK|URI   disk image (needs --format before it) or NBD URI (raw)\n"
    "      --nbd URI        same as -a URI\n"
    "      --format FMT     format of the following -a (raw, qcow2, vmdk, ...); never probed\n"
    "  -n, --dry-run        print the plan; change nothing\n"
    "      --revert         undo every change recorded in the guest's manifest\n"
    "      --keep-ip        give the cloud NIC the old NIC's static address (default: DHCP)\n"
    "      --virtio-win DIR Windows: host directory with the virtio drivers (.sys, .inf, .cat)\n"
    "      --json FILE      write a JSON report of every action to FILE ('-': stdout)\n"
    "      --allow-backing  open images with backing/data files or extents on the host\n"
    "      --smp N          appliance vCPUs (default 2)\n"
    "  -m, --memsize MB     appliance memory (default 1024)\n"
    "  -v, --verbose        verbose messages    -x  trace libguestfs calls\n"
    "  -V, --version        print the version   --help  this text\n"
    "Exit: 0 done or nothing to do, 1 failed, 2 usage, 3 unsafe input refused,\n"
    "      4 no supported guest OS.  See guestfix(1).\n");
  exit (status);
}

/* Parse an NBD URI into D; false if URI is not one. */
static bool
parse_nbd (const char *uri, drive *d)
{
  const char *rest;
  if ((rest = g_str_has_prefix (uri, "nbd+unix://") ? uri + 11 : NULL)) {
    const char *q = strstr (rest, "?socket=");
    if (q == NULL)
      return false;
    const char *exp = rest[0] == '/' ? rest + 1 : rest;
    d->nbd_export = g_strndup (exp, q - exp);
    d->nbd_server = g_strconcat ("unix:", q + 8, NULL);
    return true;
  }
  if ((rest = g_str_has_prefix (uri, "nbd://") ? uri + 6 : NULL)) {
    const char *slash = strchr (rest, '/');
    g_autofree char *hp = slash ? g_strndup (rest, slash - rest) : g_strdup (rest);
    d->nbd_server = strchr (hp, ':') ? g_strdup (hp) : g_strconcat (hp, ":10809", NULL);
    d->nbd_export = g_strdup (slash ? slash + 1 : "");
    return true;
  }
  return false;
}

static bool
add_drive (guestfs_h *g, const drive *d, bool readonly)
{
  if (d->nbd_server) {
    char *server[] = { d->nbd_server, NULL };
    return guestfs_add_drive_opts (g, d->nbd_export,
                                   GUESTFS_ADD_DRIVE_OPTS_FORMAT, d->format,
                                   GUESTFS_ADD_DRIVE_OPTS_PROTOCOL, "nbd",
                                   GUESTFS_ADD_DRIVE_OPTS_SERVER, server,
                                   GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly,
                                   -1) == 0;
  }
  return guestfs_add_drive_opts (g, d->file,
                                 GUESTFS_ADD_DRIVE_OPTS_FORMAT, d->format,
                                 GUESTFS_ADD_DRIVE_OPTS_READONLY, readonly,
                                 -1) == 0;
}

int
main (int argc, char **argv)
{
  enum { OPT_FORMAT = 256, OPT_NBD, OPT_REVERT, OPT_KEEP_IP, OPT_VIRTIO_WIN, OPT_JSON,
         OPT_ALLOW_BACKING, OPT_SMP, OPT_HELP };
  static const struct option longopts[] = {
    { "add", required_argument, NULL, 'a' },
    { "nbd", required_argument, NULL, OPT_NBD },
    { "format", required_argument, NULL, OPT_FORMAT },
    { "dry-run", no_argument, NULL, 'n' },
    { "revert", no_argument, NULL, OPT_REVERT },
    { "keep-ip", no_argument, NULL, OPT_KEEP_IP },
    { "virtio-win", required_argument, NULL, OPT_VIRTIO_WIN },
    { "json", required_argument, NULL, OPT_JSON },
    { "allow-backing", no_argument, NULL, OPT_ALLOW_BACKING },
    { "smp", required_argument, NULL, OPT_SMP },
    { "memsize", required_argument, NULL, 'm' },
    { "verbose", no_argument, NULL, 'v' },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
  };
  GfCtx ctx = { 0 }, *c = &ctx;
  g_autoptr (GArray) drives = g_array_new (FALSE, TRUE, sizeof (drive));
  const char *format = NULL, *json = NULL;
  bool revert = false, trace = false, allow_backing = false;
  int smp = 2, memsize = 1024, opt;

  while ((opt = getopt_long (argc, argv, "a:nm:vxV", longopts, NULL)) != -1) {
    drive d = { 0 };
    switch (opt) {
    case 'a':
    case OPT_NBD:
      if (parse_nbd (optarg, &d))
        d.format = g_strdup (format ? format : "raw");
      else if (opt == OPT_NBD || g_str_has_prefix (optarg, "nbd")) {
        fprintf (stderr, "guestfix: %s: not an NBD URI (nbd://HOST[:PORT]/EXPORT or "
                 "nbd+unix:///EXPORT?socket=PATH)\n", optarg);
        return GF_EXIT_USAGE;
      } else if (format == NULL) {
        fprintf (stderr, "guestfix: -a %s: give --format FMT before it (formats are never "
                 "probed)\n", optarg);
        return GF_EXIT_USAGE;
      } else {
        d.file = g_strdup (optarg);
        d.format = g_strdup (format);
      }
      g_array_append_val (drives, d);
      break;
    case OPT_FORMAT:
      if (strcmp (optarg, "auto") == 0) {
        fprintf (stderr, "guestfix: --format auto is refused: name the format\n");
        return GF_EXIT_USAGE;
      }
      format = optarg;
      break;
    case 'n': c->dry_run = true; break;
    case OPT_REVERT: revert = true; break;
    case OPT_KEEP_IP: c->keep_ip = true; break;
    case OPT_VIRTIO_WIN: c->virtio_win = optarg; break;
    case OPT_JSON: json = optarg; break;
    case OPT_ALLOW_BACKING: allow_backing = true; break;
    case OPT_SMP: smp = atoi (optarg); break;
    case 'm': memsize = atoi (optarg); break;
    case 'v': c->verbose = true; break;
    case 'x': trace = true; break;
    case 'V': printf ("guestfix %s\n", VERSION); return GF_EXIT_OK;
    case OPT_HELP: usage (GF_EXIT_OK); break;
    default: usage (GF_EXIT_USAGE);
    }
  }
  if (optind != argc || drives->len == 0 || smp < 1 || memsize < 256)
    usage (GF_EXIT_USAGE);

  c->report = g_ptr_array_new_with_free_func (gf_report_item_free);
  c->manifest = gf_manifest_new ();
  g_autoptr (GError) err = NULL;
  int rc = GF_EXIT_OK;
  gint64 t0 = g_get_monotonic_time ();

  /* 1. Refuse hostile images before anything opens them. */
  for (guint i = 0; i < drives->len; i++) {
    const drive *d = &g_array_index (drives, drive, i);
    if (d->file && !gf_check_image (d->file, d->format, allow_backing, &err)) {
      rc = GF_EXIT_UNSAFE;
      goto out;
    }
  }

  /* 2. Launch the appliance once: every step runs in this one launch. */
  c->g = guestfs_create ();
  if (c->g == NULL) {
    g_set_error (&err, GF_ERROR, GF_ERROR_FAILED, "guestfs_create failed");
    rc = GF_EXIT_FAILED;
    goto out;
  }
  guestfs_set_verbose (c->g, c->verbose);
  guestfs_set_trace (c->g, trace);
  guestfs_set_smp (c->g, smp);
  guestfs_set_memsize (c->g, memsize);
  for (guint i = 0; i < drives->len; i++)
    if (!add_drive (c->g, &g_array_index (drives, drive, i), c->dry_run)) {
      g_set_error (&err, GF_ERROR, GF_ERROR_FAILED, "%s", guestfs_last_error (c->g));
      rc = GF_EXIT_FAILED;
      goto out;
    }
  if (guestfs_launch (c->g) == -1) {
    g_set_error (&err, GF_ERROR, GF_ERROR_FAILED, "launch: %s", guestfs_last_error (c->g));
    rc = GF_EXIT_FAILED;
    goto out;
  }
  if (c->verbose)
    g_printerr ("guestfix: launched in %.1f s\n", (g_get_monotonic_time () - t0) / 1e6);

  /* 3. Inspect and mount; 4. adapt or revert. */
  if (!gf_inspect_and_mount (c, c->dry_run, &err)) {
    rc = GF_EXIT_UNSUPPORTED;
    goto out;
  }
  bool windows = strcmp (c->type, "windows") == 0;
  if (!windows && strcmp (c->type, "linux") != 0) {
    g_set_error (&err, GF_ERROR, GF_ERROR_FAILED, "unsupported guest type %s", c->type);
    rc = GF_EXIT_UNSUPPORTED;
    goto out;
  }
  c->state_dir = g_strdup (windows ? "/guestfix" : GF_STATE_DIR);
  printf ("guestfix: %s guest (%s)%s\n", c->type, c->distro, c->dry_run ? ", dry run" : "");
  bool (*adapt) (GfCtx *, GError **) = windows ? gf_windows_adapt : gf_linux_adapt;
  bool ok = gf_manifest_load (c, &err);
  /* Preflight: a silent dry run reads, size-checks and parses everything first, so a hostile
   * or malformed file stops guestfix before its first change. */
  if (ok && !revert && !c->dry_run) {
    c->dry_run = c->preflight = true;
    ok = adapt (c, &err);
    c->dry_run = c->preflight = false;
  }
  ok = ok && (revert ? gf_revert (c, &err) : adapt (c, &err)) && gf_manifest_save (c, &err);
  if (!ok) {
    rc = err && err->code == GF_ERROR_UNSAFE ? GF_EXIT_UNSAFE : GF_EXIT_FAILED;
    /* Whatever was changed is in the manifest already: --revert undoes it. */
    g_autoptr (GError) e2 = NULL;
    if (!gf_manifest_save (c, &e2))
      g_printerr ("guestfix: %s\n", e2->message);
  }
  if (guestfs_shutdown (c->g) == -1 && rc == GF_EXIT_OK) {
    g_set_error (&err, GF_ERROR, GF_ERROR_FAILED, "shutdown: %s", guestfs_last_error (c->g));
    rc = GF_EXIT_FAILED;
  }
  if (rc == GF_EXIT_OK)
    printf ("guestfix: %u %s%s in %.1f s\n", c->changes, c->dry_run ? "planned " : "",
            c->changes == 1 ? "change" : "changes", (g_get_monotonic_time () - t0) / 1e6);

 out:
  if (err)
    g_printerr ("guestfix: error: %s\n", err->message);
  if (json) {
    g_autoptr (GError) jerr = NULL;
    if (!gf_report_write_json (c, json, revert ? "revert" : "adapt", rc, &jerr)) {
      g_printerr ("guestfix: --json: %s\n", jerr->message);
      if (rc == GF_EXIT_OK)
        rc = GF_EXIT_FAILED;
    }
  }
  if (c->g)
    guestfs_close (c->g);
  gf_manifest_free (c->manifest);
  gf_devmap_clear (&c->devmap);
  g_ptr_array_unref (c->report);
  g_free (c->root);
  g_free (c->type);
  g_free (c->distro);
  g_free (c->state_dir);
  return rc;
}
