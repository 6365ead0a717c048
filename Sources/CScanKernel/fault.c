// CScanKernel: SIGBUS-safe reading (platform-notes.md §3) and out-of-scan poison notices.
//
// Why C: recovering from a SIGBUS means siglongjmp out of a signal handler back into the scan loop;
// Swift frames must never be jumped across, so the handler, the jump buffer and the loop live here.
//
// Design:
// - One process-wide handler for SIGBUS and SIGSEGV, installed once (pthread_once) with
//   SA_SIGINFO | SA_ONSTACK; the handlers installed before it (the Swift runtime's backtracer, or
//   SIG_DFL) are kept and chained to.
// - Per thread (initial-exec TLS, so the handler never allocates): an armed flag, the jump buffer and
//   the address range being scanned. Only a SIGBUS whose si_addr lies inside that range while armed
//   is recovered; every other fault chains, so a real crash stays a crash.
// - A SIGBUS with BUS_MCEERR_AO/AR for an address inside a registered scanner region that is not
//   being scanned (early-kill notices; the kernel's signal during madvise(MADV_HWPOISON)) is recorded
//   in a lock-free table and the handler returns. A second unarmed BUS_MCEERR_AR for the same address
//   on the same thread is a retried access, not a notice: it chains (otherwise it would loop forever).
#define _GNU_SOURCE
#include "CScanKernel.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TLS_IE __attribute__((tls_model("initial-exec")))

static __thread volatile int tl_armed TLS_IE;
static __thread sigjmp_buf *volatile tl_jb TLS_IE;
static __thread volatile uintptr_t tl_lo TLS_IE, tl_hi TLS_IE;
static __thread volatile int tl_code TLS_IE, tl_lsb TLS_IE;
static __thread volatile uintptr_t tl_addr TLS_IE;
static __thread uintptr_t tl_last_async_ar TLS_IE;
static __thread int tl_prepared TLS_IE;
static __thread mcescan_chunk_hook tl_fill_hook TLS_IE;
static __thread void *tl_fill_hook_ctx TLS_IE;

void mcescan_test_set_fill_hook(mcescan_chunk_hook hook, void *ctx) {
    tl_fill_hook = hook;
    tl_fill_hook_ctx = ctx;
}

static struct sigaction prev_bus, prev_segv;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_errno;

// ---------------------------------------------------------------------------------------------
// Registered regions and the async poison table (lock-free: read from the signal handler).
// ---------------------------------------------------------------------------------------------
#define MAX_REGIONS 128
#define ASYNC_SLOTS 256

static struct {
    _Atomic uintptr_t start;
    _Atomic size_t length;
} regions[MAX_REGIONS];

static _Atomic uint64_t async_slots[ASYNC_SLOTS];
static _Atomic uint64_t async_dropped;

int mcescan_register_region(uintptr_t start, size_t length) {
    if (start == 0 || length == 0) { errno = EINVAL; return -1; }
    for (size_t i = 0; i < MAX_REGIONS; i++) {
        uintptr_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(&regions[i].start, &expected, start,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            atomic_store_explicit(&regions[i].length, length, memory_order_release);
            return 0;
        }
    }
    errno = ENOSPC;
    return -1;
}

void mcescan_unregister_region(uintptr_t start) {
    for (size_t i = 0; i < MAX_REGIONS; i++)
        if (atomic_load_explicit(&regions[i].start, memory_order_acquire) == start) {
            atomic_store_explicit(&regions[i].length, 0, memory_order_release);
            atomic_store_explicit(&regions[i].start, 0, memory_order_release);
            return;
        }
}

static int in_registered_region(uintptr_t addr) {
    for (size_t i = 0; i < MAX_REGIONS; i++) {
        uintptr_t s = atomic_load_explicit(&regions[i].start, memory_order_acquire);
        if (s == 0 || addr < s) continue;
        size_t len = atomic_load_explicit(&regions[i].length, memory_order_acquire);
        if (addr - s < len) return 1;
    }
    return 0;
}

static void record_async(uint64_t addr) {
    for (size_t i = 0; i < ASYNC_SLOTS; i++) {
        uint64_t expected = 0;
        if (atomic_compare_exchange_strong_explicit(&async_slots[i], &expected, addr,
                                                    memory_order_acq_rel, memory_order_relaxed))
            return;
    }
    atomic_fetch_add_explicit(&async_dropped, 1, memory_order_relaxed);
}

