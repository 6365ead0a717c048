// CScanKernel: pattern fill, verify and the plain read reference, with per-CPU variants.
//
// Why C: the verify must run at memory speed with explicit vector loads and non-temporal stores,
// compiled for the x86-64 baseline (SSE2) plus an AVX2 variant chosen once at start-up, so one
// binary runs on every host of a fleet (no -march=native, no SIGILL on older CPUs).
//
// Every variant computes exactly mcescan_pattern_word(address, seed, invert) for each 64-bit word
// (address = the word's virtual address); the SIMD variants compute it per 64-byte line (below),
// the scalar variant word by word with mcescan_pattern_word itself (the reference in tests).
#define _GNU_SOURCE
#include "CScanKernel.h"
#include "internal.h"

#include <stdatomic.h>
#include <string.h>
#include <pthread.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MCESCAN_X86 1
#endif

#define MIX_MUL 0x7fb5d329728ea185ULL

// Streams. One core reaches more of the memory bandwidth when it reads several sequential streams
// at once than when it reads one: each stream gets its own hardware prefetch, so more line fills are
// in flight. The SIMD verify loops therefore split each run of MCESCAN_STREAMS * MCESCAN_STREAM_BYTES
// into MCESCAN_STREAMS interleaved streams and visit line o of every stream before line o + 1.
// Measured on the reference VM (`benchmarks/kernel-design.sh streams`: plain reads of cold 1 GiB,
// CPU time, two runs): against one stream, 4 x 4 KiB 1.12-1.23x, 4 x 16 KiB 1.30-1.47x,
// 4 x 64 KiB 1.36-1.53x, 4 x 256 KiB and 4 x 1 MiB within 0.04 of 64 KiB, 8 streams no better
// than 4. A chunk is MCESCAN_CHUNK_BYTES (256 KiB): the unit mcescan_verify_safe rolls back and
// redoes when a fault hits it (fault.c), so it is kept short.
//
// Software prefetch PF_DIST ahead inside each stream added a few percent more. A prefetch never
// faults, so it may run past the end of the range or into a page that has lost its backing.
//
// An arena pass (verify, then rewrite with the next pattern) does each chunk in two phases: the
// streams verify it, then the single-stream non-temporal fill rewrites it (pattern writes are
// non-temporal, so the next verify reads DRAM, not a cached copy). `benchmarks/kernel-design.sh
// refill` (a worker-like loop: 64 MiB memfd arena, 16 MiB per wake, 20 ms sleeps, CPU per GiB):
// two phases 0.129-0.137 CPU-s; verify and non-temporal store fused line by line in one stream
// 0.128-0.138 (the same, but it cannot use the streams, and a fault half-way through a fused line
// leaves nothing to roll back to); fused in 4 streams 1.27 (the write-combining buffers thrash);
// ordinary stores 0.111-0.121, but they leave the rewritten arena dirty in the cache, so the next
// verify could read the cached copy instead of the DRAM cells it is meant to test.
#define PF_DIST 512

// Per-line pattern arithmetic (the SIMD variants). A 64-byte line at address L holds words at
// a_j = L | (j << 3), j = 0..7, so with P = L ^ seed (bits 3..5 of L are 0):
//   x0_j = P ^ (j << 3)
//   x1_j = x0_j ^ (x0_j >> 31) = Q ^ (j << 3)          with Q = P ^ (P >> 31)   ((j<<3)>>31 == 0)
//        = Q' + (((q ^ j)) << 3)                        with q = bits 3..5 of Q, Q' = Q without them
//   x2_j = x1_j * C = Q'*C + ((q ^ j) << 3)*C   (mod 2^64)
// so one scalar multiply per line plus a vector add of a precomputed row T[q][j] = ((q^j) << 3)*C
// gives the eight products; the final x ^= x >> 27 and the polarity stay per word. Exact, and far
// cheaper than emulating a 64-bit vector multiply with three pmuludq per vector.
#define TV(q, j) ((uint64_t)((uint64_t)((q) ^ (j)) * 8ULL * MIX_MUL))
#define TROW(q) {TV(q, 0), TV(q, 1), TV(q, 2), TV(q, 3), TV(q, 4), TV(q, 5), TV(q, 6), TV(q, 7)}
static const uint64_t line_table[8][8] __attribute__((aligned(64))) = {
    TROW(0), TROW(1), TROW(2), TROW(3), TROW(4), TROW(5), TROW(6), TROW(7)};

