import CALMTensor
import CALMTraining
import Foundation

/// A command's entry to data-parallel training: under Open MPI's `mpirun` it initialises MPI
/// and returns the group; without it, it returns nil and nothing changes. Ranks other than 0
/// have their standard output and error silenced (rank 0 alone reports), keeping a private
/// descriptor for their own fatal errors.
public enum MPIRun {
    final class Session: @unchecked Sendable {
        let mpi: OpenMPILibrary
        let group: MPIGroup
        let errorOutput: Int32
        init(mpi: OpenMPILibrary, group: MPIGroup, errorOutput: Int32) {
            self.mpi = mpi
            self.group = group
            self.errorOutput = errorOutput
        }
    }

    nonisolated(unsafe) static var session: Session?

    /// Environment variable `mpirun` sets in every process it starts.
    static let launchVariable = "OMPI_COMM_WORLD_SIZE"
    /// Seconds a collective may wait before the job is stopped (see `CollectiveWatchdog`).
    static let timeoutVariable = "CALM_MPI_TIMEOUT"
    static let defaultTimeout = 600.0

    public static var isLaunched: Bool { ProcessInfo.processInfo.environment[launchVariable] != nil }

    /// The group of this `mpirun` job, or nil when not launched by mpirun. Without an explicit
    /// thread count, BLAS gets the cores divided among the ranks on this host.
    public static func joinIfLaunched(threadsGiven: Bool) throws -> MPIGroup? {
        if let session { return session.group }
        let environment = ProcessInfo.processInfo.environment
        guard environment[launchVariable] != nil else { return nil }
        var timeout = defaultTimeout
        if let text = environment[timeoutVariable] {
            guard let value = Double(text), value > 0, value.isFinite else {
                throw DistributedError("\(timeoutVariable) must be a positive number of seconds, got \"\(text)\"")
            }
            timeout = value
        }
        let mpi = try OpenMPILibrary()
        try MPIGroup.check(mpi.initialize(nil, nil), "MPI_Init")
        let errorOutput = dup(STDERR_FILENO)
        let group = try MPIGroup(mpi: mpi, timeout: timeout) { message in
            writeLine("Error: \(describeRank()): \(message)", to: errorOutput)
        }
        session = Session(mpi: mpi, group: group, errorOutput: errorOutput)
        if group.rank != 0 { silenceStandardOutputs() }
        if !threadsGiven {
            let local = Int(environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
            BLAS.setThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local)))
        }
        return group
    }

    /// Ends MPI after a successful command (nothing without mpirun).
    public static func finish() {
        guard let session else { return }
        _ = session.mpi.finalize()
        Self.session = nil
    }

    /// Stops this rank after `error` (`message` is the line the command would print). Without
    /// mpirun it returns at once. A failure every rank agreed on ends each rank normally, rank 0
    /// printing the one line; any other failure is printed with its rank and aborts the job,
    /// since the other ranks may be waiting for this one.
    public static func stop(after error: any Error, message: String) {
        guard let session else { return }
        if error is AgreedFailure {
            if session.group.rank == 0 { writeLine("Error: \(message)", to: session.errorOutput) }
            _ = session.mpi.finalize()
            exit(1)
        }
        writeLine("Error: \(describeRank()): \(message)", to: session.errorOutput)
        _ = session.mpi.abort(session.mpi.world, 1)
        exit(1)
    }

    static func describeRank() -> String {
        guard let group = session?.group else { return "rank ?" }
        return "rank \(group.rank) of \(group.size) (\(InputAgreement.hostName()))"
    }

    static func writeLine(_ text: String, to descriptor: Int32) {
        let bytes = Array((text + "\n").utf8)
        bytes.withUnsafeBytes { _ = write(descriptor, $0.baseAddress, $0.count) }
    }

    private static func silenceStandardOutputs() {
        let null = open("/dev/null", O_WRONLY)
        guard null >= 0 else { return }
        dup2(null, STDOUT_FILENO)
        dup2(null, STDERR_FILENO)
        close(null)
    }
}
