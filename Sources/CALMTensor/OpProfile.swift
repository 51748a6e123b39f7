import Foundation

/// The families an op's time is reported under by `OpProfile`.
public enum OpFamily: Int, CaseIterable, Sendable {
    case matmul, attention, normalization, activation, elementwise, softmax, rope, embedding, shape, quantized

    public var name: String {
        switch self {
        case .matmul: "matmul (GEMM)"
        case .attention: "attention"
        case .normalization: "norm"
        case .activation: "activations (SwiGLU...)"
        case .elementwise: "add, multiply, scale"
        case .softmax: "softmax, cross-entropy"
        case .rope: "RoPE"
        case .embedding: "embedding"
        case .shape: "reshape, slice, concat"
        case .quantized: "quantized linear"
        }
    }
}

/// Wall-clock time per op family, forward and backward (`calm bench --profile`).
///
/// Off by default; an op then pays one branch. Forward time is measured from the previous op's
/// end (or `mark()`) to the op's result, so the little model code between two ops counts
/// toward the second; backward time is each backward closure's own time. Meant for one thread
/// driving a step (the bench): ops running on several threads at once would mix their times.
public enum OpProfile {
    nonisolated(unsafe) public private(set) static var isEnabled = false
    nonisolated(unsafe) public private(set) static var forwardSeconds = [Double](repeating: 0, count: OpFamily.allCases.count)
    nonisolated(unsafe) public private(set) static var backwardSeconds = [Double](repeating: 0, count: OpFamily.allCases.count)
    nonisolated(unsafe) private static var lastMark: UInt64 = 0

    /// Zeroes the totals and starts recording.
    public static func start() {
        forwardSeconds = forwardSeconds.map { _ in 0 }
        backwardSeconds = backwardSeconds.map { _ in 0 }
        isEnabled = true
        mark()
    }

    /// Stops recording; the totals stay readable.
    public static func stop() { isEnabled = false }

    /// Starts the next forward interval now (call after work that is not an op).
    public static func mark() { lastMark = DispatchTime.now().uptimeNanoseconds }

    @inline(__always)
    static func forwardDone(_ family: OpFamily) {
        guard isEnabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        forwardSeconds[family.rawValue] += Double(now &- lastMark) / 1e9
        lastMark = now
    }

    @inline(__always)
    static func backward(_ family: OpFamily, _ body: () -> Void) {
        guard isEnabled else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let now = DispatchTime.now().uptimeNanoseconds
        backwardSeconds[family.rawValue] += Double(now &- start) / 1e9
        lastMark = now
    }
}