static size_t take_async(uint64_t lo, uint64_t len, int ranged, uint64_t *out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < ASYNC_SLOTS && n < max; i++) {
        uint64_t a = atomic_load_explicit(&async_slots[i], memory_order_acquire);
        if (a == 0) continue;
        if (ranged && (a < lo || a - lo >= len)) continue;
        if (atomic_compare_exchange_strong_explicit(&async_slots[i], &a, 0, memory_order_acq_rel, memory_order_relaxed))
            out[n++] = a;
    }
    return n;
}

size_t mcescan_take_async_poison(uint64_t *out, size_t max) { return take_async(0, 0, 0, out, max); }

size_t mcescan_take_async_poison_in(uintptr_t start, size_t length, uint64_t *out, size_t max) {
    return take_async(start, length, 1, out, max);
}

uint64_t mcescan_async_poison_dropped(void) { return atomic_load_explicit(&async_dropped, memory_order_relaxed); }

// ---------------------------------------------------------------------------------------------
// The handler.
// ---------------------------------------------------------------------------------------------
static int is_mceerr(int code) { return code == BUS_MCEERR_AR || code == BUS_MCEERR_AO; }

static void chain(int sig, siginfo_t *si, void *uc) {
    const struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction != NULL) { prev->sa_sigaction(sig, si, uc); return; }
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    // SIG_DFL (SIG_IGN is not honoured by the kernel for a fault either): die of this signal.
    // The signal is blocked while the handler runs, so the re-raised one stays pending and kills
    // the process when the handler returns (a retried faulting instruction would do the same).
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
    int saved_errno = errno;
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (sig == SIGBUS && tl_armed && addr >= tl_lo && addr < tl_hi) {
        tl_armed = 0;
        tl_code = si->si_code;
        tl_addr = addr;
        tl_lsb = is_mceerr(si->si_code) ? si->si_addr_lsb : 0;
        errno = saved_errno;
        siglongjmp(*tl_jb, 1);
    }
    if (sig == SIGBUS && is_mceerr(si->si_code) && in_registered_region(addr)
        && !(si->si_code == BUS_MCEERR_AR && addr == tl_last_async_ar)) {
        if (si->si_code == BUS_MCEERR_AR) tl_last_async_ar = addr;
        record_async((uint64_t)addr);
        errno = saved_errno;
        return;
    }
    chain(sig, si, uc);
    errno = saved_errno;
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    // Read the previous handlers first so a fault on another thread never sees them half-written.
    if (sigaction(SIGBUS, NULL, &prev_bus) != 0 || sigaction(SIGSEGV, NULL, &prev_segv) != 0
        || sigaction(SIGBUS, &sa, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0)
        install_errno = errno ? errno : EINVAL;
}

// ---------------------------------------------------------------------------------------------
// Per-thread alternate signal stack, freed at thread exit.
// ---------------------------------------------------------------------------------------------
#define ALTSTACK_BYTES (256 * 1024)

static pthread_key_t altstack_key;
static pthread_once_t altstack_key_once = PTHREAD_ONCE_INIT;

static void altstack_free(void *mem) {
    stack_t off;
    memset(&off, 0, sizeof off);
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, NULL);
    munmap(mem, ALTSTACK_BYTES + (size_t)sysconf(_SC_PAGESIZE));
}

static void altstack_key_create(void) { pthread_key_create(&altstack_key, altstack_free); }

int mcescan_prepare_thread(void) {
    pthread_once(&install_once, install);
    if (install_errno != 0) { errno = install_errno; return -1; }
    if (tl_prepared) return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0) return -1;
    if (!(cur.ss_flags & SS_DISABLE) && cur.ss_size >= 64 * 1024) { tl_prepared = 1; return 0; }
    pthread_once(&altstack_key_once, altstack_key_create);
    size_t guard = (size_t)sysconf(_SC_PAGESIZE);
    void *mem = mmap(NULL, ALTSTACK_BYTES + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) return -1;
    mprotect(mem, guard, PROT_NONE);  // the stack grows down: a guard page below it
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = (char *)mem + guard;
    ss.ss_size = ALTSTACK_BYTES;
    if (sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        munmap(mem, ALTSTACK_BYTES + guard);
        errno = e;
        return -1;
    }
    pthread_setspecific(altstack_key, mem);
    tl_prepared = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Fault-safe sweeps.
