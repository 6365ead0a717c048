// Internal to CScanKernel (not part of the module's public header).
#ifndef MCESCAN_INTERNAL_H
#define MCESCAN_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "CScanKernel.h"

/// One vector variant. `verify` reports mismatch offsets relative to `origin`.
typedef struct {
    const char *name;
    void (*verify)(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                   mcescan_verify_result *out);
    /// Verifies each 64-byte line, then rewrites it with (next_seed, next_invert) (non-temporal).
    void (*verify_refill)(const void *origin, void *base, size_t bytes, uint64_t seed, int invert,
                          uint64_t next_seed, int next_invert, mcescan_verify_result *out);
    void (*fill)(void *base, size_t bytes, uint64_t seed, int invert);
    uint64_t (*read)(const void *base, size_t bytes);
} mcescan_variant;

const mcescan_variant *mcescan_current_variant(void);
#endif
