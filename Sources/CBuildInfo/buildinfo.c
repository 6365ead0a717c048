#include "CBuildInfo.h"
#ifndef MCESCAN_REVISION
#define MCESCAN_REVISION "unknown"
#endif
const char *mcescan_build_revision(void) { return MCESCAN_REVISION; }
