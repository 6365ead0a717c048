// CScanKernel: thin wrappers for Linux calls the Swift Glibc module does not import
// (memfd_create, MADV_HWPOISON, fallocate flags, rt_tgsigqueueinfo). Each returns -1 with errno.
#define _GNU_SOURCE
#include "CScanKernel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif
#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif

int mcescan_memfd(const char *name, unsigned huge_log2) {
    unsigned flags = MFD_CLOEXEC;
    if (huge_log2 != 0) flags |= MFD_HUGETLB | (huge_log2 << MFD_HUGE_SHIFT);
    return memfd_create(name, flags);
}

int mcescan_punch_hole(int fd, uint64_t offset, uint64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

int mcescan_map_lost_backing(void *addr, size_t length) {
    int fd = memfd_create("mcescan-lost", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)length) != 0) goto fail;
    if (mmap(addr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) goto fail;
    // The mapping stays; its object shrinks to nothing, so the next access raises SIGBUS (BUS_ADRERR).
    if (ftruncate(fd, 0) != 0) goto fail;
    close(fd);
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int mcescan_madvise_hwpoison(void *addr, size_t length) { return madvise(addr, length, MADV_HWPOISON); }

int mcescan_raise_sigbus(void *addr, int si_code, int addr_lsb) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGBUS;
    si.si_code = si_code;
    si.si_addr = addr;
    si.si_addr_lsb = (short)addr_lsb;
    return (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), SIGBUS, &si);
}
