import CMicroHTTPD
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The server's table of open connections, which keeps two limits libmicrohttpd does not keep the
/// way we need.
///
/// The head deadline: a connection that has not delivered a whole request head within `seconds`
/// of being accepted, or of its previous request completing (keep-alive), is cut, however many
/// bytes it trickles.
///
/// libmicrohttpd's connection timeout is an idle timeout that every received byte resets, so a peer
/// sending one header byte every few seconds (slowloris) would keep its connection, and its place
/// under the connection limit, for ever. The TLS handshake happens in the same window, so a stalled
/// handshake is cut the same way. The socket is shut down (not closed) under the table's lock: the
/// file descriptor stays libmicrohttpd's, which sees end-of-stream and closes the connection itself,
/// and a connection is removed from the table (its CLOSED notice) before libmicrohttpd closes its
/// descriptor, so a descriptor number that was reused is never touched.
///
/// The per-peer share: one peer address may hold at most `perPeerLimit` connections, so one
/// misbehaving host cannot take every place and a scrape from another address still gets in.
/// Loopback peers are left out unless `limitsLoopback`: every local client (Prometheus on the
/// host, an authenticating proxy sidecar, an operator's curl) shares one loopback address, and
/// capping them together would make them starve each other. The check runs before accept and the
/// count is taken when the connection starts, so concurrent accepts on several threads may let a
/// peer exceed its share by at most one connection per thread.
final class ConnectionGuard: @unchecked Sendable {
    private struct Entry {
        var fd: Int32
        var peer: PeerAddress?
        /// Since when the connection has owed a request head; nil while a request is being served.
        var owingSince: Double?
    }

    let seconds: Double
    let perPeerLimit: Int
    let limitsLoopback: Bool
    private var table: [UInt: Entry] = [:]   // guarded by `mutex`; key: the MHD_Connection pointer
    private var stopping = false              // guarded by `mutex`
    private var expired = 0                   // guarded by `mutex`
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var thread: pthread_t?

    init(seconds: Double, perPeerLimit: Int, limitsLoopback: Bool) {
        self.seconds = seconds
        self.perPeerLimit = max(1, perPeerLimit)
        self.limitsLoopback = limitsLoopback
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(wake, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    /// Connections cut so far because their request head was late.
    var expiredConnections: Int { locked { expired } }

    /// Starts the thread that enforces the deadline (it sleeps while no connection owes a head).
    func start() throws(HTTPServerError) {
        var tid = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let me = Unmanaged<ConnectionGuard>.fromOpaque(arg!).takeRetainedValue()
            me.run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<ConnectionGuard>.fromOpaque(box).release()
            throw HTTPServerError("cannot start the connection guard thread: \(String(cString: strerror(rc)))")
        }
        thread = tid
    }

    /// Stops and joins the thread. Call after every daemon has stopped.
    func stop() {
        locked { stopping = true }
        pthread_cond_signal(wake)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    // MARK: libmicrohttpd notifications (its threads)

    /// Whether a connection from `peer` may be accepted now.
    func admits(_ peer: PeerAddress) -> Bool {
        if peer.isLoopback && !limitsLoopback { return true }
        return locked { table.values.lazy.filter { $0.peer == peer }.count < perPeerLimit }
    }

    func accepted(_ connection: OpaquePointer) {
        let fd = mcescan_mhd_connection_fd(connection)
        guard fd >= 0 else { return }
        let entry = Entry(fd: fd, peer: peerAddress(connection), owingSince: monotonicSeconds())
        locked { table[key(connection)] = entry }
        pthread_cond_signal(wake)
    }

    func headArrived(_ connection: OpaquePointer) {
        locked { table[key(connection)]?.owingSince = nil }
    }

    func requestDone(_ connection: OpaquePointer) {
        locked { table[key(connection)]?.owingSince = monotonicSeconds() }
        pthread_cond_signal(wake)
    }

    func closed(_ connection: OpaquePointer) {
        locked { _ = table.removeValue(forKey: key(connection)) }
    }

    // MARK: the thread

    private func run() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !stopping {
            let now = monotonicSeconds()
            var next: Double?
            for (k, entry) in table {
                guard let since = entry.owingSince else { continue }
                if now - since >= seconds {
                    shutdown(entry.fd, Int32(SHUT_RDWR))
                    table[k]?.owingSince = nil
                    expired += 1
                } else {
                    next = min(next ?? .infinity, since + seconds)
                }
            }
            if let next {
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                let wait = max(0.01, next - now)
                let total = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 + wait
                var until = timespec(tv_sec: Int(total), tv_nsec: Int((total - total.rounded(.down)) * 1e9))
                pthread_cond_timedwait(wake, mutex, &until)
            } else {
                pthread_cond_wait(wake, mutex)
            }
        }
    }

    private func key(_ connection: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(connection))) }

    private func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// libmicrohttpd's accept policy: refuses a peer that already holds its share of connections.
let admitConnection: MHD_AcceptPolicyCallback = { cls, address, _ in
    guard let cls, let address, let peer = PeerAddress(address) else { return .YES }
    return Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue().connections.admits(peer) ? .YES : .NO
}

/// libmicrohttpd's connection notifications, forwarded to the server's `ConnectionGuard`.
let connectionNotify: MHD_NotifyConnectionCallback = { cls, connection, _, code in
    guard let cls, let connection else { return }
    let connections = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue().connections
    if code.rawValue == 0 {   // MHD_CONNECTION_NOTIFY_STARTED (1 is _CLOSED)
        connections.accepted(connection)
    } else {
        connections.closed(connection)
    }
}
