#include "qemu/osdep.h"
#include "qapi/error.h"
#include "export.h"
static int velo_export_create(BlockExport *blk_exp, BlockExportOptions *opts, Error **errp)
{
    error_setg(errp, "not yet");
    return -ENOTSUP;
}
const BlockExportDriver blk_exp_velo = {
    .type = BLOCK_EXPORT_TYPE_VELO,
    .instance_size = sizeof(BlockExport),
    .create = velo_export_create,
};
