import Testing
@testable import CALMTensor

/// Finite-difference check: compares backward's gradients with central differences of
/// `sum(f(inputs) ⊙ R)` for a fixed random R, for every input that requires a gradient.
func checkGradients(
    _ inputs: [Tensor], tolerance: Float = 2e-2, epsilon: Float = 1e-2,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ f: ([Tensor]) -> Tensor
) {
    var rng = SeededGenerator(seed: 99)
    let probe = f(inputs)
    let weights = (0..<probe.count).map { _ in rng.nextNormal() }
    func objective() -> Float {
        let out = withoutGradients { f(inputs) }
        var s: Double = 0
        for i in 0..<out.count { s += Double(out.data[i]) * Double(weights[i]) }
        return Float(s)
    }
    for x in inputs { x.zeroGrad() }
    let out = f(inputs)
    out.backward(seed: weights)
    for (n, x) in inputs.enumerated() where x.requiresGrad {
        let analytic = x.grad ?? [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + epsilon
            let plus = objective()
            x.data[i] = saved - epsilon
            let minus = objective()
            x.data[i] = saved
            let numeric = (plus - minus) / (2 * epsilon)
            let error = abs(numeric - analytic[i])
            #expect(error <= tolerance * max(1, abs(numeric)),
                    "input \(n) element \(i): analytic \(analytic[i]) vs numeric \(numeric)",
                    sourceLocation: sourceLocation)
        }
    }
}

func random(_ shape: [Int], seed: UInt64, std: Float = 1, grad: Bool = true) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor.randomNormal(shape, std: std, generator: &g, requiresGrad: grad)
}
