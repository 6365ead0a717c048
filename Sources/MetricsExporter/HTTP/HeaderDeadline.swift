import CMicroHTTPD
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Closes connections that have not delivered a whole request head within `seconds` of being
/// accepted, or of their previous request completing (keep-alive), however many bytes they trickle.
///
/// libmicrohttpd's connection timeout is an idle timeout that every received byte resets, so a peer
/// sending one header byte every few seconds (slowloris) would keep its connection, and its place
/// under the connection limit, for ever. The TLS handshake happens in the same window, so a stalled
/// handshake is cut the same way. The socket is shut down (not closed) under the table's lock: the
/// file descriptor stays libmicrohttpd's, which sees end-of-stream and closes the connection itself,
/// and a connection is removed from the table (its CLOSED notice) before libmicrohttpd closes its
/// descriptor, so a descriptor number that was reused is never touched.
final class HeaderDeadline: @unchecked Sendable {
    private struct Entry {
        var fd: Int32
        /// Since when the connection has owed a request head; nil while a request is being served.
        var owingSince: Double?
    }

    let seconds: Double
    private var table: [UInt: Entry] = [:]   // guarded by `mutex`; key: the MHD_Connection pointer
    private var stopping = false              // guarded by `mutex`
    private var expired = 0                   // guarded by `mutex`
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var thread: pthread_t?

    init(seconds: Double) {
        self.seconds = seconds
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
            let me = Unmanaged<HeaderDeadline>.fromOpaque(arg!).takeRetainedValue()
            me.run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<HeaderDeadline>.fromOpaque(box).release()
            throw HTTPServerError("cannot start the header deadline thread: \(String(cString: strerror(rc)))")
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

    func accepted(_ connection: OpaquePointer) {
        let fd = mcescan_mhd_connection_fd(connection)
        guard fd >= 0 else { return }
        locked { table[key(connection)] = Entry(fd: fd, owingSince: monotonicSeconds()) }
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

/// libmicrohttpd's connection notifications, forwarded to the server's `HeaderDeadline`.
let connectionNotify: MHD_NotifyConnectionCallback = { cls, connection, _, code in
    guard let cls, let connection else { return }
    let deadline = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue().deadline
    if code.rawValue == 0 {   // MHD_CONNECTION_NOTIFY_STARTED (1 is _CLOSED)
        deadline.accepted(connection)
    } else {
        deadline.closed(connection)
    }
}