/// Q'*C and the row index q for the line at address `line` (64-byte aligned).
static inline uint64_t line_base_product(uint64_t line, uint64_t seed, unsigned *row) {
    uint64_t p = line ^ seed;
    uint64_t q = p ^ (p >> 31);
    *row = (unsigned)(q >> 3) & 7;
    return (q & ~(uint64_t)0x38) * MIX_MUL;
}

// ---------------------------------------------------------------------------------------------
// Slow path shared by every variant: one 64-byte line that did not match, word by word.
// ---------------------------------------------------------------------------------------------

/// Records `m` among the mismatches of the current call, [first, recorded), kept in address order
/// (the streams visit lines out of order): while there is room it is inserted in place; when full,
/// it replaces the call's highest offset if it is lower. So a call reports its first
/// MCESCAN_MAX_MISMATCHES mismatching words by address whatever order it read them in, and never
/// displaces what earlier calls (lower addresses, or another region) recorded.
static void record_mismatch(mcescan_verify_result *out, uint32_t first, mcescan_mismatch m) {
    uint32_t n = out->mismatches_recorded;
    if (n >= MCESCAN_MAX_MISMATCHES) {
        if (first >= n || out->mismatches[n - 1].offset <= m.offset) return;
        n -= 1;  // drop the call's highest offset
    } else {
        out->mismatches_recorded = n + 1;
    }
    uint32_t i = n;
    while (i > first && out->mismatches[i - 1].offset > m.offset) {
        out->mismatches[i] = out->mismatches[i - 1];
        i -= 1;
    }
    out->mismatches[i] = m;
}

static void __attribute__((noinline))
line_mismatch(const void *origin, const uint64_t *p, uint64_t seed, int invert, uint32_t first, mcescan_verify_result *out) {
    for (int i = 0; i < 8; i++) {
        uint64_t addr = (uint64_t)(uintptr_t)(p + i);
        uint64_t e = mcescan_pattern_word(addr, seed, invert);
        uint64_t a = ((const volatile uint64_t *)p)[i];
        if (e == a) continue;
        uint64_t d = e ^ a;
        out->corrupted_words += 1;
        out->flips_0to1 += (uint64_t)__builtin_popcountll(d & a);
        out->flips_1to0 += (uint64_t)__builtin_popcountll(d & e);
        record_mismatch(out, first, (mcescan_mismatch){.offset = addr - (uint64_t)(uintptr_t)origin, .expected = e, .actual = a});
    }
}

/// Stream length for the run starting with `left` bytes to go: MCESCAN_STREAM_BYTES while a whole
/// chunk remains, then a quarter of what is left (whole lines); 0 when that is under one line each.
static inline size_t stream_bytes(size_t left) {
    if (left >= MCESCAN_CHUNK_BYTES) return MCESCAN_STREAM_BYTES;
    return (left / MCESCAN_STREAMS) & ~(size_t)63;
}

// ---------------------------------------------------------------------------------------------
// Scalar (portable reference; the baseline on non-x86 hosts).
// ---------------------------------------------------------------------------------------------
static void verify_scalar(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                          mcescan_verify_result *out) {
    const uint32_t first = out->mismatches_recorded;
    const uint64_t *p = (const uint64_t *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        uint64_t acc = 0;
        for (int i = 0; i < 8; i++)
            acc |= p[i] ^ mcescan_pattern_word((uint64_t)(uintptr_t)(p + i), seed, invert);
        if (__builtin_expect(acc != 0, 0)) line_mismatch(origin, p, seed, invert, first, out);
    }
    out->words_checked += bytes / 8;
}

static void fill_scalar(void *base, size_t bytes, uint64_t seed, int invert) {
    volatile uint64_t *p = (volatile uint64_t *)base;
    size_t words = bytes / 8;
    for (size_t i = 0; i < words; i++)
        p[i] = mcescan_pattern_word((uint64_t)(uintptr_t)(p + i), seed, invert);
}

static uint64_t read_scalar(const void *base, size_t bytes) {
    const uint64_t *p = (const uint64_t *)base;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t words = bytes / 8;
    for (size_t i = 0; i + 4 <= words; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
    return s0 + s1 + s2 + s3;
}

#if MCESCAN_X86
// ---------------------------------------------------------------------------------------------
// SSE2 (x86-64 baseline): 2 words per vector, 4 vectors per line.
// ---------------------------------------------------------------------------------------------
#define ALWAYS_INLINE inline __attribute__((always_inline))

/// The four expected vectors of the line at `line`.
static ALWAYS_INLINE void line_sse2(uint64_t line, uint64_t seed, __m128i inv, __m128i e[4]) {
    unsigned row;
    __m128i m = _mm_set1_epi64x((long long)line_base_product(line, seed, &row));
    const __m128i *t = (const __m128i *)line_table[row];
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_add_epi64(m, _mm_load_si128(t + k));
        e[k] = _mm_xor_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 27)), inv);
    }
}

