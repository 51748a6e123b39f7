/// The collective operations data-parallel training needs from its group of processes.
/// `CALMDistributed` provides them over MPI; training code sees only this protocol, so the
/// package builds and trains without MPI installed.
public protocol DataParallelGroup: AnyObject {
    /// This process's index, `0..<size`; rank 0 alone prints and writes files.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` with the element-wise sum over every rank (allreduce). Every rank
    /// passes the same count.
    func sumInPlace(_ values: UnsafeMutableBufferPointer<Float>) throws
    /// Every rank's `bytes`, indexed by rank (allgather; lengths may differ). `patient` marks a
    /// wait whose length is set by work on another rank (rank 0 evaluating or saving), which a
    /// step-sized timeout must not cut short.
    func gather(_ bytes: [UInt8], patient: Bool) throws -> [[UInt8]]
}

/// A failure every rank raises at the same point with the same message, because it was
/// decided from collective results. The launcher stops such a run cleanly with one line
/// from rank 0, instead of aborting every process.
public struct AgreedFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}

/// How a global batch is split among the ranks. Either way every example of the batch is
/// computed by exactly one rank, so the summed gradient is the whole batch's.
public enum BatchSharding: String, Codable, Sendable {
    /// Contiguous, balanced slices of each batch.
    case slices
    /// Example `i` always belongs to rank `i mod size`, so per-example caches (frozen
    /// activations) are built by one rank only, for its own examples. Shares vary from batch
    /// to batch around `batch / size`.
    case ownership

    public func share(of batch: [Int], rank: Int, size: Int) -> [Int] {
        switch self {
        case .slices:
            return Array(batch[(batch.count * rank / size)..<(batch.count * (rank + 1) / size)])
        case .ownership:
            return batch.filter { $0 % size == rank }
        }
    }
}
