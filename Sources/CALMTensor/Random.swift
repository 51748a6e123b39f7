import Foundation

/// A small, fast, seedable generator (xoshiro256**), so runs are reproducible everywhere.
/// Its state can be saved and restored, which exact training resume needs.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        // SplitMix64 expands the seed into four non-zero words.
        var z = seed
        var words: [UInt64] = []
        for _ in 0..<4 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            words.append(x ^ (x >> 31))
        }
        state = words
    }

    public mutating func next() -> UInt64 {
        let result = ((state[1] &* 5) << 7 | (state[1] &* 5) >> 57) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = (state[3] << 45) | (state[3] >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// Standard normal (Box–Muller).
    public mutating func nextNormal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9007199254740992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9007199254740992.0)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Normal(0, std²) entries from `generator`.
    public static func randomNormal(_ shape: [Int], std: Float, generator: inout SeededGenerator,
                                    requiresGrad: Bool = false) -> Tensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        for i in 0..<n { data[i] = generator.nextNormal() * std }
        return Tensor(shape: shape, data: data, requiresGrad: requiresGrad)
    }
}
