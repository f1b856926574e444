/*
 * Unit tests of the bounded XML reader for S3 replies (block/s3-xml.c):
 * elements, empty elements, entities, and hostile input (unterminated
 * elements, buffers cut mid-tag, bad entities, random bytes) that must never
 * be read past its length.
 */
#include <string.h>
#include "s3-xml.h"

static void test_elements(void)
{
    static const char x[] =
        "<ListBucketResult><Prefix/><IsTruncated>true</IsTruncated>"
        "<Contents><Key>a</Key><Size>1</Size></Contents>"
        "<Contents><Key>b&amp;c</Key><Size>22</Size></Contents>"
        "<NextContinuationToken>t/1=</NextContinuationToken>"
        "</ListBucketResult>";
    const char *v;
    size_t vl, pos = 0;
    g_autofree char *t = s3_xml_get(x, strlen(x), "NextContinuationToken",
                                    false);
    g_autofree char *p = s3_xml_get(x, strlen(x), "Prefix", false);
    g_autofree char *none = s3_xml_get(x, strlen(x), "Code", false);

    g_assert_cmpstr(t, ==, "t/1=");
    g_assert_cmpstr(p, ==, "");
    g_assert_null(none);
    g_assert_true(s3_xml_next(x, strlen(x), &pos, "Contents", &v, &vl));
    g_assert_cmpmem(v, vl, "<Key>a</Key><Size>1</Size>", 26);
    g_assert_true(s3_xml_next(x, strlen(x), &pos, "Contents", &v, &vl));
    {
        g_autofree char *k = s3_xml_get(v, vl, "Key", false);
        g_assert_cmpstr(k, ==, "b&c");
    }
    g_assert_false(s3_xml_next(x, strlen(x), &pos, "Contents", &v, &vl));
}

static void test_entities(void)
{
    static const struct {
        const char *in, *strict, *sane;
    } cases[] = {
        { "&amp;&lt;&gt;&quot;&apos;", "&<>\"'", "&<>\"'" },
        { "&#65;&#x41;&#X61;", "AAa", "AAa" },
        { "a&foo;b", NULL, "a?foo;b" },
        { "&amp", NULL, "?amp" },
        { "&#;", NULL, "?#;" },
        { "&#x;", NULL, "?#x;" },
        { "&#x110000;", NULL, "?#x110000;" },
        { "&#10;", NULL, "?" },             /* a control character */
        { "caf\xc3\xa9", NULL, "caf??" },   /* not ASCII */
        { "", "", "" },
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *s = s3_xml_text(cases[i].in, strlen(cases[i].in),
                                         false);
        g_autofree char *z = s3_xml_text(cases[i].in, strlen(cases[i].in),
                                         true);
        g_assert_cmpstr(s, ==, cases[i].strict);
        g_assert_cmpstr(z, ==, cases[i].sane);
    }
}

/* A buffer cut anywhere is read only up to the cut. */
static void test_cut(void)
{
    static const char x[] = "<Error><Code>NoSuchKey</Code></Error>";
    size_t n;

    for (n = 0; n <= strlen(x); n++) {
        g_autofree char *copy = g_memdup2(x, n);    /* no NUL after it */
        g_autofree char *c = s3_xml_get(copy, n, "Code", true);

        if (n < strlen("<Error><Code>NoSuchKey</Code>")) {
            g_assert_null(c);
        } else {
            g_assert_cmpstr(c, ==, "NoSuchKey");
        }
    }
}

/* Random bytes with tag fragments: the scan ends, moves forward and stays
 * inside the buffer (valgrind or ASan see any overread). */
static void test_random(void)
{
    static const char *const frag[] = {
        "<Key>", "</Key>", "<Key/>", "<", ">", "&", ";", "&amp;", "&#x",
        "<Contents>", "</Contents>", "\0", "x",
    };
    GRand *r = g_rand_new_with_seed(4);
    guint iter;

    for (iter = 0; iter < 20000; iter++) {
        g_autoptr(GString) s = g_string_new(NULL);
        g_autofree char *buf = NULL;
        guint parts = g_rand_int_range(r, 0, 20), i;
        size_t pos = 0, vl, last = 0;
        const char *v;

        for (i = 0; i < parts; i++) {
            const char *f = frag[g_rand_int_range(r, 0, G_N_ELEMENTS(frag))];
            g_string_append_len(s, f, *f ? strlen(f) : 1);
        }
        buf = g_memdup2(s->str, s->len);
        while (s3_xml_next(buf, s->len, &pos, "Key", &v, &vl)) {
            g_autofree char *t = s3_xml_text(v, vl, true);
            g_assert_true(pos > last && pos <= s->len);
            g_assert_true(v >= buf && v + vl <= buf + s->len);
            g_assert_nonnull(t);
            last = pos;
        }
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/s3-xml/elements", test_elements);
    g_test_add_func("/s3-xml/entities", test_entities);
    g_test_add_func("/s3-xml/cut", test_cut);
    g_test_add_func("/s3-xml/random", test_random);
    return g_test_run();
}
