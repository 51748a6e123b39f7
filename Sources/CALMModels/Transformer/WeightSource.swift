import CALMTensor

/// How a newly built weight starts when nothing is loaded into it.
public enum WeightInit {
    case normal(std: Float)
    case zeros
    case filled(Float)
    case values([Float])
}

/// Supplies every weight of a model while the model is built, by checkpoint name and shape,
/// in construction order. Random initialisation draws from a seed; loading reads the named
/// tensor straight from a file, so a loaded model never computes values it then overwrites.
public protocol WeightSource {
    mutating func weight(_ name: String, shape: [Int], initial: WeightInit) throws -> Tensor
    /// A projection's `(out, in)` weight, which a checkpoint may hold quantized (frozen). The
    /// default asks `weight` for float32, so random initialisation draws exactly as before.
    mutating func matrix(_ name: String, shape: [Int], initial: WeightInit) throws -> WeightMatrix
}

extension WeightSource {
    public mutating func matrix(_ name: String, shape: [Int], initial: WeightInit) throws -> WeightMatrix {
        .dense(try weight(name, shape: shape, initial: initial))
    }
}

/// Fresh trainable weights drawn from one seeded stream, in construction order.
public struct RandomWeights: WeightSource {
    public var generator: SeededGenerator

    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
    public init(generator: SeededGenerator) { self.generator = generator }

    public mutating func weight(_ name: String, shape: [Int], initial: WeightInit) -> Tensor {
        switch initial {
        case .normal(let std): return .randomNormal(shape, std: std, generator: &generator, requiresGrad: true)
        case .zeros: return Tensor(zeros: shape, requiresGrad: true)
        case .filled(let value): return Tensor(filling: value, shape: shape, requiresGrad: true)
        case .values(let data): return Tensor(shape: shape, data: data, requiresGrad: true)
        }
    }
}
