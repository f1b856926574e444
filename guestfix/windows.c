/* windows.c - placeholder, replaced below */
#include "guestfix.h"
bool gf_windows_adapt (GfCtx *c, GError **err) { g_set_error (err, GF_ERROR, GF_ERROR_FAILED, "Windows: not yet"); return false; }
