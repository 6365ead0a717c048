// libcrypt (libxcrypt on Debian), as a Swift module: bcrypt verification for basic auth.
//
// Why C: `struct crypt_data` is 32 KiB of scratch state that holds password-derived material; the
// wrapper below allocates it on the heap, wipes it with explicit_bzero before freeing (Swift cannot
// promise that a store to memory about to be freed is not optimised away), and folds libxcrypt's
// two failure conventions (NULL, or a string starting with '*') into one return code.
#ifndef MCESCAN_CCRYPT_SHIM_H
#define MCESCAN_CCRYPT_SHIM_H

// No _GNU_SOURCE here: it changes how glibc declares fd_set, and Clang then refuses to merge this
// module with others that include <sys/select.h> (crypt_r and explicit_bzero need only the defaults).
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

/// Hashes `phrase` with the method, cost and salt of `setting` (for bcrypt: a whole stored hash)
/// into `out` (NUL-terminated). Returns the length written, or -1 when libcrypt rejects the setting,
/// the output does not fit, or memory is short.
static inline long mcescan_crypt(const char *phrase, const char *setting, char *out, size_t out_len) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return -1;
    long result = -1;
    const char *hash = crypt_r(phrase, setting, data);
    if (hash != NULL && hash[0] != '*') {
        size_t len = strlen(hash);
        if (len < out_len) {
            memcpy(out, hash, len + 1);
            result = (long)len;
        }
    }
    explicit_bzero(data, sizeof(struct crypt_data));
    free(data);
    return result;
}

/// A new setting string ("$2b$10$<22 salt chars>") for `prefix` and `cost`, salted from the OS
/// random source. Returns 0, or -1 when the prefix or cost is not supported.
static inline int mcescan_crypt_gensalt(const char *prefix, unsigned long cost, char *out, int out_len) {
    return crypt_gensalt_rn(prefix, cost, NULL, 0, out, out_len) == NULL ? -1 : 0;
}
#endif
