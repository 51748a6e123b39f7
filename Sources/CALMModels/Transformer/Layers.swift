import CALMTensor

/// A named list of parameters, in a stable order: the unit of checkpointing and optimising.
public typealias NamedParameters = [(name: String, tensor: Tensor)]

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

/// `y = x · Wᵀ + b`, weight stored `(out, in)`, plus an optional low-rank adapter.
public struct Linear {
    public let weight: Tensor  // (out, in)
    public let bias: Tensor?  // (out)
    public let slot = AdapterSlot()

    public init(weight: Tensor, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// Normal(0, std) weights and zero bias.
    public init(inFeatures: Int, outFeatures: Int, bias: Bool, std: Float, generator: inout SeededGenerator) {
        weight = .randomNormal([outFeatures, inFeatures], std: std, generator: &generator, requiresGrad: true)
        self.bias = bias ? Tensor(zeros: [outFeatures], requiresGrad: true) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = x.linear(weight, bias: bias)
        guard let adapter = slot.adapter else { return y }
        return y.adding(x.linear(adapter.down).linear(adapter.up).scaled(by: adapter.scale))
    }

    public func parameters(_ prefix: String) -> NamedParameters {
        var out: NamedParameters = [("\(prefix).weight", weight)]
        if let bias { out.append(("\(prefix).bias", bias)) }
        return out
    }
}

/// RMSNorm or LayerNorm over the last dimension.
public struct Norm {
    public let kind: TransformerConfig.NormKind
    public let weight: Tensor
    public let bias: Tensor?
    public let eps: Float
    public let weightOffset: Float

    public init(config: TransformerConfig) {
        kind = config.norm
        // With a weight offset (Gemma stores w − 1) the identity norm has zero weights.
        weight = Tensor(filling: 1 - config.normWeightOffset, shape: [config.hiddenSize], requiresGrad: true)
        bias = config.norm == .layer ? Tensor(zeros: [config.hiddenSize], requiresGrad: true) : nil
        eps = config.normEps
        weightOffset = config.normWeightOffset
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch kind {
        case .rms: return x.rmsNorm(weight: weight, eps: eps, weightOffset: weightOffset)
        case .layer: return x.layerNorm(weight: weight, bias: bias, eps: eps)
        }
    }

    public func parameters(_ prefix: String) -> NamedParameters {
        var out: NamedParameters = [("\(prefix).weight", weight)]
        if let bias { out.append(("\(prefix).bias", bias)) }
        return out
    }
}
