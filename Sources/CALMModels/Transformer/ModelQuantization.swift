import CALMTensor

/// The weights of an existing model, by name, for building a model of the same configuration
/// through the ordinary construction path; `transform` rewrites each projection matrix on the
/// way (quantize, dequantize). Float32 tensors are shared with the source model, not copied.
public struct ReusedWeights: WeightSource {
    private let byName: [String: WeightMatrix]
    private let transform: (String, WeightMatrix) throws -> WeightMatrix

    public init(_ weights: NamedWeights, transform: @escaping (String, WeightMatrix) throws -> WeightMatrix) {
        byName = Dictionary(weights.map { ($0.name, $0.weight) }, uniquingKeysWith: { a, _ in a })
        self.transform = transform
    }

    private func stored(_ name: String, shape: [Int]) throws -> WeightMatrix {
        guard let w = byName[name], w.shape == shape else {
            throw QuantizationError("model has no weight \(name) of shape \(shape)")
        }
        return w
    }

    public mutating func weight(_ name: String, shape: [Int], initial: WeightInit) throws -> Tensor {
        guard let tensor = try stored(name, shape: shape).dense else {
            throw QuantizationError("weight \(name) is quantized, but this weight must be float32")
        }
        return tensor
    }

    public mutating func matrix(_ name: String, shape: [Int], initial: WeightInit) throws -> WeightMatrix {
        try transform(name, try stored(name, shape: shape))
    }
}

/// What `TransformerLM.quantized` did.
public struct QuantizationSummary {
    /// Projection weights now stored in the format.
    public var quantized: [String] = []
    /// Projection weights left in float32 because their rows are not whole blocks.
    public var keptFloat: [String] = []
}

extension TransformerLM {
    /// The same model with every projection weight of every block (attention q/k/v/o, MLP
    /// gate/up/down) stored in `format`, quantized with ggml's reference rounding. Norms and
    /// biases stay float32, shared with this model; so do the token embedding and the output
    /// head unless `embeddings` is set (the head decides every logit; see README).
    public func quantized(_ format: QuantizationFormat, embeddings: Bool = false) throws
        -> (model: TransformerLM, summary: QuantizationSummary) {
        var summary = QuantizationSummary()
        if let (name, weight) = weights.first(where: { $0.weight.quantized != nil }), let q = weight.quantized {
            throw QuantizationError("weight \(name) is already quantized (\(q.format.rawValue)); quantize the float32 model")
        }
        var source = ReusedWeights(weights) { name, weight in
            let isProjection = name.contains(".attn.") || name.contains(".mlp.")
            guard isProjection || (embeddings && (name == "embed.weight" || name == "lm_head.weight")) else { return weight }
            guard case .dense(let tensor) = weight else { return weight }  // refused above
            guard tensor.lastDim % format.blockSize == 0 else {
                summary.keptFloat.append(name)
                return weight
            }
            let matrix: QuantizedMatrix
            do { matrix = try QuantizedMatrix(quantizing: tensor, format: format) } catch {
                throw QuantizationError("weight \(name): \(error)")
            }
            // A block with values beyond the f16 range would get an infinite scale.
            if let bad = matrix.firstNonFiniteValue() {
                throw QuantizationError("weight \(name): element \(bad) is too large for \(format.rawValue)'s f16 scale")
            }
            summary.quantized.append(name)
            return .quantized(matrix)
        }
        let model = try TransformerLM(config: config, weights: &source)
        return (model, summary)
    }

    /// A float32 copy with every quantized weight replaced by its exact dequantized values.
    public func dequantized() throws -> TransformerLM {
        var source = ReusedWeights(weights) { _, weight in .dense(weight.floatTensor()) }
        return try TransformerLM(config: config, weights: &source)
    }
}
