import CALMTensor
import Foundation

/// AdamW with decoupled weight decay (Loshchilov & Hutter): the decay shrinks weights
/// directly instead of entering the gradient moments.
public final class AdamW {
    public struct Hyperparameters: Codable, Sendable, Equatable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.95
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0.1
        public init(beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
            self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        }
    }

    public let parameters: NamedParameters
    public let hyper: Hyperparameters
    /// First and second moments, one buffer per parameter.
    public internal(set) var firstMoments: [[Float]]
    public internal(set) var secondMoments: [[Float]]
    /// Updates applied so far.
    public internal(set) var stepCount = 0

    public init(parameters: NamedParameters, hyper: Hyperparameters = .init()) {
        self.parameters = parameters
        self.hyper = hyper
        firstMoments = parameters.map { [Float](repeating: 0, count: $0.tensor.count) }
        secondMoments = firstMoments
    }

    /// Whether a parameter is decayed: matrices and embeddings are, norms and biases are not.
    static func decays(_ t: Tensor) -> Bool { t.rank >= 2 }

    /// One update at learning rate `lr` from the parameters' accumulated gradients.
    /// Parameters without a gradient (unused this step) are left unchanged.
    public func step(learningRate lr: Float) {
        stepCount += 1
        let b1 = hyper.beta1, b2 = hyper.beta2, eps = hyper.epsilon
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(stepCount)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(stepCount)))
        for (i, (_, p)) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let decay = Self.decays(p) ? lr * hyper.weightDecay : 0
            firstMoments[i].withUnsafeMutableBufferPointer { m in
                secondMoments[i].withUnsafeMutableBufferPointer { v in
                    p.data.withUnsafeMutableBufferPointer { w in
                        for j in 0..<w.count {
                            let g = grad[j]
                            m[j] = b1 * m[j] + (1 - b1) * g
                            v[j] = b2 * v[j] + (1 - b2) * g * g
                            let update = (m[j] / c1) / ((v[j] / c2).squareRoot() + eps)
                            w[j] -= lr * update + decay * w[j]
                        }
                    }
                }
            }
        }
    }

    public func zeroGradients() {
        for (_, p) in parameters { p.zeroGrad() }
    }

    /// Restores moments and step count saved from an optimizer over the same parameters.
    public func restore(firstMoments m: [[Float]], secondMoments v: [[Float]], stepCount: Int) throws {
        guard m.count == parameters.count, v.count == parameters.count,
              zip(parameters, zip(m, v)).allSatisfy({ $0.tensor.count == $1.0.count && $0.tensor.count == $1.1.count })
        else { throw OptimizerStateError() }
        firstMoments = m
        secondMoments = v
        self.stepCount = stepCount
    }
}

/// Scales all gradients so their joint L2 norm is at most `maxNorm`; returns the norm before.
@discardableResult
public func clipGradientNorm(_ parameters: NamedParameters, maxNorm: Float) -> Float {
    var sumSquares: Double = 0
    for (_, p) in parameters {
        guard let g = p.grad else { continue }
        for v in g { sumSquares += Double(v) * Double(v) }
    }
    let norm = Float(sumSquares.squareRoot())
    if maxNorm > 0, norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for (_, p) in parameters where p.grad != nil {
            p.grad!.withUnsafeMutableBufferPointer { g in for i in 0..<g.count { g[i] *= scale } }
        }
    }
    return norm
}

/// Saved optimizer state that does not fit the parameters it is restored into.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public var description: String { "optimizer state does not match the model's parameters" }
}