// ---------------------------------------------------------------------------------------------
static void record_fault(mcescan_fault_list *faults, size_t page) {
    if (faults == NULL) return;
    if (faults->recorded < MCESCAN_MAX_FAULTS) {
        mcescan_fault *f = &faults->faults[faults->recorded++];
        f->page_index = page;
        f->address = tl_addr;
        f->si_code = tl_code;
        f->addr_lsb = tl_lsb;
    }
    faults->count += 1;
}

// Runs its argument (a block) armed: a SIGBUS inside [tl_lo, tl_hi) during it lands at the
// sweep's sigsetjmp. The signal fences keep the compiler from moving the block's memory accesses
// out of the armed window.
#define ARMED(...) do { \
        tl_armed = 1; \
        atomic_signal_fence(memory_order_seq_cst); \
        __VA_ARGS__ \
        atomic_signal_fence(memory_order_seq_cst); \
        tl_armed = 0; \
    } while (0)

// Fills the pages with seed/invert (non-temporal). The whole remaining range is one armed call;
// the fill is linear, so a fault names its page through si_addr, the pages before it are complete,
// and the sweep resumes after it.
static size_t fill_sweep(void *base, size_t page_size, size_t npages, uint64_t seed, int invert,
                         mcescan_fault_list *faults) {
    const mcescan_variant *v = mcescan_current_variant();
    sigjmp_buf jb;
    volatile size_t page = 0;
    volatile size_t done = 0;
    tl_lo = (uintptr_t)base;
    tl_hi = (uintptr_t)base + page_size * npages;
    tl_jb = &jb;
    if (sigsetjmp(jb, 1) != 0) {
        // Only a SIGBUS inside [tl_lo, tl_hi) while armed lands here.
        size_t bad = (size_t)((tl_addr - (uintptr_t)base) / page_size);
        if (bad < page) bad = page;   // cannot happen: pages before `page` were finished
        done = done + (bad - page);
        record_fault(faults, bad);
        page = bad + 1;
    }
    while (page < npages) {
        ARMED({ v->fill((char *)base + page * page_size, (npages - page) * page_size, seed, invert != 0); });
        done = done + (npages - page);
        page = npages;
    }
    tl_jb = NULL;
    tl_lo = 0;
    tl_hi = 0;
    return done;
}

// Verifies the pages (and, with refill, rewrites them with next_* right after), one chunk of about
// MCESCAN_CHUNK_BYTES at a time.
// - Fast path: one armed call verifies the whole chunk in interleaved streams (kernel.c); with
//   refill, a second armed call then fills it (non-temporal, linear). The verify does not read the
//   lines in address order, so a fault there only says "somewhere in this chunk": the result is
//   rolled back to what it was before the chunk (nothing was written yet) and the chunk is done again
//   on the slow path. A fault in the fill (the page was verified a moment before, so it lost its
//   backing or was poisoned since: a race) names its page, and the fill goes on after it.
// - Slow path: page by page, verify then fill, each an armed call; a faulting page (the fault recurs:
//   a truncated memfd page or a hwpoison entry keeps raising SIGBUS) is rolled back, recorded and
//   skipped, so it contributes its fault and nothing else.
// A chunk with no fault costs one or two armed calls; faults are rare, so the slow path's speed is moot.
enum { FAST_VERIFY, FAST_FILL, SLOW };

static size_t verify_sweep(void *base, size_t page_size, size_t npages, uint64_t seed, int invert,
                           int refill, uint64_t next_seed, int next_invert,
                           mcescan_verify_result *out, mcescan_fault_list *faults) {
    const mcescan_variant *v = mcescan_current_variant();
    const size_t chunk_pages = page_size >= MCESCAN_CHUNK_BYTES ? 1 : MCESCAN_CHUNK_BYTES / page_size;
    const uint64_t page_words = page_size / 8;
    sigjmp_buf jb;
    volatile size_t chunk = 0;      // first page of the chunk in progress
    volatile size_t page = 0;       // FAST_FILL: first page still to fill; SLOW: the page in progress
    volatile int phase = FAST_VERIFY;
    volatile size_t done = 0;
    // The result as it was before the chunk (FAST_VERIFY) or the page (SLOW) in progress.
    volatile uint64_t snap_words = 0, snap_corrupted = 0, snap_up = 0, snap_down = 0;
    volatile uint32_t snap_recorded = 0;
#define SNAPSHOT() (snap_words = out->words_checked, snap_corrupted = out->corrupted_words, \
                    snap_up = out->flips_0to1, snap_down = out->flips_1to0, snap_recorded = out->mismatches_recorded)
