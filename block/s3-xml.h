/*
 * Velo object store: the bounded XML reader for S3 replies (ListObjectsV2
 * results and error bodies).  See s3-xml.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_S3_XML_H
#define VELO_S3_XML_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Find the next element <@tag>...</@tag> (or <@tag/>) in @xml[*@pos, @len).
 * On success point @val/@vlen at its raw content (entities still encoded),
 * move *@pos past it and return true.  Never reads outside @xml[0, @len).
 */
bool s3_xml_next(const char *xml, size_t len, size_t *pos, const char *tag,
                 const char **val, size_t *vlen);

/*
 * Decode the raw content @val/@vlen (the five named entities and numeric
 * references) into a new string.  Characters outside printable ASCII become
 * '?' when @sanitize, and make it fail (NULL) otherwise; a malformed entity
 * fails too.
 */
char *s3_xml_text(const char *val, size_t vlen, bool sanitize);

/* The decoded text of the first <@tag> in @xml[0, @len), or NULL. */
char *s3_xml_get(const char *xml, size_t len, const char *tag,
                 bool sanitize);

#endif
