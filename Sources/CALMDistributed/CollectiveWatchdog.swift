import Foundation

/// Ends this process when a collective call waits longer than `timeout`: a peer that hangs
/// (stopped, deadlocked, a host that vanished without closing its connections) would
/// otherwise keep every other rank waiting forever. The process exits without
/// `MPI_Finalize`, which makes `mpirun` end the remaining ranks; a watchdog thread may not
/// call MPI itself (MPI was initialised for one thread).
final class CollectiveWatchdog: @unchecked Sendable {
    let timeout: Double
    private let lock = NSLock()
    private var deadline: Date?
    private var waitingFor = ""
    private let report: @Sendable (String) -> Void

    init(timeout: Double, report: @escaping @Sendable (String) -> Void) {
        self.timeout = timeout
        self.report = report
        let thread = Thread { [self] in watch() }
        thread.name = "calm-mpi-watchdog"
        thread.start()
    }

    /// Runs `body` (one collective) under the deadline; `patient` waits have none.
    func guarded<T>(_ what: String, patient: Bool, _ body: () throws -> T) rethrows -> T {
        if !patient {
            lock.withLock {
                deadline = Date().addingTimeInterval(timeout)
                waitingFor = what
            }
        }
        defer { lock.withLock { deadline = nil } }
        return try body()
    }

    private func expiredWait() -> String? {
        lock.withLock {
            guard let deadline, Date() > deadline else { return nil }
            return waitingFor
        }
    }

    private func watch() {
        while true {
            Thread.sleep(forTimeInterval: min(1, timeout / 4))
            guard expiredWait() != nil else { continue }
            // A process that was itself stopped finds its deadline passed when it wakes,
            // usually because mpirun is ending it; give that a moment before reporting.
            Thread.sleep(forTimeInterval: 1)
            if let expired = expiredWait() {
                report(String(format: "no answer from the other ranks for %g s in %@ (a rank died, hangs or is unreachable); stopping. "
                              + "CALM_MPI_TIMEOUT sets this limit in seconds", timeout, expired))
                _exit(3)
            }
        }
    }
}