#define ROLLBACK() (out->words_checked = snap_words, out->corrupted_words = snap_corrupted, \
                    out->flips_0to1 = snap_up, out->flips_1to0 = snap_down, out->mismatches_recorded = snap_recorded)
    tl_lo = (uintptr_t)base;
    tl_hi = (uintptr_t)base + page_size * npages;
    tl_jb = &jb;
    if (sigsetjmp(jb, 1) != 0) {
        // Only a SIGBUS inside [tl_lo, tl_hi) while armed lands here.
        size_t bad = (size_t)((tl_addr - (uintptr_t)base) / page_size);
        switch (phase) {
        case FAST_VERIFY:
            ROLLBACK();
            phase = SLOW;
            page = chunk;
            break;
        case FAST_FILL:
            // Verified and counted with the chunk, but it faults now: it counts as a fault instead.
            if (bad < page) bad = page;   // cannot happen: the fill is linear
            record_fault(faults, bad);
            done = done - 1;
            out->words_checked -= page_words;
            page = bad + 1;
            break;
        default:
            ROLLBACK();
            record_fault(faults, page);
            page = page + 1;
            break;
        }
    }
    while (chunk < npages) {
        size_t end = npages - chunk < chunk_pages ? npages : chunk + chunk_pages;
        if (phase == FAST_VERIFY) {
            SNAPSHOT();
            ARMED({ v->verify(base, (char *)base + chunk * page_size, (end - chunk) * page_size, seed, invert != 0, out); });
            done = done + (end - chunk);
            page = chunk;
            phase = refill ? FAST_FILL : FAST_VERIFY;
        }
        if (phase == FAST_FILL) {
            if (tl_fill_hook != NULL && page == chunk)
                tl_fill_hook(tl_fill_hook_ctx, (char *)base + chunk * page_size, (end - chunk) * page_size);
            if (page < end) {
                ARMED({ v->fill((char *)base + page * page_size, (end - page) * page_size, next_seed, next_invert != 0); });
            }
            phase = FAST_VERIFY;
        }
        if (phase == SLOW) {
            for (; page < end; page = page + 1) {
                char *q = (char *)base + page * page_size;
                SNAPSHOT();
                ARMED({
                    v->verify(base, q, page_size, seed, invert != 0, out);
                    if (refill) v->fill(q, page_size, next_seed, next_invert != 0);
                });
                done = done + 1;
            }
            phase = FAST_VERIFY;
        }
        chunk = end;
    }
#undef SNAPSHOT
#undef ROLLBACK
    tl_jb = NULL;
    tl_lo = 0;
    tl_hi = 0;
    return done;
}

static int sweep_args_ok(const void *base, size_t page_size) {
    return base != NULL && page_size != 0 && (page_size & 63) == 0 && ((uintptr_t)base & 63) == 0;
}

// Without a handler nothing could be recovered; if even the install failed, faults crash as before.
size_t mcescan_verify_safe(void *base, size_t page_size, size_t npages,
                           uint64_t seed, int invert, int refill, uint64_t next_seed, int next_invert,
                           mcescan_verify_result *out, mcescan_fault_list *faults) {
    if (!sweep_args_ok(base, page_size)) return 0;
    (void)mcescan_prepare_thread();
    return verify_sweep(base, page_size, npages, seed, invert, refill, next_seed, next_invert, out, faults);
}

size_t mcescan_fill_safe(void *base, size_t page_size, size_t npages, uint64_t seed, int invert,
                         mcescan_fault_list *faults) {
    if (!sweep_args_ok(base, page_size)) return 0;
    (void)mcescan_prepare_thread();
    return fill_sweep(base, page_size, npages, seed, invert, faults);
}
