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
    void (*fill)(void *base, size_t bytes, uint64_t seed, int invert);
    uint64_t (*read)(const void *base, size_t bytes);
} mcescan_variant;

const mcescan_variant *mcescan_current_variant(void);

/// The SIMD verify loops read MCESCAN_STREAMS interleaved streams of MCESCAN_STREAM_BYTES; a chunk
/// (one run of them) is also the unit mcescan_verify_safe recovers a fault in. See kernel.c.
#define MCESCAN_STREAMS 4
#define MCESCAN_STREAM_BYTES ((size_t)64 * 1024)
#define MCESCAN_CHUNK_BYTES (MCESCAN_STREAMS * MCESCAN_STREAM_BYTES)

/// Verify-then-rewrite of an arena pass: per chunk of MCESCAN_CHUNK_BYTES, v->verify, then v->fill
/// with (next_seed, next_invert). Not fault-safe (mcescan_verify_safe does the same, armed).
void mcescan_verify_refill_chunked(const mcescan_variant *v, const void *origin, void *base, size_t bytes,
                                   uint64_t seed, int invert, uint64_t next_seed, int next_invert,
                                   mcescan_verify_result *out);
#endif
