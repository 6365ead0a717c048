import HostFS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A dedicated nice-19 thread that runs `body` every `interval` seconds until `stop()`, for
/// collectors whose sources are too slow or too intrusive to read at scrape time (the hwpoison
/// census, EDAC scrub sampling). `stop()` wakes the sleep through a pipe and joins the thread;
/// `isStopping` lets a long `body` give up early. One lifecycle: after `stop()` it never restarts.
final class PeriodicThread: Sendable {
    private let interval: Double
    private let stopping = Atomic<Bool>(false)
    private let wakePipe: (read: Int32, write: Int32)
    private let thread = Mutex<pthread_t?>(nil)

    init(interval: Double) {
        self.interval = interval
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        } else {
            fds = [-1, -1]
        }
        wakePipe = (fds[0], fds[1])
    }

    deinit {
        if wakePipe.read >= 0 { close(wakePipe.read) }
        if wakePipe.write >= 0 { close(wakePipe.write) }
    }

    /// Whether `stop()` was called.
    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Starts the thread. With `runFirst` the first `body` runs at once, else after one interval.
    /// A second call does nothing. Returns 0, or the `pthread_create` error.
    @discardableResult
    func start(runFirst: Bool = false, _ body: @escaping @Sendable () -> Void) -> Int32 {
        thread.withLock { current -> Int32 in
            guard current == nil, !stopping.load(ordering: .relaxed) else { return 0 }
            let box = Unmanaged.passRetained(PeriodicThreadBox(owner: self, body: body, runFirst: runFirst)).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                let box = Unmanaged<PeriodicThreadBox>.fromOpaque(arg!).takeRetainedValue()
                box.owner.loop(box.body, runFirst: box.runFirst)
                return nil
            }, box)
            if rc != 0 {
                Unmanaged<PeriodicThreadBox>.fromOpaque(box).release()
                return rc
            }
            current = tid
            return 0
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        if wakePipe.write >= 0 {
            var byte: UInt8 = 1
            _ = write(wakePipe.write, &byte, 1)
        }
        let tid = thread.withLock { current -> pthread_t? in
            defer { current = nil }
            return current
        }
        if let tid { pthread_join(tid, nil) }
    }

    /// Thread priority: the lowest, like the scan workers.
    static let nice: Int32 = 19

    private func loop(_ body: @Sendable () -> Void, runFirst: Bool) {
        // Only this thread: on Linux, setpriority with a thread id sets that thread's nice value.
        // The thread id comes from the /proc/thread-self link (`<pid>/task/<tid>`): Glibc's
        // gettid() is not visible to Swift without _GNU_SOURCE.
        if let link = HostTree(root: "/").readLink("proc/thread-self"), let tid = link.split(separator: "/").last.flatMap({ id_t($0) }) {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, Self.nice)
        }
        if runFirst && !stopping.load(ordering: .relaxed) { body() }
        while true {
            var pfd = pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0)
            let deadline = monotonicSeconds() + interval
            while !stopping.load(ordering: .relaxed) {
                let left = deadline - monotonicSeconds()
                if left <= 0 { break }
                if pfd.fd >= 0 {
                    _ = poll(&pfd, 1, Int32(min(left * 1000, 1_000_000).rounded(.up)))
                } else {
                    usleep(UInt32(min(left, 0.25) * 1_000_000))  // no wake pipe: poll the stop flag
                }
            }
            if stopping.load(ordering: .relaxed) { return }
            body()
        }
    }
}

private final class PeriodicThreadBox {
    let owner: PeriodicThread
    let body: @Sendable () -> Void
    let runFirst: Bool
    init(owner: PeriodicThread, body: @escaping @Sendable () -> Void, runFirst: Bool) {
        self.owner = owner
        self.body = body
        self.runFirst = runFirst
    }
}
