#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, for state that scan workers, the control API and scrapes
/// share.
///
/// Why not `Synchronization.Mutex`: on Linux it hands a contended lock over through a
/// priority-inheritance futex, inside the kernel, where ThreadSanitizer cannot see the
/// happens-before edge; the worker tests then report races that are not there (seen in CI when
/// two workers bound their arenas at the same instant). A pthread mutex is intercepted by TSan.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
