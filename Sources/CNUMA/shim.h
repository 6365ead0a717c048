// libnuma, as a Swift module. <numa.h> is plain C; nothing needs wrapping yet.
#ifndef MCESCAN_CNUMA_SHIM_H
#define MCESCAN_CNUMA_SHIM_H
#include <numa.h>
#include <numaif.h>
#endif
