import CALMTraining
import Foundation

/// `MPI_COMM_WORLD` as a data-parallel group. Every collective runs under the watchdog.
public final class MPIGroup: DataParallelGroup {
    let mpi: OpenMPILibrary
    let watchdog: CollectiveWatchdog
    public let rank: Int
    public let size: Int

    init(mpi: OpenMPILibrary, timeout: Double, report: @escaping @Sendable (String) -> Void) throws {
        self.mpi = mpi
        var value: Int32 = 0
        try Self.check(mpi.commRank(mpi.world, &value), "MPI_Comm_rank")
        rank = Int(value)
        try Self.check(mpi.commSize(mpi.world, &value), "MPI_Comm_size")
        size = Int(value)
        watchdog = CollectiveWatchdog(timeout: timeout, report: report)
    }

    static func check(_ code: Int32, _ call: String) throws {
        // The default MPI error handler aborts the job first; this catches any other setting.
        if code != 0 { throw DistributedError("\(call) failed with MPI error \(code)") }
    }

    public func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard let count = Int32(exactly: values.count) else { throw DistributedError("allreduce of \(values.count) values is too large") }
        try watchdog.guarded("allreduce of gradients", patient: false) {
            try Self.check(mpi.allreduce(OpenMPILibrary.inPlace, values.baseAddress, count, mpi.float, mpi.sum, mpi.world), "MPI_Allreduce")
        }
    }

    public func gather(_ bytes: [UInt8], patient: Bool) throws -> [[UInt8]] {
        try watchdog.guarded(patient ? "a wait for rank 0" : "an exchange between ranks", patient: patient) {
            // Lengths first, then every rank's bytes padded to the longest.
            var lengths = [Int64](repeating: 0, count: size)
            var mine = Int64(bytes.count)
            try Self.check(mpi.allgather(&mine, 1, mpi.int64, &lengths, 1, mpi.int64, mpi.world), "MPI_Allgather")
            let longest = Int(lengths.max() ?? 0)
            guard let stride = Int32(exactly: longest), longest * size < Int(Int32.max) else {
                throw DistributedError("gather of \(longest) bytes per rank is too large")
            }
            let padded = bytes + [UInt8](repeating: 0, count: longest - bytes.count)
            var all = [UInt8](repeating: 0, count: longest * size)
            try Self.check(mpi.allgather(padded, stride, mpi.byte, &all, stride, mpi.byte, mpi.world), "MPI_Allgather")
            return (0..<size).map { Array(all[($0 * longest)..<($0 * longest + Int(lengths[$0]))]) }
        }
    }
}