/// XOR of the line at `p` with its expected vectors (zero when it matches).
static ALWAYS_INLINE __m128i line_diff_sse2(const char *p, uint64_t seed, __m128i inv) {
    const __m128i *v = (const __m128i *)p;
    __m128i e[4];
    line_sse2((uint64_t)(uintptr_t)p, seed, inv, e);
    return _mm_or_si128(_mm_or_si128(_mm_xor_si128(_mm_load_si128(v), e[0]), _mm_xor_si128(_mm_load_si128(v + 1), e[1])),
                        _mm_or_si128(_mm_xor_si128(_mm_load_si128(v + 2), e[2]), _mm_xor_si128(_mm_load_si128(v + 3), e[3])));
}

static ALWAYS_INLINE int nonzero_sse2(__m128i d) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) != 0xffff;
}

static ALWAYS_INLINE __m128i polarity_sse2(int invert) { return invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128(); }

/// Whether any of the four lines (one per stream) differs from its pattern: one test for all four.
static ALWAYS_INLINE int group_bad_sse2(const char *l0, const char *l1, const char *l2, const char *l3,
                                        uint64_t seed, int invert) {
    const __m128i inv = polarity_sse2(invert);
    return nonzero_sse2(_mm_or_si128(_mm_or_si128(line_diff_sse2(l0, seed, inv), line_diff_sse2(l1, seed, inv)),
                                     _mm_or_si128(line_diff_sse2(l2, seed, inv), line_diff_sse2(l3, seed, inv))));
}

static ALWAYS_INLINE int line_bad_sse2(const char *p, uint64_t seed, int invert) {
    return nonzero_sse2(line_diff_sse2(p, seed, polarity_sse2(invert)));
}

typedef int (*group_test)(const char *, const char *, const char *, const char *, uint64_t, int);
typedef int (*line_test)(const char *, uint64_t, int);

// Verify in MCESCAN_STREAMS streams, shared by the SIMD variants (their line tests are passed in and
// inlined: every caller passes constants). Per step, read and test one line of every stream; a step
// with a mismatch is then accounted line by line (line_mismatch keeps address order).
static ALWAYS_INLINE void verify_streams(const void *origin, const char *base, size_t bytes, uint64_t seed,
                                         const int invert, mcescan_verify_result *out,
                                         const group_test group_bad, const line_test line_bad) {
    const uint32_t first = out->mismatches_recorded;
    const char *p = base, *end = base + bytes;
    for (size_t s; (s = stream_bytes((size_t)(end - p))) != 0; p += MCESCAN_STREAMS * s) {
        for (size_t o = 0; o < s; o += 64) {
            const char *l0 = p + o, *l1 = l0 + s, *l2 = l1 + s, *l3 = l2 + s;
            _mm_prefetch(l0 + PF_DIST, _MM_HINT_T0);
            _mm_prefetch(l1 + PF_DIST, _MM_HINT_T0);
            _mm_prefetch(l2 + PF_DIST, _MM_HINT_T0);
            _mm_prefetch(l3 + PF_DIST, _MM_HINT_T0);
            if (__builtin_expect(group_bad(l0, l1, l2, l3, seed, invert), 0)) {
                line_mismatch(origin, (const uint64_t *)l0, seed, invert, first, out);
                line_mismatch(origin, (const uint64_t *)l1, seed, invert, first, out);
                line_mismatch(origin, (const uint64_t *)l2, seed, invert, first, out);
                line_mismatch(origin, (const uint64_t *)l3, seed, invert, first, out);
            }
        }
    }
    for (; p < end; p += 64)  // fewer than MCESCAN_STREAMS lines left
        if (__builtin_expect(line_bad(p, seed, invert), 0))
            line_mismatch(origin, (const uint64_t *)p, seed, invert, first, out);
    out->words_checked += bytes / 8;
}

static void verify_sse2(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                        mcescan_verify_result *out) {
    if (invert) verify_streams(origin, base, bytes, seed, 1, out, group_bad_sse2, line_bad_sse2);
    else verify_streams(origin, base, bytes, seed, 0, out, group_bad_sse2, line_bad_sse2);
}

