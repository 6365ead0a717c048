// CScanKernel: the scan hot loop and SIGBUS-safe reading.
//
// Why this must be C: recovering from a SIGBUS needs sigsetjmp/siglongjmp, and Swift frames must
// never be longjmp'd across; the pattern fill needs non-temporal stores and the verify needs
// explicit vector loads with per-CPU variants (baseline SSE2, AVX2) chosen once at start-up.
//
// Contract (shared by ScanWorkers and the tests; change it only together with both):
// - Memory is scanned in 64-bit words. The expected word at (virtual) address a for a pass is
//   mcescan_pattern_word(a, seed, invert): depends on the address and a per-pass seed, and
//   `invert` selects the polarity (all bits flipped), so alternate passes test every cell at 0 and 1.
// - Regions are multiples of 64 bytes and 64-byte aligned.
#ifndef MCESCAN_CSCANKERNEL_H
#define MCESCAN_CSCANKERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The most mismatches one verify call records individually (all are counted).
#define MCESCAN_MAX_MISMATCHES 16
/// The most faults one safe-verify call records (further faulting pages are still skipped and counted).
#define MCESCAN_MAX_FAULTS 64

/// One mismatching word.
typedef struct {
    uint64_t offset;    ///< byte offset from the region base
    uint64_t expected;
    uint64_t actual;
} mcescan_mismatch;

/// What a verify pass found. Counts accumulate across calls (callers zero it per chunk).
typedef struct {
    uint64_t words_checked;
    uint64_t corrupted_words;
    uint64_t flips_0to1;      ///< bits expected 0, read 1
    uint64_t flips_1to0;      ///< bits expected 1, read 0
    uint32_t mismatches_recorded;  ///< <= MCESCAN_MAX_MISMATCHES
    uint32_t _pad;
    mcescan_mismatch mismatches[MCESCAN_MAX_MISMATCHES];
} mcescan_verify_result;

/// One SIGBUS taken (and survived) while reading a page.
typedef struct {
    uint64_t page_index;   ///< index of the page in the region
    uint64_t address;      ///< si_addr
    int32_t si_code;       ///< BUS_ADRERR 2, BUS_OBJERR 3, BUS_MCEERR_AR 4, BUS_MCEERR_AO 5
    int32_t addr_lsb;      ///< si_addr_lsb (log2 of the lost extent), 0 when not given
} mcescan_fault;

/// Faults found by a safe verify.
typedef struct {
    uint32_t count;        ///< faulting pages (all of them)
    uint32_t recorded;     ///< <= MCESCAN_MAX_FAULTS
    mcescan_fault faults[MCESCAN_MAX_FAULTS];
} mcescan_fault_list;

/// The expected word at `address` for a pass with `seed` and polarity `invert` (0 or 1).
static inline uint64_t mcescan_pattern_word(uint64_t address, uint64_t seed, int invert) {
    uint64_t x = address ^ seed;
    x ^= x >> 31; x *= 0x7fb5d329728ea185ULL; x ^= x >> 27;   // cheap mix: neighbours differ in many bits
    return invert ? ~x : x;
}

/// Installs the process-wide SIGBUS/SIGSEGV handler (once; thread-safe) and this thread's
/// alternate signal stack. Returns 0, or -1 with errno. Call on each scanning thread before scanning.
int mcescan_prepare_thread(void);

/// Name of the vector variant chosen at start-up ("avx2", "sse2", "neon", "scalar").
const char *mcescan_kernel_variant(void);

/// Forces a variant by name for tests and benchmarks (0 on success, -1 if the CPU lacks it).
int mcescan_force_variant(const char *name);

/// Writes the pattern over [base, base+bytes) with non-temporal stores (sfence at the end).
void mcescan_fill(void *base, size_t bytes, uint64_t seed, int invert);

/// Verifies [base, base+bytes) against the pattern. Not fault-safe: use on memory that cannot
/// raise SIGBUS, or through mcescan_verify_safe.
void mcescan_verify(const void *base, size_t bytes, uint64_t seed, int invert, mcescan_verify_result *out);

/// Verifies `npages` pages of `page_size` bytes, surviving SIGBUS: a faulting page is recorded in
/// `faults`, skipped (it adds nothing to `out`), and the scan goes on with the next page. When
/// `refill` is non-zero, each chunk of about 256 KiB is rewritten with (next_seed, next_invert)
/// (non-temporal) right after it verified, in the same sweep. `out` lists the first
/// MCESCAN_MAX_MISMATCHES mismatching words of the call in address order.
/// Returns the number of pages fully verified.
size_t mcescan_verify_safe(void *base, size_t page_size, size_t npages,
                           uint64_t seed, int invert, int refill, uint64_t next_seed, int next_invert,
                           mcescan_verify_result *out, mcescan_fault_list *faults);

