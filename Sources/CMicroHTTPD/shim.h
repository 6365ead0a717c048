// libmicrohttpd, as a Swift module.
//
// This must be C: MHD_start_daemon is variadic (options are passed as a MHD_OPTION_END-terminated
// list), and Swift cannot call C variadic functions. The wrapper below takes every option the
// exporter uses as an ordinary parameter.
#ifndef MCESCAN_CMICROHTTPD_SHIM_H
#define MCESCAN_CMICROHTTPD_SHIM_H

#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdarg.h>
#include <stddef.h>
#include <microhttpd.h>

/// MHD_OPTION_UNESCAPE_CALLBACK: percent-decodes `s` in place like libmicrohttpd's own decoder,
/// except that `%00` is left as it is. Decoded, it would end the C string the handler receives,
/// so `/api/v1/nodes/0%00/x` would reach the routes as `/api/v1/nodes/0`; kept, the server can
/// refuse it. Returns the new length.
static inline size_t mcescan_mhd_unescape(void *cls, struct MHD_Connection *connection, char *s) {
    (void)cls; (void)connection;
    char *out = s;
    for (const char *in = s; *in != '\0'; ) {
        int hi = -1, lo = -1;
        if (in[0] == '%' && in[1] != '\0' && in[2] != '\0') {
            char h = in[1], l = in[2];
            hi = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            lo = (l >= '0' && l <= '9') ? l - '0' : (l >= 'a' && l <= 'f') ? l - 'a' + 10 : (l >= 'A' && l <= 'F') ? l - 'A' + 10 : -1;
        }
        if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

/// Starts a daemon on an already bound and listening socket `listen_fd`.
///
/// - flags: MHD_FLAG bits (epoll internal thread, ITC for quiescing, TLS when a key is given).
/// - pool_size: worker threads of the internal thread pool (1 = no pool).
/// - connection_limit / timeout_seconds: MHD_OPTION_CONNECTION_LIMIT / _CONNECTION_TIMEOUT.
/// - memory_limit: per-connection memory pool, bounds the request header size.
/// - admit / admit_cls: the accept policy, asked before each connection is accepted (the per-peer
///   connection limit is kept there, not with MHD_OPTION_PER_IP_CONNECTION_LIMIT, so that loopback
///   peers, which all share one address, can be left out of it).
/// - notify / notify_cls: MHD_OPTION_NOTIFY_CONNECTION, told when a connection is accepted and
///   when it is closed (the header deadline is kept from these).
/// - tls_key_pem / tls_cert_pem: NUL-terminated PEM strings, or NULL for plain HTTP.
/// - tls_priorities: a GnuTLS priority string (MHD_OPTION_HTTPS_PRIORITIES), or NULL for libmicrohttpd's
///   default ("NORMAL", which on Debian 12 still offers TLS 1.0 and 1.1).
/// Returns NULL on failure (libmicrohttpd does not report why; MHD_USE_ERROR_LOG prints it).
static inline struct MHD_Daemon *
mcescan_mhd_start(unsigned int flags, int listen_fd,
                  MHD_AccessHandlerCallback handler, void *handler_cls,
                  MHD_RequestCompletedCallback completed, void *completed_cls,
                  unsigned int pool_size, unsigned int connection_limit,
                  unsigned int timeout_seconds, size_t memory_limit,
                  MHD_AcceptPolicyCallback admit, void *admit_cls,
                  MHD_NotifyConnectionCallback notify, void *notify_cls,
                  const char *tls_key_pem, const char *tls_cert_pem, const char *tls_priorities) {
    if (tls_key_pem != NULL && tls_cert_pem != NULL) {
        if (tls_priorities == NULL) tls_priorities = "NORMAL";
        return MHD_start_daemon(flags | MHD_USE_TLS, 0, admit, admit_cls, handler, handler_cls,
                                MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                                MHD_OPTION_THREAD_POOL_SIZE, pool_size,
                                MHD_OPTION_CONNECTION_LIMIT, connection_limit,
                                MHD_OPTION_CONNECTION_TIMEOUT, timeout_seconds,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory_limit,
                                MHD_OPTION_NOTIFY_CONNECTION, notify, notify_cls,
                                MHD_OPTION_UNESCAPE_CALLBACK, mcescan_mhd_unescape, NULL,
                                MHD_OPTION_HTTPS_MEM_KEY, tls_key_pem,
                                MHD_OPTION_HTTPS_MEM_CERT, tls_cert_pem,
                                MHD_OPTION_HTTPS_PRIORITIES, tls_priorities,
                                MHD_OPTION_END);
    }
    return MHD_start_daemon(flags, 0, admit, admit_cls, handler, handler_cls,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_cls,
                            MHD_OPTION_THREAD_POOL_SIZE, pool_size,
                            MHD_OPTION_CONNECTION_LIMIT, connection_limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, timeout_seconds,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory_limit,
                            MHD_OPTION_NOTIFY_CONNECTION, notify, notify_cls,
                            MHD_OPTION_UNESCAPE_CALLBACK, mcescan_mhd_unescape, NULL,
                            MHD_OPTION_END);
}

/// The socket of a connection, or -1 when libmicrohttpd does not say.
static inline int mcescan_mhd_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : (int)info->connect_fd;
}

/// Number of connections the daemon currently holds (0 when it cannot tell).
static inline unsigned int mcescan_mhd_current_connections(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info == NULL ? 0 : info->num_connections;
}

/// The peer address of a connection, copied into `out` (at most `out_len` bytes).
/// Returns the address length, or 0 when libmicrohttpd does not know it.
static inline socklen_t mcescan_mhd_client_address(struct MHD_Connection *connection,
                                                  struct sockaddr_storage *out) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL) return 0;
    socklen_t len = info->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                             : sizeof(struct sockaddr_in);
    __builtin_memcpy(out, info->client_addr, len);
    return len;
}
#endif
