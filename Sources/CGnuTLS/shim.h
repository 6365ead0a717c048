// GnuTLS (the TLS library Debian's libmicrohttpd is built with), as a Swift module.
//
// Used for two things only: (1) load the configured certificate and key exactly the way
// libmicrohttpd will (gnutls_certificate_set_x509_key_mem2) before the server starts, so a bad file is
// reported naming the key of the web config file instead of a bare "daemon did not start"; (2) a
// keyed hash (HMAC-SHA-256) for the basic-auth cache, so the cache never holds a password.
// Why C: gnutls_datum_t juggling and the allocate/free pairs are simplest kept in one place.
#ifndef MCESCAN_CGNUTLS_SHIM_H
#define MCESCAN_CGNUTLS_SHIM_H

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stddef.h>
#include <time.h>

/// Parses a PEM certificate chain. Returns the number of certificates (>= 1), or a negative GnuTLS
/// error code. `expires` gets the first (leaf) certificate's notAfter time.
static inline int mcescan_tls_check_certificates(const char *pem, size_t len, time_t *expires) {
    gnutls_datum_t datum = { (unsigned char *)pem, (unsigned int)len };
    gnutls_x509_crt_t *list = NULL;
    unsigned int count = 0;
    int rc = gnutls_x509_crt_list_import2(&list, &count, &datum, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) return rc;
    if (count == 0) return GNUTLS_E_NO_CERTIFICATE_FOUND;
    *expires = gnutls_x509_crt_get_expiration_time(list[0]);
    for (unsigned int i = 0; i < count; i++) gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    return (int)count;
}

/// Parses a PEM private key (unencrypted; libmicrohttpd is given no password). 0 or a negative
/// GnuTLS error code.
static inline int mcescan_tls_check_key(const char *pem, size_t len) {
    gnutls_datum_t datum = { (unsigned char *)pem, (unsigned int)len };
    gnutls_x509_privkey_t key;
    int rc = gnutls_x509_privkey_init(&key);
    if (rc < 0) return rc;
    rc = gnutls_x509_privkey_import2(key, &datum, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_x509_privkey_deinit(key);
    return rc < 0 ? rc : 0;
}

/// Loads certificate and key together, as libmicrohttpd does (this is where a key that does not
/// belong to the certificate is caught). 0 or a negative GnuTLS error code.
static inline int mcescan_tls_check_pair(const char *cert, size_t cert_len, const char *key, size_t key_len) {
    gnutls_certificate_credentials_t credentials;
    int rc = gnutls_certificate_allocate_credentials(&credentials);
    if (rc < 0) return rc;
    gnutls_datum_t c = { (unsigned char *)cert, (unsigned int)cert_len };
    gnutls_datum_t k = { (unsigned char *)key, (unsigned int)key_len };
    rc = gnutls_certificate_set_x509_key_mem2(credentials, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(credentials);
    return rc < 0 ? rc : 0;
}

/// Checks a GnuTLS priority string (what libmicrohttpd's MHD_OPTION_HTTPS_PRIORITIES takes).
static inline int mcescan_tls_check_priorities(const char *priorities) {
    gnutls_priority_t cache;
    int rc = gnutls_priority_init(&cache, priorities, NULL);
    if (rc < 0) return rc;
    gnutls_priority_deinit(cache);
    return 0;
}

/// HMAC-SHA-256 of `data` under `key` into `digest` (32 bytes). 0 or a negative GnuTLS error code.
static inline int mcescan_hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len,
                                      unsigned char digest[32]) {
    return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, data_len, digest);
}

/// Fills `buffer` with key-grade random bytes. 0 or a negative GnuTLS error code.
static inline int mcescan_random_key(void *buffer, size_t len) {
    return gnutls_rnd(GNUTLS_RND_KEY, buffer, len);
}
#endif
