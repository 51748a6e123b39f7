import CALMTensor

/// A named list of parameters, in a stable order: the unit of checkpointing and optimising.
public typealias NamedParameters = [(name: String, tensor: Tensor)]

/// `y = x · Wᵀ + b`, weight stored `(out, in)` as float32 or (frozen) quantized, plus an
/// optional low-rank adapter.
public struct Linear {
    public let weight: WeightMatrix  // (out, in)
    public let bias: Tensor?  // (out)
    public let slot = AdapterSlot()

    public init(weight: Tensor, bias: Tensor? = nil) {
        self.init(weight: .dense(weight), bias: bias)
    }

    public init(weight: WeightMatrix, bias: Tensor? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// `name.weight` (initially Normal(0, std)) and `name.bias` (initially zero) from `weights`.
    public init(_ name: String, inFeatures: Int, outFeatures: Int, bias: Bool, std: Float,
                weights: inout some WeightSource) throws {
        weight = try weights.matrix("\(name).weight", shape: [outFeatures, inFeatures], initial: .normal(std: std))
        self.bias = bias ? try weights.weight("\(name).bias", shape: [outFeatures], initial: .zeros) : nil
    }

    /// `x · Wᵀ + b`, plus `residual` (the result's shape) added inside the product.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        let y = x.linear(weight, bias: bias, residual: residual)
        guard let adapter = slot.adapter else { return y }
        return y.adding(x.linear(adapter.down).linear(adapter.up).scaled(by: adapter.scale))
    }

    /// The float32 tensors (a quantized weight is not one: it never trains).
    public func parameters(_ prefix: String) -> NamedParameters {
        weights(prefix).compactMap { name, w in w.dense.map { (name, $0) } }
    }

    /// Every stored weight, quantized or not, in checkpoint order.
    public func weights(_ prefix: String) -> NamedWeights {
        var out: NamedWeights = [("\(prefix).weight", weight)]
        if let bias { out.append(("\(prefix).bias", .dense(bias))) }
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

    public init(_ name: String, config: TransformerConfig, weights: inout some WeightSource) throws {
        kind = config.norm
        // With a weight offset (Gemma stores w − 1) the identity norm has zero weights.
        weight = try weights.weight("\(name).weight", shape: [config.hiddenSize], initial: .filled(1 - config.normWeightOffset))
        bias = config.norm == .layer ? try weights.weight("\(name).bias", shape: [config.hiddenSize], initial: .zeros) : nil
        eps = config.normEps
        weightOffset = config.normWeightOffset
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch kind {
        case .rms: return x.rmsNorm(weight: weight, eps: eps, weightOffset: weightOffset)
        case .layer: return x.layerNorm(weight: weight, bias: bias, eps: eps)
        }
    }

    /// The scale the norm applies per channel (the weight plus any stored offset).
    public var effectiveScale: [Float] { weight.data.map { $0 + weightOffset } }

    public func parameters(_ prefix: String) -> NamedParameters {
        var out: NamedParameters = [("\(prefix).weight", weight)]
        if let bias { out.append(("\(prefix).bias", bias)) }
        return out
    }

    public func weights(_ prefix: String) -> NamedWeights {
        parameters(prefix).map { ($0.name, .dense($0.tensor)) }
    }
}
