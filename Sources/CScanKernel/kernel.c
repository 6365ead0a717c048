// CScanKernel: pattern fill, verify and the plain read reference, with per-CPU variants.
//
// Why C: the verify must run at memory speed with explicit vector loads and non-temporal stores,
// compiled for the x86-64 baseline (SSE2) plus an AVX2 variant chosen once at start-up, so one
// binary runs on every host of a fleet (no -march=native, no SIGILL on older CPUs).
//
// Every variant computes exactly mcescan_pattern_word(address, seed, invert) for each 64-bit word
// (address = the word's virtual address). The 64-bit multiply of the pattern mix has no AVX2/SSE2
// instruction; it is built from three 32x32->64 multiplies (pmuludq), which is exact modulo 2^64.
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
static inline __m128i mul_sse2(__m128i x, __m128i cl, __m128i ch) {
    __m128i p0 = _mm_mul_epu32(x, cl);                       // xl * Cl
    __m128i p1 = _mm_mul_epu32(_mm_srli_epi64(x, 32), cl);   // xh * Cl
    __m128i p2 = _mm_mul_epu32(x, ch);                       // xl * Ch
    return _mm_add_epi64(p0, _mm_slli_epi64(_mm_add_epi64(p1, p2), 32));
}

static inline __m128i pattern_sse2(__m128i addr, __m128i seed, __m128i cl, __m128i ch, __m128i inv) {
    __m128i x = _mm_xor_si128(addr, seed);
    x = _mm_xor_si128(x, _mm_srli_epi64(x, 31));
    x = mul_sse2(x, cl, ch);
    x = _mm_xor_si128(x, _mm_srli_epi64(x, 27));
    return _mm_xor_si128(x, inv);
}

static void verify_sse2(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                        mcescan_verify_result *out) {
    const __m128i vseed = _mm_set1_epi64x((long long)seed);
    const __m128i cl = _mm_set1_epi64x((long long)(MIX_MUL & 0xffffffffULL));
    const __m128i ch = _mm_set1_epi64x((long long)(MIX_MUL >> 32));
    const __m128i inv = invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128();
    const __m128i step = _mm_set1_epi64x(16);
    const uint64_t *p = (const uint64_t *)base;
    uint64_t a0 = (uint64_t)(uintptr_t)p;
    __m128i addr = _mm_set_epi64x((long long)(a0 + 8), (long long)a0);
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        const __m128i *v = (const __m128i *)p;
        __m128i e0 = pattern_sse2(addr, vseed, cl, ch, inv); addr = _mm_add_epi64(addr, step);
        __m128i e1 = pattern_sse2(addr, vseed, cl, ch, inv); addr = _mm_add_epi64(addr, step);
        __m128i e2 = pattern_sse2(addr, vseed, cl, ch, inv); addr = _mm_add_epi64(addr, step);
        __m128i e3 = pattern_sse2(addr, vseed, cl, ch, inv); addr = _mm_add_epi64(addr, step);
        __m128i d = _mm_or_si128(_mm_or_si128(_mm_xor_si128(_mm_load_si128(v), e0), _mm_xor_si128(_mm_load_si128(v + 1), e1)),
                                 _mm_or_si128(_mm_xor_si128(_mm_load_si128(v + 2), e2), _mm_xor_si128(_mm_load_si128(v + 3), e3)));
        if (__builtin_expect(_mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) != 0xffff, 0))
            line_mismatch(origin, p, seed, invert, out);
    }
    out->words_checked += bytes / 8;
}