static void fill_sse2(void *base, size_t bytes, uint64_t seed, int invert) {
    const __m128i inv = invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128();
    __m128i *v = (__m128i *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, v += 4) {
        __m128i e[4];
        line_sse2((uint64_t)(uintptr_t)v, seed, inv, e);
        _mm_stream_si128(v, e[0]);
        _mm_stream_si128(v + 1, e[1]);
        _mm_stream_si128(v + 2, e[2]);
        _mm_stream_si128(v + 3, e[3]);
    }
    _mm_sfence();
}

static uint64_t read_sse2(const void *base, size_t bytes) {
    const __m128i *v = (const __m128i *)base;
    __m128i s0 = _mm_setzero_si128(), s1 = s0, s2 = s0, s3 = s0;
    size_t vecs = bytes / 16;
    for (size_t i = 0; i < vecs; i += 4) {
        s0 = _mm_add_epi64(s0, _mm_load_si128(v + i));
        s1 = _mm_add_epi64(s1, _mm_load_si128(v + i + 1));
        s2 = _mm_add_epi64(s2, _mm_load_si128(v + i + 2));
        s3 = _mm_add_epi64(s3, _mm_load_si128(v + i + 3));
    }
    __m128i s = _mm_add_epi64(_mm_add_epi64(s0, s1), _mm_add_epi64(s2, s3));
    return (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(s, s));
}

// ---------------------------------------------------------------------------------------------
// AVX2: 4 words per vector, 2 vectors per line.
// ---------------------------------------------------------------------------------------------
#define AVX2 __attribute__((target("avx2")))

static ALWAYS_INLINE AVX2 void line_avx2(uint64_t line, uint64_t seed, __m256i inv, __m256i *e0, __m256i *e1) {
    unsigned row;
    __m256i m = _mm256_set1_epi64x((long long)line_base_product(line, seed, &row));
    const __m256i *t = (const __m256i *)line_table[row];
    __m256i x0 = _mm256_add_epi64(m, _mm256_load_si256(t));
    __m256i x1 = _mm256_add_epi64(m, _mm256_load_si256(t + 1));
    *e0 = _mm256_xor_si256(_mm256_xor_si256(x0, _mm256_srli_epi64(x0, 27)), inv);
    *e1 = _mm256_xor_si256(_mm256_xor_si256(x1, _mm256_srli_epi64(x1, 27)), inv);
}

static ALWAYS_INLINE AVX2 __m256i line_diff_avx2(const char *p, uint64_t seed, __m256i inv) {
    const __m256i *v = (const __m256i *)p;
    __m256i e0, e1;
    line_avx2((uint64_t)(uintptr_t)p, seed, inv, &e0, &e1);
    return _mm256_or_si256(_mm256_xor_si256(_mm256_load_si256(v), e0), _mm256_xor_si256(_mm256_load_si256(v + 1), e1));
}

static ALWAYS_INLINE AVX2 int group_bad_avx2(const char *l0, const char *l1, const char *l2, const char *l3,
                                             uint64_t seed, int invert) {
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    __m256i d = _mm256_or_si256(_mm256_or_si256(line_diff_avx2(l0, seed, inv), line_diff_avx2(l1, seed, inv)),
                                _mm256_or_si256(line_diff_avx2(l2, seed, inv), line_diff_avx2(l3, seed, inv)));
    return !_mm256_testz_si256(d, d);
}

static ALWAYS_INLINE AVX2 int line_bad_avx2(const char *p, uint64_t seed, int invert) {
    __m256i d = line_diff_avx2(p, seed, invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256());
    return !_mm256_testz_si256(d, d);
}

static AVX2 void verify_avx2(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                             mcescan_verify_result *out) {
    if (invert) verify_streams(origin, base, bytes, seed, 1, out, group_bad_avx2, line_bad_avx2);
    else verify_streams(origin, base, bytes, seed, 0, out, group_bad_avx2, line_bad_avx2);
}

static AVX2 void fill_avx2(void *base, size_t bytes, uint64_t seed, int invert) {
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    __m256i *v = (__m256i *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, v += 2) {
        __m256i e0, e1;
        line_avx2((uint64_t)(uintptr_t)v, seed, inv, &e0, &e1);
        _mm256_stream_si256(v, e0);
        _mm256_stream_si256(v + 1, e1);
    }
    _mm_sfence();
}

static AVX2 uint64_t read_avx2(const void *base, size_t bytes) {
    const __m256i *v = (const __m256i *)base;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    size_t vecs = bytes / 32;
    size_t i = 0;
    for (; i + 4 <= vecs; i += 4) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256(v + i));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256(v + i + 1));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256(v + i + 2));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256(v + i + 3));
    }
    for (; i < vecs; i++) s0 = _mm256_add_epi64(s0, _mm256_load_si256(v + i));
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(h, h));
}
#endif  // MCESCAN_X86

