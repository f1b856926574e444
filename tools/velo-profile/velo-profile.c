/*
 * velo-profile: list, show and drop Velo boot profiles (the files that the
 * velo driver records beside its cache files; see velo-profile.1 and
 * docs/profile.md).  Pure C on block/profile.c; needs no QEMU.
 *
 *   velo-profile list [DIR|FILE]...   one line per profile (default: .)
 *   velo-profile show FILE            the header and every run
 *   velo-profile drop FILE...         delete profiles (never other files)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "profile.h"

static const char usage[] =
    "Usage: velo-profile list [DIR|FILE]...\n"
    "       velo-profile show FILE\n"
    "       velo-profile drop FILE...\n"
    "\n"
    "List, show or delete Velo boot profiles (*.profile files written by the\n"
    "velo block driver beside its cache files, and per template).\n"
    "\n"
    "  list   one line per profile: path, kind, template, extents, runs,\n"
    "         MiB, recording length and date; DIR lists its *.profile files\n"
    "         (default: the current directory); unusable files show why\n"
    "  show   the header fields and every run (first extent, count, ms)\n"
    "  drop   delete the files; a file that is not a velo profile is refused\n"
    "\n"
    "Exit status: 0 on success, 1 if a file could not be read or deleted,\n"
    "2 on a usage error.  See velo-profile(1) and docs/profile.md.\n";

static void format_time(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        g_strlcpy(buf, "?", len);
    }
}

/* One line for @path; returns 0 if it is a valid profile. */
static int list_one(const char *path)
{
    g_autoptr(VeloProfile) p = NULL;
    g_autofree char *err = NULL;
    char when[32];

    if (velo_profile_load(path, &p, &err) < 0) {
        printf("%s\tINVALID\t%s\n", path, err);
        return 1;
    }
    format_time(p->recorded, when, sizeof(when));
    printf("%s\t%s\t%s\t%" G_GUINT64_FORMAT " extents\t%u runs\t%.1f MiB\t"
           "%.1f s\t%s\n", path,
           (p->flags & VELO_PROFILE_F_TEMPLATE) ? "template" : "disk",
           p->template_name[0] ? p->template_name : "-", p->n_extents,
           p->n_runs, velo_profile_bytes(p) / 1048576.0, p->duration_ms / 1000.0,
           when);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_list(int argc, char **argv)
{
    const char *dflt[] = { "." };
    const char **args = argc ? (const char **)argv : dflt;
    int i, n = argc ? argc : 1, ret = 0;

    for (i = 0; i < n; i++) {
        g_autoptr(GPtrArray) names = NULL;
        g_autoptr(GError) gerr = NULL;
        GDir *d;
        const char *name;
        guint j;

        if (!g_file_test(args[i], G_FILE_TEST_IS_DIR)) {
            list_one(args[i]);
            continue;
        }
        d = g_dir_open(args[i], 0, &gerr);
        if (!d) {
            fprintf(stderr, "velo-profile: %s\n", gerr->message);
            ret = 1;
            continue;
        }
        names = g_ptr_array_new_with_free_func(g_free);
        while ((name = g_dir_read_name(d))) {
            if (g_str_has_suffix(name, VELO_PROFILE_SUFFIX)) {
                g_ptr_array_add(names, g_build_filename(args[i], name, NULL));
            }
        }
        g_dir_close(d);
        qsort(names->pdata, names->len, sizeof(char *), cmp_names);
        for (j = 0; j < names->len; j++) {
            list_one(names->pdata[j]);
        }
    }
    return ret;
}

static int cmd_show(const char *path)
{
    g_autoptr(VeloProfile) p = NULL;
    g_autofree char *err = NULL;
    char when[32];
    uint32_t i, j;

    if (velo_profile_load(path, &p, &err) < 0) {
        fprintf(stderr, "velo-profile: %s\n", err);
        return 1;
    }
    format_time(p->recorded, when, sizeof(when));
    printf("path: %s\n", path);
    printf("kind: %s\n", (p->flags & VELO_PROFILE_F_TEMPLATE) ?
           "template" : "disk");
    printf("template: %s\n", p->template_name[0] ? p->template_name : "-");
    printf("disk-size: %" G_GUINT64_FORMAT "\n", p->disk_size);
    printf("extent-size: %u\n", p->extent_size);
    printf("disk-id: ");
    for (j = 0; j < sizeof(p->disk_id); j++) {
        printf("%02x", p->disk_id[j]);
    }
    printf("\nextents: %" G_GUINT64_FORMAT "\n", p->n_extents);
    printf("runs: %u\n", p->n_runs);
    printf("bytes: %" G_GUINT64_FORMAT "\n", velo_profile_bytes(p));
    printf("duration-ms: %u\n", p->duration_ms);
    printf("recorded: %s\n", when);
    printf("# run first-extent count time-ms\n");
    for (i = 0; i < p->n_runs; i++) {
        printf("%u %" G_GUINT64_FORMAT " %u %u\n", i, p->runs[i].first,
               p->runs[i].count, p->runs[i].time_ms);
    }
    return 0;
}

static int cmd_drop(int argc, char **argv)
{
    int i, ret = 0;

    for (i = 0; i < argc; i++) {
        g_autofree char *err = NULL;
        if (velo_profile_unlink(argv[i], &err) < 0) {
            fprintf(stderr, "velo-profile: %s\n", err);
            ret = 1;
        }
    }
    return ret;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "list")) {
        return cmd_list(argc - 2, argv + 2);
    }
    if (argc == 3 && !strcmp(argv[1], "show")) {
        return cmd_show(argv[2]);
    }
    if (argc >= 3 && !strcmp(argv[1], "drop")) {
        return cmd_drop(argc - 2, argv + 2);
    }
    fputs(usage, stderr);
    return 2;
}
