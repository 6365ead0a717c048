// Design experiments behind two choices in Sources/CScanKernel/kernel.c, kept so the numbers quoted
// in its comments and in BENCHMARKS.md can be rerun (benchmarks/kernel-design.sh builds and runs this).
//
//   kernel-design streams   How many interleaved streams, of what length, should the verify read?
//                           Plain AVX2 reads of a cold 1 GiB buffer (4 KiB pages) split into K streams
//                           of B bytes, against one stream; CPU time of this thread.
//   kernel-design refill    How should an arena pass rewrite what it verified? A worker-like loop: a
//                           64 MiB mlocked memfd arena, 16 MiB per "wake", 20 ms sleeps, CPU time of
//                           the wakes per GiB verified, for: the shipped two-phase chunks (verify 4
//                           streams, then non-temporal fill), verify and non-temporal store fused line
//                           by line in one stream and in four, and ordinary stores (which SPEC §4 rules
//                           out: they leave the arena dirty in the cache).
//
// It #includes kernel.c to reach its static line arithmetic; nothing here is part of the product.
#define _GNU_SOURCE
#include "../../Sources/CScanKernel/kernel.c"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// ---- streams -------------------------------------------------------------------------------------

// Reads [base, base+n) as k interleaved streams of blk bytes (n a multiple of k*blk).
static AVX2 uint64_t read_streams(const char *base, size_t n, int k, size_t blk) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    for (size_t c = 0; c < n; c += (size_t)k * blk)
        for (size_t o = 0; o < blk; o += 64)
            for (int j = 0; j < k; j++) {
                const __m256i *v = (const __m256i *)(base + c + (size_t)j * blk + o);
                s0 = _mm256_add_epi64(s0, _mm256_load_si256(v));
                s1 = _mm256_add_epi64(s1, _mm256_load_si256(v + 1));
            }
    __m256i s = _mm256_add_epi64(s0, s1);
    return (uint64_t)_mm256_extract_epi64(s, 0) + (uint64_t)_mm256_extract_epi64(s, 1);
}

