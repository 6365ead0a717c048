import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Which signals the daemon takes and what each means.
///
/// SIGTERM and SIGINT stop it gracefully. SIGHUP, SIGUSR1 and SIGUSR2 would kill it silently by
/// default, which a stray `kill -HUP` (log rotation scripts, a closed terminal) should not do: the
/// daemon has nothing to reload (flags need a restart, knobs change through the API, the web
/// config is read at start), so these are logged and otherwise ignored. SIGPIPE is ignored so a
/// client that goes away mid-response costs only its connection.
enum DaemonSignals {
    static let shutdown: [Int32] = [SIGTERM, SIGINT]
    static let ignored: [Int32] = [SIGHUP, SIGUSR1, SIGUSR2]

    /// Blocks every handled signal in the calling thread. Call before any thread starts: every
    /// thread inherits the mask, so these signals are only ever taken by `waitForShutdown`.
    static func block() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in shutdown + ignored { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
        return set
    }

    /// Waits until a shutdown signal arrives, logging each ignored one; returns the shutdown signal.
    static func waitForShutdown(_ set: inout sigset_t, logger: Logger) -> Int32 {
        while true {
            var received: Int32 = 0
            guard sigwait(&set, &received) == 0 else { continue }
            if shutdown.contains(received) { return received }
            logger.warning("signal ignored", metadata: [
                "signal": "\(name(received))",
                "hint": "nothing to reload: change knobs through the API, flags and the web config need a restart"])
        }
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        default: return "signal \(signal)"
        }
    }
}
