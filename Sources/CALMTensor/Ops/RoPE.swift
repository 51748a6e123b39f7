import Foundation

/// Rotary position embedding tables in the "rotate half" convention of Hugging Face Llama:
/// dimension i pairs with i + D/2 and rotates by angle `position · invFreq[i]`.
public struct RotaryEmbedding: Sendable {
    /// One inverse frequency per rotated pair, `D / 2` of them.
    public let inverseFrequencies: [Float]
    /// cos/sin rows computed so far, shared by copies of this value (every layer and step
    /// reuses them instead of calling cos and sin again).
    private let cache: TableCache

    public init(headDim: Int, theta: Double) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension, got \(headDim)")
        self.init(inverseFrequencies: (0..<(headDim / 2)).map { i in
            Float(1.0 / pow(theta, Double(2 * i) / Double(headDim)))
        })
    }

    public init(inverseFrequencies: [Float]) {
        self.inverseFrequencies = inverseFrequencies
        cache = TableCache(inverseFrequencies: inverseFrequencies)
    }

    public var headDim: Int { inverseFrequencies.count * 2 }

    /// cos and sin for `count` positions from `start`: each `(count, D/2)`.
    func tables(start: Int, count: Int) -> (cos: [Float], sin: [Float]) {
        cache.tables(start: start, count: count)
    }

    final class TableCache: @unchecked Sendable {
        let inverseFrequencies: [Float]
        private let lock = NSLock()
        private var cos: [Float] = []
        private var sin: [Float] = []
        /// Positions cached beyond this are computed per call (keeps memory bounded for
        /// models with very long contexts).
        static let maxCachedPositions = 8192

        init(inverseFrequencies: [Float]) { self.inverseFrequencies = inverseFrequencies }

        func tables(start: Int, count: Int) -> (cos: [Float], sin: [Float]) {
            let half = inverseFrequencies.count
            let end = start + count
            guard end <= Self.maxCachedPositions else { return compute(start: start, count: count) }
            return lock.withLock {
                if cos.count < end * half {
                    let grown = Swift.min(Self.maxCachedPositions, Swift.max(end, 2 * cos.count / Swift.max(half, 1), 256))
                    (cos, sin) = compute(start: 0, count: grown)
                }
                return (Array(cos[(start * half)..<(end * half)]), Array(sin[(start * half)..<(end * half)]))
            }
        }

        func compute(start: Int, count: Int) -> (cos: [Float], sin: [Float]) {
            let half = inverseFrequencies.count
            var c = [Float](repeating: 0, count: count * half)
            var s = [Float](repeating: 0, count: count * half)
            for t in 0..<count {
                for i in 0..<half {
                    // float32 angle, as the reference computes it
                    let angle = Float(start + t) * inverseFrequencies[i]
                    c[t * half + i] = Foundation.cos(angle)
                    s[t * half + i] = Foundation.sin(angle)
                }
            }
            return (c, s)
        }
    }

    /// Rotates positions `range` (rows of the tables) of `heads` vectors each, laid out
    /// `(T, heads, D)` from `src`, into the same places from `dst` (which may be `src`).
    /// `inverse` rotates by the negative angle (the adjoint, used in backward).
    func rotate(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, positions range: Range<Int>, heads: Int,
                cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, inverse: Bool) {
        let half = inverseFrequencies.count, d = 2 * half
        let sign: Float = inverse ? -1 : 1
        for t in range {
            for h in 0..<heads {
                let u = src + (t * heads + h) * d, v = dst + (t * heads + h) * d
                for i in 0..<half {
                    let cs = cos[t * half + i], sn = sign * sin[t * half + i]
                    let x1 = u[i], x2 = u[i + half]
                    v[i] = x1 * cs - x2 * sn
                    v[i + half] = x2 * cs + x1 * sn
                }
            }
        }
    }
}

extension Tensor {
    /// Applies rotary embeddings to `self (B, T, H, D)` for positions `start ..< start + T`.
    public func rope(_ rotary: RotaryEmbedding, startPosition: Int = 0) -> Tensor {
        let x = self
        precondition(x.rank == 4 && x.shape[3] == rotary.headDim,
                     "rope: expected (B, T, H, \(rotary.headDim)), got \(x.shape)")
        let (b, t, h) = (x.shape[0], x.shape[1], x.shape[2])
        let (cos, sin) = rotary.tables(start: startPosition, count: t)
        /// Rotates every (batch row, position) of `src` into `dst` (which may be `src`), split over threads.
        func rotateAll(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, inverse: Bool) {
            let perPosition = h * rotary.headDim
            cos.withUnsafeBufferPointer { c in
                sin.withUnsafeBufferPointer { s in
                    let c = c.baseAddress!, s = s.baseAddress!
                    Parallel.forRanges(b * t, grain: Parallel.rowGrain(width: perPosition)) { rows in
                        var row = rows.lowerBound
                        while row < rows.upperBound {  // (batch row, position) pairs, one batch row at a time
                            let (bi, ti) = row.quotientAndRemainder(dividingBy: t)
                            let end = Swift.min(rows.upperBound, (bi + 1) * t)
                            let offset = bi * t * perPosition
                            rotary.rotate(src + offset, into: dst + offset, positions: ti..<(ti + end - row), heads: h,
                                          cos: c, sin: s, inverse: inverse)
                            row = end
                        }
                    }
                }
            }
        }
        let out = [Float].uninitialized(count: x.count) { o in  // (B, T, H, D), rotated out of place: no copy first
            x.data.withUnsafeBufferPointer { rotateAll($0.baseAddress!, into: o.baseAddress!, inverse: false) }
        }
        return .result(shape: x.shape, data: out, inputs: [x], family: .rope) { out in
            var g = out.grad!
            out.grad = nil  // g is then the only reference: rotated in place without a copy
            g.withUnsafeMutableBufferPointer { rotateAll($0.baseAddress!, into: $0.baseAddress!, inverse: true) }
            x.accumulateGrad(g)
        }
    }
}
