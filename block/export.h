/*
 * Velo block export: the on-premises side of the WAN protocol.
 *
 * This header is the whole contract with QEMU's export core: the export
 * driver table entry that block/export/export.c lists.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef VELO_EXPORT_H
#define VELO_EXPORT_H

#include "block/export.h"

/* The 'velo' BlockExportDriver (type BLOCK_EXPORT_TYPE_VELO). */
extern const BlockExportDriver blk_exp_velo;

#endif