/// Registers [start, start+length) as scanner memory: a BUS_MCEERR_AO/AR delivered outside a scan
/// (early kill, or the kernel signalling during MADV_HWPOISON) for an address inside a registered
/// region is recorded instead of killing the process. Returns 0, or -1 when the table is full.
int mcescan_register_region(uintptr_t start, size_t length);
void mcescan_unregister_region(uintptr_t start);

/// Takes (and clears) up to `max` addresses recorded by out-of-scan poison notices.
/// Returns how many were written to `out`.
size_t mcescan_take_async_poison(uint64_t *out, size_t max);

/// A plain vectorized read of [base, base+bytes) (sum of words), the reference the verify
/// throughput is measured against.
uint64_t mcescan_read_reference(const void *base, size_t bytes);


// ---- Variants, out-of-scan poison notices and OS helpers for ScanRegion ----

/// Writes up to `max` names of the variants this CPU supports (best first, e.g. "avx2", "sse2",
/// "scalar") to `out`; returns how many were written.
size_t mcescan_variant_names(const char **out, size_t max);

/// Fill / verify with a named variant without changing the process-wide choice (tests and
/// benchmarks comparing variants). Return -1 when the CPU lacks the variant or the name is unknown.
int mcescan_fill_with(const char *variant, void *base, size_t bytes, uint64_t seed, int invert);
int mcescan_verify_with(const char *variant, const void *base, size_t bytes, uint64_t seed, int invert,
                        mcescan_verify_result *out);
/// Verify, then rewrite with (next_seed, next_invert), chunk by chunk, with a named variant (what
/// mcescan_verify_safe does when refilling). Not fault-safe.
int mcescan_verify_refill_with(const char *variant, void *base, size_t bytes, uint64_t seed, int invert,
                               uint64_t next_seed, int next_invert, mcescan_verify_result *out);

/// Fills `npages` pages with the pattern, surviving SIGBUS like mcescan_verify_safe (a faulting
/// page is recorded and skipped). Returns the number of pages filled.
size_t mcescan_fill_safe(void *base, size_t page_size, size_t npages, uint64_t seed, int invert,
                         mcescan_fault_list *faults);

/// Like mcescan_take_async_poison, but takes only addresses inside [start, start+length), leaving
/// other regions' notices for their owners.
size_t mcescan_take_async_poison_in(uintptr_t start, size_t length, uint64_t *out, size_t max);

/// Out-of-scan poison notices dropped because the table was full (256 slots) since start.
uint64_t mcescan_async_poison_dropped(void);

/// Tests only: on the calling thread, mcescan_verify_safe with refill calls `hook(ctx, chunk, bytes)`
/// between verifying a chunk and rewriting it (so a test can make a page fault in that window).
/// NULL removes it.
typedef void (*mcescan_chunk_hook)(void *ctx, void *chunk, size_t bytes);
void mcescan_test_set_fill_hook(mcescan_chunk_hook hook, void *ctx);

// Linux calls the Swift Glibc module does not import. Each returns -1 with errno on failure.

/// memfd_create(name, MFD_CLOEXEC), with MFD_HUGETLB and the page size log2 when huge_log2 != 0.
int mcescan_memfd(const char *name, unsigned huge_log2);
/// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): releases the memory behind a range of a memfd.
int mcescan_punch_hole(int fd, uint64_t offset, uint64_t length);
/// Maps a fresh memfd over [addr, addr+length) (MAP_FIXED) and truncates it to zero: the next
/// access raises a real SIGBUS with BUS_ADRERR (fault injection: "lost backing").
int mcescan_map_lost_backing(void *addr, size_t length);
/// madvise(MADV_HWPOISON): the kernel poisons the frames (needs CAP_SYS_ADMIN and
/// CONFIG_MEMORY_FAILURE; EINVAL without it). Real: the frame stays retired until reboot.
int mcescan_madvise_hwpoison(void *addr, size_t length);
/// Queues a SIGBUS to the calling thread with the given si_code, si_addr and si_addr_lsb
/// (rt_tgsigqueueinfo), as the kernel would deliver an early-kill notice. For tests.
int mcescan_raise_sigbus(void *addr, int si_code, int addr_lsb);

#ifdef __cplusplus
}
#endif
#endif
