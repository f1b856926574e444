#include "trace/trace-block_velo.h"