static void fill_sse2(void *base, size_t bytes, uint64_t seed, int invert) {
    const __m128i vseed = _mm_set1_epi64x((long long)seed);
    const __m128i cl = _mm_set1_epi64x((long long)(MIX_MUL & 0xffffffffULL));
    const __m128i ch = _mm_set1_epi64x((long long)(MIX_MUL >> 32));
    const __m128i inv = invert ? _mm_set1_epi64x(-1) : _mm_setzero_si128();
    const __m128i step = _mm_set1_epi64x(16);
    __m128i *v = (__m128i *)base;
    uint64_t a0 = (uint64_t)(uintptr_t)base;
    __m128i addr = _mm_set_epi64x((long long)(a0 + 8), (long long)a0);
    size_t vecs = bytes / 16;
    for (size_t i = 0; i < vecs; i += 4) {
        _mm_stream_si128(v + i, pattern_sse2(addr, vseed, cl, ch, inv)); addr = _mm_add_epi64(addr, step);
        _mm_stream_si128(v + i + 1, pattern_sse2(addr, vseed, cl, ch, inv)); addr = _mm_add_epi64(addr, step);
        _mm_stream_si128(v + i + 2, pattern_sse2(addr, vseed, cl, ch, inv)); addr = _mm_add_epi64(addr, step);
        _mm_stream_si128(v + i + 3, pattern_sse2(addr, vseed, cl, ch, inv)); addr = _mm_add_epi64(addr, step);
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

static inline AVX2 __m256i mul_avx2(__m256i x, __m256i cl, __m256i ch) {
    __m256i p0 = _mm256_mul_epu32(x, cl);
    __m256i p1 = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), cl);
    __m256i p2 = _mm256_mul_epu32(x, ch);
    return _mm256_add_epi64(p0, _mm256_slli_epi64(_mm256_add_epi64(p1, p2), 32));
}

static inline AVX2 __m256i pattern_avx2(__m256i addr, __m256i seed, __m256i cl, __m256i ch, __m256i inv) {
    __m256i x = _mm256_xor_si256(addr, seed);
    x = _mm256_xor_si256(x, _mm256_srli_epi64(x, 31));
    x = mul_avx2(x, cl, ch);
    x = _mm256_xor_si256(x, _mm256_srli_epi64(x, 27));
    return _mm256_xor_si256(x, inv);
}

static AVX2 void verify_avx2(const void *origin, const void *base, size_t bytes, uint64_t seed, int invert,
                             mcescan_verify_result *out) {
    const __m256i vseed = _mm256_set1_epi64x((long long)seed);
    const __m256i cl = _mm256_set1_epi64x((long long)(MIX_MUL & 0xffffffffULL));
    const __m256i ch = _mm256_set1_epi64x((long long)(MIX_MUL >> 32));
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    const __m256i step = _mm256_set1_epi64x(64);
    const uint64_t *p = (const uint64_t *)base;
    uint64_t a0 = (uint64_t)(uintptr_t)p;
    __m256i addr0 = _mm256_set_epi64x((long long)(a0 + 24), (long long)(a0 + 16), (long long)(a0 + 8), (long long)a0);
    __m256i addr1 = _mm256_add_epi64(addr0, _mm256_set1_epi64x(32));
    size_t lines = bytes / 64;
    for (size_t l = 0; l < lines; l++, p += 8) {
        const __m256i *v = (const __m256i *)p;
        __m256i e0 = pattern_avx2(addr0, vseed, cl, ch, inv);
        __m256i e1 = pattern_avx2(addr1, vseed, cl, ch, inv);
        addr0 = _mm256_add_epi64(addr0, step);
        addr1 = _mm256_add_epi64(addr1, step);
        __m256i d = _mm256_or_si256(_mm256_xor_si256(_mm256_load_si256(v), e0), _mm256_xor_si256(_mm256_load_si256(v + 1), e1));
        if (__builtin_expect(!_mm256_testz_si256(d, d), 0))
            line_mismatch(origin, p, seed, invert, out);
    }
    out->words_checked += bytes / 8;
}

static AVX2 void fill_avx2(void *base, size_t bytes, uint64_t seed, int invert) {
    const __m256i vseed = _mm256_set1_epi64x((long long)seed);
    const __m256i cl = _mm256_set1_epi64x((long long)(MIX_MUL & 0xffffffffULL));
    const __m256i ch = _mm256_set1_epi64x((long long)(MIX_MUL >> 32));
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    const __m256i step = _mm256_set1_epi64x(64);
    __m256i *v = (__m256i *)base;
    uint64_t a0 = (uint64_t)(uintptr_t)base;
    __m256i addr0 = _mm256_set_epi64x((long long)(a0 + 24), (long long)(a0 + 16), (long long)(a0 + 8), (long long)a0);
    __m256i addr1 = _mm256_add_epi64(addr0, _mm256_set1_epi64x(32));
    size_t vecs = bytes / 32;
    for (size_t i = 0; i < vecs; i += 2) {
        _mm256_stream_si256(v + i, pattern_avx2(addr0, vseed, cl, ch, inv));
        _mm256_stream_si256(v + i + 1, pattern_avx2(addr1, vseed, cl, ch, inv));
        addr0 = _mm256_add_epi64(addr0, step);
        addr1 = _mm256_add_epi64(addr1, step);
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
