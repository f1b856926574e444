/*
 * Velo object store: the bounded XML reader for S3 replies.  It is no XML
 * parser: S3's ListObjectsV2 results and error bodies are flat enough that
 * finding "<Tag>" and the next "</Tag>" reads them, and nothing here needs a
 * nesting of one tag in itself.
 *
 * The server is treated as hostile: every scan is bounded by the buffer's
 * length (the body need not be NUL-terminated), there is no recursion and no
 * allocation beyond the decoded text, and a malformed entity or a byte that
 * cannot be in a key makes the text fail instead of being guessed at.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "s3-xml.h"

#define TAG_MAX 64

bool s3_xml_next(const char *xml, size_t len, size_t *pos, const char *tag,
                 const char **val, size_t *vlen)
{
    char open[TAG_MAX + 3], close[TAG_MAX + 4], empty[TAG_MAX + 4];
    size_t ol, cl, el, i;

    if (strlen(tag) > TAG_MAX || *pos > len) {
        return false;
    }
    ol = g_snprintf(open, sizeof(open), "<%s>", tag);
    cl = g_snprintf(close, sizeof(close), "</%s>", tag);
    el = g_snprintf(empty, sizeof(empty), "<%s/>", tag);
    for (i = *pos; i < len; i++) {
        const char *p = xml + i, *end;

        if (*p != '<') {
            continue;
        }
        if (len - i >= el && memcmp(p, empty, el) == 0) {
            *val = p;
            *vlen = 0;
            *pos = i + el;
            return true;
        }
        if (len - i < ol || memcmp(p, open, ol) != 0) {
            continue;
        }
        end = g_strstr_len(p + ol, len - i - ol, close);
        /* g_strstr_len stops at a NUL; a NUL inside the body ends it too. */
        if (!end) {
            return false;
        }
        *val = p + ol;
        *vlen = end - (p + ol);
        *pos = (end - xml) + cl;
        return true;
    }
    return false;
}

/* Decode one entity at @p (after '&', before ';', @n bytes); -1 if bad. */
static int entity(const char *p, size_t n)
{
    static const struct { const char *name; char c; } named[] = {
        { "amp", '&' }, { "lt", '<' }, { "gt", '>' },
        { "quot", '"' }, { "apos", '\'' },
    };
    unsigned long v = 0;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(named); i++) {
        if (n == strlen(named[i].name) && memcmp(p, named[i].name, n) == 0) {
            return named[i].c;
        }
    }
    if (n < 2 || n > 8 || p[0] != '#') {
        return -1;
    }
    if (p[1] == 'x' || p[1] == 'X') {
        for (i = 2; i < n; i++) {
            if (!g_ascii_isxdigit(p[i])) {
                return -1;
            }
            v = v * 16 + g_ascii_xdigit_value(p[i]);
        }
        if (n == 2) {
            return -1;
        }
    } else {
        for (i = 1; i < n; i++) {
            if (!g_ascii_isdigit(p[i])) {
                return -1;
            }
            v = v * 10 + (p[i] - '0');
        }
    }
    return v > 0x10ffff ? -1 : (int)v;
}

char *s3_xml_text(const char *val, size_t vlen, bool sanitize)
{
    g_autoptr(GString) out = g_string_sized_new(vlen + 1);
    size_t i = 0;

    while (i < vlen) {
        int c = (unsigned char)val[i];

        if (c == '&') {
            const char *semi = memchr(val + i + 1, ';',
                                      MIN(vlen - i - 1, (size_t)10));
            if (!semi || (c = entity(val + i + 1, semi - val - i - 1)) < 0) {
                if (!sanitize) {
                    return NULL;
                }
                c = '?';
                semi = val + i;
            }
            i = semi - val + 1;
        } else {
            i++;
        }
        if (c < 0x20 || c > 0x7e) {
            if (!sanitize) {
                return NULL;
            }
            c = '?';
        }
        g_string_append_c(out, c);
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

char *s3_xml_get(const char *xml, size_t len, const char *tag,
                 bool sanitize)
{
    const char *v;
    size_t vl, pos = 0;

    if (!s3_xml_next(xml, len, &pos, tag, &v, &vl)) {
        return NULL;
    }
    return s3_xml_text(v, vl, sanitize);
}
