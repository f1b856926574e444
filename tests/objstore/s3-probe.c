/*
 * s3-probe: open an S3 object store at an endpoint and run one operation,
 * printing one line with its result.  For test-s3-hostile.sh, which points
 * it at a server that answers like a broken or hostile S3.
 *
 *   s3-probe ENDPOINT list MAX     velo_obj_list of up to MAX keys
 *   s3-probe ENDPOINT listall MAX  velo_obj_list_all, at most MAX keys
 *   s3-probe ENDPOINT put KEY      velo_obj_put of 16 bytes
 *
 * Exit status: 0 the operation ran (whatever its result), 1 open failed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "objstore.h"

int main(int argc, char **argv)
{
    VeloObjConfig cfg = {
        .backend = "s3", .bucket = "bkt", .region = "us-east-1",
        .access_key = "AK", .secret_key = "SK",
        .timeout_ms = 3000, .connect_timeout_ms = 1000, .retries = 1,
    };
    g_autoptr(GError) err = NULL;
    VeloObjStore *s;
    int ret = -1;

    if (argc < 4) {
        fprintf(stderr, "usage: s3-probe ENDPOINT list MAX | listall MAX | put KEY\n");
        return 2;
    }
    cfg.endpoint = argv[1];
    s = velo_obj_open(&cfg, &err);
    if (!s) {
        printf("open failed: %s\n", err->message);
        return 1;
    }
    if (strcmp(argv[2], "list") == 0) {
        VeloObjList *l = NULL;

        ret = velo_obj_list(s, "", NULL, atoi(argv[3]), &l, &err);
        printf("list: %d%s%s\n", ret, err ? ": " : "", err ? err->message : "");
        if (l) {
            velo_obj_list_free(l);
        }
    } else if (strcmp(argv[2], "listall") == 0) {
        VeloObjList *l = NULL;

        ret = velo_obj_list_all(s, "", strtoull(argv[3], NULL, 10), &l, &err);
        printf("listall: %d%s%s\n", ret, err ? ": " : "",
               err ? err->message : "");
        if (l) {
            printf("keys: %u\n", l->items->len);
            velo_obj_list_free(l);
        }
    } else if (strcmp(argv[2], "put") == 0) {
        char data[16] = "velo s3-probe";

        ret = velo_obj_put(s, argv[3], data, sizeof(data), &err);
        printf("put: %d%s%s\n", ret, err ? ": " : "", err ? err->message : "");
    }
    velo_obj_close(s);
    return 0;
}
