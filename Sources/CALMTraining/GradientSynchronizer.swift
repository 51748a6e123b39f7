import CALMModels
import CALMTensor

/// Sums the trainable parameters' gradients over a data-parallel group, in buckets: the
/// gradients are viewed as one flat array, cut into pieces of at most `bucketFloats`, and each
/// piece is one allreduce (one call per bucket, not per tensor). Each rank scales its gradient
/// by its share of the global batch's targets first, so the sum is the gradient of the loss
/// averaged over the whole batch, as one process computing that batch would get it.
final class GradientSynchronizer {
    let group: any DataParallelGroup
    let parameters: NamedParameters
    let bucketFloats: Int
    private var bucket: [Float]
    /// Seconds spent in allreduce calls and allreduces made, for the end-of-run report.
    private(set) var seconds = 0.0, calls = 0

    /// The bucket starts with one flag per parameter (does this rank have a gradient for it)
    /// and the scaled loss, then every gradient value in parameter order.
    private var headerCount: Int { parameters.count + 1 }
    var floatsPerStep: Int { headerCount + parameters.reduce(0) { $0 + $1.tensor.count } }

    init(group: any DataParallelGroup, parameters: NamedParameters, bucketFloats: Int = 1 << 20) {
        self.group = group
        self.parameters = parameters
        self.bucketFloats = max(bucketFloats, parameters.count + 1)
        bucket = []
        bucket = [Float](repeating: 0, count: min(self.bucketFloats, floatsPerStep))
    }

    var bucketsPerStep: Int { (floatsPerStep + bucketFloats - 1) / bucketFloats }

    /// Sums `weight` x this rank's gradients over the group, in place, and returns the sum of
    /// `weight` x `loss` (the global batch's mean loss). A parameter keeps a nil gradient only
    /// when no rank produced one, so the optimizer skips exactly what one process would.
    func synchronize(loss: Float, weight: Float) throws -> Float {
        let total = floatsPerStep
        var hasGradient = [Bool](repeating: false, count: parameters.count)
        var globalLoss: Float = 0
        var start = 0
        while start < total {
            let end = min(total, start + bucketFloats)
            try bucket.withUnsafeMutableBufferPointer { buffer in
                let piece = UnsafeMutableBufferPointer(rebasing: buffer[0..<(end - start)])
                visit(start, end) { region, offset in
                    switch region {
                    case .flag(let p): piece[offset] = parameters[p].tensor.grad == nil ? 0 : 1
                    case .loss: piece[offset] = loss * weight
                    case .gradient(let p, let range):
                        if let grad = parameters[p].tensor.grad {
                            for (k, j) in range.enumerated() { piece[offset + k] = grad[j] * weight }
                        } else {
                            for k in 0..<range.count { piece[offset + k] = 0 }
                        }
                    }
                }
                let clock = ContinuousClock.now
                try group.sumInPlace(piece)
                let elapsed = ContinuousClock.now - clock
                seconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                calls += 1
                visit(start, end) { region, offset in
                    switch region {
                    case .flag(let p): hasGradient[p] = piece[offset] > 0
                    case .loss: globalLoss = piece[offset]
                    case .gradient(let p, let range):
                        guard hasGradient[p] else { return }
                        let tensor = parameters[p].tensor
                        if tensor.grad == nil { tensor.grad = [Float](repeating: 0, count: tensor.count) }
                        tensor.grad!.withUnsafeMutableBufferPointer { grad in
                            for (k, j) in range.enumerated() { grad[j] = piece[offset + k] }
                        }
                    }
                }
            }
            start = end
        }
        return globalLoss
    }

    private enum Region { case flag(Int), loss, gradient(Int, Range<Int>) }

    /// Calls `body` for each part of the flat range `start..<end` with its offset in the bucket.
    private func visit(_ start: Int, _ end: Int, _ body: (Region, Int) -> Void) {
        for index in start..<max(start, min(end, headerCount)) {
            body(index < parameters.count ? .flag(index) : .loss, index - start)
        }
        var base = headerCount
        for (p, (_, tensor)) in parameters.enumerated() {
            let lower = max(start, base), upper = min(end, base + tensor.count)
            if lower < upper { body(.gradient(p, (lower - base)..<(upper - base)), lower - start) }
            base += tensor.count
            if base >= end { break }
        }
    }
}