// ---------------------------------------------------------------------------------------------
// Variant table and dispatch.
// ---------------------------------------------------------------------------------------------
static const mcescan_variant variants[] = {
#if MCESCAN_X86
    {"avx2", verify_avx2, fill_avx2, read_avx2},
    {"sse2", verify_sse2, fill_sse2, read_sse2},
#endif
    {"scalar", verify_scalar, fill_scalar, read_scalar},
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

static int variant_supported(const mcescan_variant *v) {
#if MCESCAN_X86
    if (strcmp(v->name, "avx2") == 0) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    }
#endif
    (void)v;
    return 1;
}

static _Atomic(const mcescan_variant *) current_variant;
static pthread_once_t variant_once = PTHREAD_ONCE_INIT;

static void choose_variant(void) {
    for (size_t i = 0; i < NVARIANTS; i++)
        if (variant_supported(&variants[i])) {
            atomic_store_explicit(&current_variant, &variants[i], memory_order_release);
            return;
        }
}

const mcescan_variant *mcescan_current_variant(void) {
    const mcescan_variant *v = atomic_load_explicit(&current_variant, memory_order_acquire);
    if (__builtin_expect(v == NULL, 0)) {
        pthread_once(&variant_once, choose_variant);
        v = atomic_load_explicit(&current_variant, memory_order_acquire);
    }
    return v;
}

static const mcescan_variant *find_variant(const char *name) {
    if (name == NULL) return NULL;
    for (size_t i = 0; i < NVARIANTS; i++)
        if (strcmp(variants[i].name, name) == 0) return variant_supported(&variants[i]) ? &variants[i] : NULL;
    return NULL;
}

void mcescan_verify_refill_chunked(const mcescan_variant *v, const void *origin, void *base, size_t bytes,
                                   uint64_t seed, int invert, uint64_t next_seed, int next_invert,
                                   mcescan_verify_result *out) {
    for (size_t done = 0; done < bytes; done += MCESCAN_CHUNK_BYTES) {
        size_t n = bytes - done < MCESCAN_CHUNK_BYTES ? bytes - done : MCESCAN_CHUNK_BYTES;
        v->verify(origin, (char *)base + done, n, seed, invert, out);
        v->fill((char *)base + done, n, next_seed, next_invert);
    }
}

const char *mcescan_kernel_variant(void) { return mcescan_current_variant()->name; }

int mcescan_force_variant(const char *name) {
    const mcescan_variant *v = find_variant(name);
    if (v == NULL) return -1;
    mcescan_current_variant();  // make sure the start-up choice cannot overwrite the forced one later
    atomic_store_explicit(&current_variant, v, memory_order_release);
    return 0;
}

size_t mcescan_variant_names(const char **out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < NVARIANTS && n < max; i++)
        if (variant_supported(&variants[i])) out[n++] = variants[i].name;
    return n;
}

void mcescan_fill(void *base, size_t bytes, uint64_t seed, int invert) {
    mcescan_current_variant()->fill(base, bytes & ~(size_t)63, seed, invert != 0);
}

void mcescan_verify(const void *base, size_t bytes, uint64_t seed, int invert, mcescan_verify_result *out) {
    mcescan_current_variant()->verify(base, base, bytes & ~(size_t)63, seed, invert != 0, out);
}

uint64_t mcescan_read_reference(const void *base, size_t bytes) {
    return mcescan_current_variant()->read(base, bytes & ~(size_t)63);
}

int mcescan_fill_with(const char *variant, void *base, size_t bytes, uint64_t seed, int invert) {
    const mcescan_variant *v = find_variant(variant);
    if (v == NULL) return -1;
    v->fill(base, bytes & ~(size_t)63, seed, invert != 0);
    return 0;
}

int mcescan_verify_with(const char *variant, const void *base, size_t bytes, uint64_t seed, int invert,
                        mcescan_verify_result *out) {
    const mcescan_variant *v = find_variant(variant);
    if (v == NULL) return -1;
    v->verify(base, base, bytes & ~(size_t)63, seed, invert != 0, out);
    return 0;
}

int mcescan_verify_refill_with(const char *variant, void *base, size_t bytes, uint64_t seed, int invert,
                               uint64_t next_seed, int next_invert, mcescan_verify_result *out) {
    const mcescan_variant *v = find_variant(variant);
    if (v == NULL) return -1;
    mcescan_verify_refill_chunked(v, base, base, bytes & ~(size_t)63, seed, invert != 0, next_seed, next_invert != 0, out);
    return 0;
}
