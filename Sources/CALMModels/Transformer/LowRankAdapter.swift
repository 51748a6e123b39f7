import CALMTensor

/// A low-rank update `scale · B A` to a frozen weight (LoRA, Hu et al. 2021).
public final class LowRankAdapter {
    public let down: Tensor  // A: (rank, in)
    public let up: Tensor  // B: (out, rank), zero at first so the model starts unchanged
    public let scale: Float

    public init(inFeatures: Int, outFeatures: Int, rank: Int, alpha: Float, generator: inout SeededGenerator) {
        down = .randomNormal([rank, inFeatures], std: 1 / Float(inFeatures).squareRoot(), generator: &generator, requiresGrad: true)
        up = Tensor(zeros: [outFeatures, rank], requiresGrad: true)
        scale = alpha / Float(rank)
    }

    /// `scale · B A`, the change this adapter makes to the weight.
    public var delta: [Float] {
        withoutGradients { up.matmul(down).scaled(by: scale).data }
    }
}

/// Where a `Linear` keeps an optional adapter (a reference, so adapters can be attached to the
/// layers of an existing model).
public final class AdapterSlot {
    public var adapter: LowRankAdapter?
    public init() {}
}
