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

// Software prefetch distance of the SIMD verify loops. Measured: without it the verify sustained
// ~0.74x of a plain read on the reference VM (its extra instructions per line leave fewer loads in
// flight); 1 KiB ahead restores >0.9x. A prefetch never faults, so it may run past the end of the
// call's range or into a page that has lost its backing, like the hardware prefetchers do.
#define PF_DIST 1024

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
static void __attribute__((noinline))
line_mismatch(const void *origin, const uint64_t *p, uint64_t seed, int invert, mcescan_verify_result *out) {
    for (int i = 0; i < 8; i++) {
        uint64_t addr = (uint64_t)(uintptr_t)(p + i);
        uint64_t e = mcescan_pattern_word(addr, seed, invert);
        uint64_t a = ((const volatile uint64_t *)p)[i];
        if (e == a) continue;
        uint64_t d = e ^ a;
        out->corrupted_words += 1;
        out->flips_0to1 += (uint64_t)__builtin_popcountll(d & a);
        out->flips_1to0 += (uint64_t)__builtin_popcountll(d & e);
        if (out->mismatches_recorded < MCESCAN_MAX_MISMATCHES) {
            mcescan_mismatch *m = &out->mismatches[out->mismatches_recorded++];
            m->offset = addr - (uint64_t)(uintptr_t)origin;
            m->expected = e;
            m->actual = a;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar (portable reference; the baseline on non-x86 hosts).
// ---------------------------------------------------------------------------------------------
static void verify_scalar(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                          mcescan_verify_result *out) {
    const uint64_t *p = (const uint64_t *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        uint64_t acc = 0;
        for (int i = 0; i < 8; i++)
            acc |= p[i] ^ mcescan_pattern_word((uint64_t)(uintptr_t)(p + i), seed, invert);
        if (__builtin_expect(acc != 0, 0)) line_mismatch(origin, p, seed, invert, out);
    }
    out->words_checked += bytes / 8;
}

static void verify_refill_scalar(const void *origin, void *base, size_t bytes, uint64_t seed, int invert,
                                 uint64_t next_seed, int next_invert, mcescan_verify_result *out) {
    uint64_t *p = (uint64_t *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        uint64_t acc = 0;
        for (int i = 0; i < 8; i++)
            acc |= p[i] ^ mcescan_pattern_word((uint64_t)(uintptr_t)(p + i), seed, invert);
        if (__builtin_expect(acc != 0, 0)) line_mismatch(origin, p, seed, invert, out);
        for (int i = 0; i < 8; i++)
            ((volatile uint64_t *)p)[i] = mcescan_pattern_word((uint64_t)(uintptr_t)(p + i), next_seed, next_invert);
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

static ALWAYS_INLINE void verify_sse2_body(const void *origin, const void *base, size_t bytes, uint64_t seed,
                                           const int invert, mcescan_verify_result *out) {
    const __m128i inv = invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128();
    const uint64_t *p = (const uint64_t *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        const __m128i *v = (const __m128i *)p;
        _mm_prefetch((const char *)p + PF_DIST, _MM_HINT_T0);
        __m128i e[4];
        line_sse2((uint64_t)(uintptr_t)p, seed, inv, e);
        __m128i d = _mm_or_si128(_mm_or_si128(_mm_xor_si128(_mm_load_si128(v), e[0]), _mm_xor_si128(_mm_load_si128(v + 1), e[1])),
                                 _mm_or_si128(_mm_xor_si128(_mm_load_si128(v + 2), e[2]), _mm_xor_si128(_mm_load_si128(v + 3), e[3])));
        if (__builtin_expect(_mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) != 0xffff, 0))
            line_mismatch(origin, p, seed, invert, out);
    }
    out->words_checked += bytes / 8;
}

static void verify_sse2(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                        mcescan_verify_result *out) {
    if (invert) verify_sse2_body(origin, base, bytes, seed, 1, out);
    else verify_sse2_body(origin, base, bytes, seed, 0, out);
}

static ALWAYS_INLINE void verify_refill_sse2_body(const void *origin, void *base, size_t bytes, uint64_t seed,
                                                  const int invert, uint64_t next_seed, const int next_invert,
                                                  mcescan_verify_result *out) {
    const __m128i inv = invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128();
    const __m128i next_inv = next_invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128();
    uint64_t *p = (uint64_t *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        __m128i *v = (__m128i *)p;
        _mm_prefetch((const char *)p + PF_DIST, _MM_HINT_T0);
        __m128i e[4], n[4];
        line_sse2((uint64_t)(uintptr_t)p, seed, inv, e);
        __m128i d = _mm_or_si128(_mm_or_si128(_mm_xor_si128(_mm_load_si128(v), e[0]), _mm_xor_si128(_mm_load_si128(v + 1), e[1])),
                                 _mm_or_si128(_mm_xor_si128(_mm_load_si128(v + 2), e[2]), _mm_xor_si128(_mm_load_si128(v + 3), e[3])));
        if (__builtin_expect(_mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) != 0xffff, 0))
            line_mismatch(origin, p, seed, invert, out);
        line_sse2((uint64_t)(uintptr_t)p, next_seed, next_inv, n);
        _mm_stream_si128(v, n[0]);
        _mm_stream_si128(v + 1, n[1]);
        _mm_stream_si128(v + 2, n[2]);
        _mm_stream_si128(v + 3, n[3]);
    }
    _mm_sfence();
    out->words_checked += bytes / 8;
}

static void verify_refill_sse2(const void *origin, void *base, size_t bytes, uint64_t seed, int invert,
                               uint64_t next_seed, int next_invert, mcescan_verify_result *out) {
    if (invert) verify_refill_sse2_body(origin, base, bytes, seed, 1, next_seed, !!next_invert, out);
    else verify_refill_sse2_body(origin, base, bytes, seed, 0, next_seed, !!next_invert, out);
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

static ALWAYS_INLINE AVX2 void verify_avx2_body(const void *origin, const void *base, size_t bytes, uint64_t seed,
                                                const int invert, mcescan_verify_result *out) {
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    const uint64_t *p = (const uint64_t *)base;
    size_t lines = bytes / 64;
    size_t l = 0;
    // Two lines per iteration: one test and one branch per 128 bytes.
    for (; l + 2 <= lines; l += 2, p += 16) {
        const __m256i *v = (const __m256i *)p;
        _mm_prefetch((const char *)p + PF_DIST, _MM_HINT_T0);
        _mm_prefetch((const char *)p + PF_DIST + 64, _MM_HINT_T0);
        __m256i e0, e1, e2, e3;
        line_avx2((uint64_t)(uintptr_t)p, seed, inv, &e0, &e1);
        line_avx2((uint64_t)(uintptr_t)(p + 8), seed, inv, &e2, &e3);
        __m256i d = _mm256_or_si256(
            _mm256_or_si256(_mm256_xor_si256(_mm256_load_si256(v), e0), _mm256_xor_si256(_mm256_load_si256(v + 1), e1)),
            _mm256_or_si256(_mm256_xor_si256(_mm256_load_si256(v + 2), e2), _mm256_xor_si256(_mm256_load_si256(v + 3), e3)));
        if (__builtin_expect(!_mm256_testz_si256(d, d), 0)) {
            line_mismatch(origin, p, seed, invert, out);
            line_mismatch(origin, p + 8, seed, invert, out);
        }
    }
    for (; l < lines; l++, p += 8) {
        const __m256i *v = (const __m256i *)p;
        __m256i e0, e1;
        line_avx2((uint64_t)(uintptr_t)p, seed, inv, &e0, &e1);
        __m256i d = _mm256_or_si256(_mm256_xor_si256(_mm256_load_si256(v), e0), _mm256_xor_si256(_mm256_load_si256(v + 1), e1));
        if (__builtin_expect(!_mm256_testz_si256(d, d), 0))
            line_mismatch(origin, p, seed, invert, out);
    }
    out->words_checked += bytes / 8;
}

static AVX2 void verify_avx2(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                             mcescan_verify_result *out) {
    if (invert) verify_avx2_body(origin, base, bytes, seed, 1, out);
    else verify_avx2_body(origin, base, bytes, seed, 0, out);
}

static ALWAYS_INLINE AVX2 void verify_refill_avx2_body(const void *origin, void *base, size_t bytes, uint64_t seed,
                                                       const int invert, uint64_t next_seed, const int next_invert,
                                                       mcescan_verify_result *out) {
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    const __m256i next_inv = next_invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    uint64_t *p = (uint64_t *)base;
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        __m256i *v = (__m256i *)p;
        _mm_prefetch((const char *)p + PF_DIST, _MM_HINT_T0);
        __m256i e0, e1, n0, n1;
        line_avx2((uint64_t)(uintptr_t)p, seed, inv, &e0, &e1);
        __m256i d = _mm256_or_si256(_mm256_xor_si256(_mm256_load_si256(v), e0), _mm256_xor_si256(_mm256_load_si256(v + 1), e1));
        if (__builtin_expect(!_mm256_testz_si256(d, d), 0))
            line_mismatch(origin, p, seed, invert, out);
        line_avx2((uint64_t)(uintptr_t)p, next_seed, next_inv, &n0, &n1);
        _mm256_stream_si256(v, n0);
        _mm256_stream_si256(v + 1, n1);
    }
    _mm_sfence();
    out->words_checked += bytes / 8;
}

static AVX2 void verify_refill_avx2(const void *origin, void *base, size_t bytes, uint64_t seed, int invert,
                                    uint64_t next_seed, int next_invert, mcescan_verify_result *out) {
    if (invert) verify_refill_avx2_body(origin, base, bytes, seed, 1, next_seed, !!next_invert, out);
    else verify_refill_avx2_body(origin, base, bytes, seed, 0, next_seed, !!next_invert, out);
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
    {"avx2", verify_avx2, verify_refill_avx2, fill_avx2, read_avx2},
    {"sse2", verify_sse2, verify_refill_sse2, fill_sse2, read_sse2},
#endif
    {"scalar", verify_scalar, verify_refill_scalar, fill_scalar, read_scalar},
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
    v->verify_refill(base, base, bytes & ~(size_t)63, seed, invert != 0, next_seed, next_invert != 0, out);
    return 0;
}