static int streams(void) {
    const size_t total = (size_t)1 << 30, seg = (size_t)16 << 20, nseg = total / seg;
    char *b = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (b == MAP_FAILED) { perror("mmap"); return 2; }
    madvise(b, total, MADV_NOHUGEPAGE);
    memset(b, 1, total);
    static const struct { int k; size_t blk; } cases[] = {
        {1, 16 << 20}, {2, 16 << 10}, {2, 64 << 10}, {4, 4 << 10}, {4, 16 << 10}, {4, 64 << 10},
        {4, 256 << 10}, {4, 1 << 20}, {8, 32 << 10}, {8, 64 << 10},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    double t[NC] = {0};
    volatile uint64_t sink = 0;
    // Segment s of round r goes to case (s + r) % NC: every case sees cold lines and the same load.
    for (int r = 0; r < 4; r++)
        for (size_t s = 0; s < nseg; s++) {
            int c = (int)((s + (size_t)r) % NC);
            double a = cpu_now();
            sink += read_streams(b + s * seg, seg, cases[c].k, cases[c].blk);
            t[c] += cpu_now() - a;
        }
    double one = 0;
    for (int c = 0; c < NC; c++) {
        double swept = 0;
        for (int r = 0; r < 4; r++)
            for (size_t s = 0; s < nseg; s++) if ((int)((s + (size_t)r) % NC) == c) swept += (double)seg;
        double gbps = swept / t[c] / 1e9;
        if (c == 0) one = gbps;
        printf("streams %d x %7zu B: %6.2f GB/s per CPU-second, %.2fx one stream\n", cases[c].k, cases[c].blk, gbps, gbps / one);
    }
    return (int)(sink & 0);
}

// ---- refill --------------------------------------------------------------------------------------

// Verify a line and store the next pattern over it, fused, `k` streams, non-temporal or ordinary.
static ALWAYS_INLINE AVX2 void fused_body(char *base, size_t bytes, uint64_t seed, int invert, uint64_t next_seed,
                                          int next_invert, int k, int nt, uint64_t *bad) {
    const __m256i inv = invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    const __m256i ninv = next_invert ? _mm256_set1_epi64x(-1) : _mm256_setzero_si256();
    const size_t blk = k == 1 ? bytes : MCESCAN_STREAM_BYTES;
    for (char *c = base; c < base + bytes; c += (size_t)k * blk)
        for (size_t o = 0; o < blk; o += 64)
            for (int j = 0; j < k; j++) {
                char *p = c + (size_t)j * blk + o;
                __m256i *v = (__m256i *)p, n0, n1;
                _mm_prefetch(p + PF_DIST, _MM_HINT_T0);
                __m256i d = line_diff_avx2(p, seed, inv);
                if (!_mm256_testz_si256(d, d)) *bad += 1;
                line_avx2((uint64_t)(uintptr_t)p, next_seed, ninv, &n0, &n1);
                if (nt) { _mm256_stream_si256(v, n0); _mm256_stream_si256(v + 1, n1); }
                else { _mm256_store_si256(v, n0); _mm256_store_si256(v + 1, n1); }
            }
    _mm_sfence();
}

static AVX2 void refill_case(int which, char *p, size_t n, uint64_t seed, int invert, uint64_t next_seed, int next_invert,
                             mcescan_verify_result *r, uint64_t *bad) {
    switch (which) {
    case 0: mcescan_verify_refill_chunked(&variants[0], p, p, n, seed, invert, next_seed, next_invert, r); break;
    case 1: fused_body(p, n, seed, invert, next_seed, next_invert, 1, 1, bad); break;
    case 2: fused_body(p, n, seed, invert, next_seed, next_invert, 4, 1, bad); break;
    default: fused_body(p, n, seed, invert, next_seed, next_invert, 4, 0, bad); break;
    }
}

static int refill(void) {
    static const char *names[] = {
        "two phases per 256 KiB chunk (shipped): 4-stream verify, then non-temporal fill",
        "fused line by line, non-temporal, 1 stream",
        "fused line by line, non-temporal, 4 streams",
        "fused line by line, ordinary stores, 4 streams (ruled out by SPEC 4)",
    };
    const size_t arena = (size_t)64 << 20, wake = (size_t)16 << 20;
    const int wakes = 96;
    for (int round = 0; round < 2; round++)
        for (int which = 0; which < 4; which++) {
            int fd = memfd_create("kernel-design", 0);
            if (fd < 0 || ftruncate(fd, (off_t)arena) != 0) { perror("memfd"); return 2; }
            char *b = mmap(NULL, arena, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (b == MAP_FAILED) { perror("mmap"); return 2; }
            mlock(b, arena);
            uint64_t seed = 1, bad = 0;
            int invert = 0;
            fill_avx2(b, arena, seed, invert);
            mcescan_verify_result r;
            memset(&r, 0, sizeof r);
            double t = 0;
            size_t cur = 0;
            for (int w = 0; w < wakes; w++) {
                usleep(20000);
                double a = cpu_now();
                refill_case(which, b + cur, wake, seed, invert, seed + 1, !invert, &r, &bad);
                t += cpu_now() - a;
                cur += wake;
                if (cur == arena) { cur = 0; seed += 1; invert = !invert; }
            }
            if (r.corrupted_words != 0 || bad != 0) { fprintf(stderr, "kernel-design: mismatches in a clean arena\n"); return 1; }
            printf("refill round %d: %.4f CPU-s/GiB  %s\n", round, t / ((double)wakes * (double)wake / (double)(1 << 30)), names[which]);
            munmap(b, arena);
            close(fd);
        }
    return 0;
}

int main(int argc, char **argv) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) { fprintf(stderr, "kernel-design: needs AVX2\n"); return 2; }
    if (argc == 2 && strcmp(argv[1], "streams") == 0) return streams();
    if (argc == 2 && strcmp(argv[1], "refill") == 0) return refill();
    fprintf(stderr, "usage: kernel-design streams|refill\n");
    return 2;
}
