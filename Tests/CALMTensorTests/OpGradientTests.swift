import Foundation
import Testing
@testable import CALMTensor

@Suite("Finite-difference gradient checks")
struct OpGradientTests {
    @Test func addSubtractWithBroadcasting() {
        let a = random([2, 3, 4], seed: 1), b = random([2, 3, 4], seed: 2)
        let bias = random([4], seed: 3), perRow = random([2, 3, 1], seed: 4)
        checkGradients([a, b, bias, perRow]) { t in
            t[0].adding(t[1]).subtracting(t[2]).adding(t[3])
        }
    }

    @Test func multiplyWithBroadcasting() {
        let a = random([2, 3, 4], seed: 5), b = random([2, 3, 4], seed: 6)
        let suffix = random([4], seed: 7), perRow = random([2, 3, 1], seed: 8)
        checkGradients([a, b]) { t in t[0].multiplying(t[1]) }
        checkGradients([a, suffix]) { t in t[0].multiplying(t[1]) }
        checkGradients([a, perRow]) { t in t[0].multiplying(t[1]) }
    }

    @Test func scaleSumMean() {
        let a = random([3, 5], seed: 9)
        checkGradients([a]) { t in t[0].scaled(by: -1.7) }
        checkGradients([a]) { t in t[0].sum() }
        checkGradients([a]) { t in t[0].mean() }
        checkGradients([a]) { t in t[0].sumLastDim() }
    }

    @Test func activations() {
        let a = random([4, 6], seed: 10, std: 1.5)
        checkGradients([a]) { t in t[0].silu() }
        checkGradients([a]) { t in t[0].sigmoid() }
        checkGradients([a]) { t in t[0].tanh() }
        checkGradients([a]) { t in t[0].gelu() }
        checkGradients([a]) { t in t[0].gelu(approximate: true) }
        let up = random([4, 6], seed: 11)
        checkGradients([a, up]) { t in t[0].gated(with: t[1], activation: .silu) }
        checkGradients([a, up]) { t in t[0].gated(with: t[1], activation: .geluTanh) }
    }

    @Test func linearWithAndWithoutBias() {
        let x = random([2, 3, 5], seed: 12), w = random([4, 5], seed: 13), b = random([4], seed: 14)
        checkGradients([x, w, b]) { t in t[0].linear(t[1], bias: t[2]) }
        checkGradients([x, w]) { t in t[0].linear(t[1]) }
    }

    /// The residual goes into the GEMM as C (beta = 1), or is added after the matrix-vector
    /// product for one or two rows: values equal the unfused `linear + adding`, gradients
    /// match finite differences.
    @Test(arguments: [[2, 3, 5], [1, 2, 5]])
    func linearWithResidual(inputShape: [Int]) {
        let x = random(inputShape, seed: 12), w = random([4, 5], seed: 13), b = random([4], seed: 14)
        let r = random(Array(inputShape.dropLast()) + [4], seed: 15)
        for bias in [b, nil] {
            let fused = x.linear(w, bias: bias, residual: r), unfused = x.linear(w, bias: bias).adding(r)
            #expect(zip(fused.data, unfused.data).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        }
        checkGradients([x, w, b, r]) { t in t[0].linear(t[1], bias: t[2], residual: t[3]) }
        checkGradients([x, w, r]) { t in t[0].linear(t[1], residual: t[2]) }
    }

    @Test func addingScaledByRow() {
        let a = random([2, 3, 4], seed: 16), y = random([2, 3, 4], seed: 17), g = random([2, 3, 1], seed: 18)
        let fused = a.adding(y, scaledByRow: g), unfused = a.adding(y.multiplying(g))
        #expect(zip(fused.data, unfused.data).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        checkGradients([a, y, g]) { t in t[0].adding(t[1], scaledByRow: t[2]) }
        // Wide rows take the threaded path.
        let wide = random([300, 257], seed: 19, grad: false), gates = random([300, 1], seed: 20, grad: false)
        let fusedWide = wide.adding(wide, scaledByRow: gates), unfusedWide = wide.adding(wide.multiplying(gates))
        #expect(zip(fusedWide.data, unfusedWide.data).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func batchedMatmul(transposes: (Bool, Bool)) {
        let (ta, tb) = transposes
        let a = random(ta ? [2, 4, 3] : [2, 3, 4], seed: 15)
        let b = random(tb ? [2, 5, 4] : [2, 4, 5], seed: 16)
        checkGradients([a, b]) { t in t[0].matmul(t[1], transposeSelf: ta, transposeOther: tb) }
    }

    @Test func softmaxAndLogSoftmax() {
        let a = random([3, 7], seed: 17)
        checkGradients([a]) { t in t[0].softmax() }
        checkGradients([a]) { t in t[0].logSoftmax() }
    }

    @Test func softmaxEntropy() {
        let a = random([3, 7], seed: 18)
        checkGradients([a]) { t in t[0].softmaxEntropy() }
        // Against the definition, and a row with -inf entries (tokens never predicted): those
        // add nothing, to the value or the gradient.
        let x = Tensor(shape: [2, 4], data: [0.5, -1, 2, 0, 1, -.infinity, 1, -.infinity], requiresGrad: true)
        let h = x.softmaxEntropy()
        #expect(h.shape == [2, 1])
        let p = [0.5, -1, 2, 0].map { exp(Double($0)) }, z = p.reduce(0, +)
        let expected = -p.reduce(0.0) { $0 + $1 / z * log($1 / z) }
        #expect(abs(Double(h.data[0]) - expected) < 1e-5)
        #expect(abs(h.data[1] - Float(log(2.0))) < 1e-6)  // two equal finite logits: log 2
        h.sum().backward()
        #expect(x.grad![5] == 0 && x.grad![7] == 0 && x.grad!.allSatisfy(\.isFinite))
    }

    @Test func crossEntropyIgnoresMaskedRows() {
        let logits = random([5, 6], seed: 18)
        let targets = [2, -100, 0, 5, -1]
        checkGradients([logits]) { t in t[0].crossEntropy(targets: targets) }
        // Ignored rows get no gradient at all.
        logits.zeroGrad()
        logits.crossEntropy(targets: targets).backward()
        #expect(logits.grad![6..<12].allSatisfy { $0 == 0 })
        #expect(logits.grad![24..<30].allSatisfy { $0 == 0 })
    }

    @Test func crossEntropyMatchesLogSoftmaxDefinition() {
        let logits = random([4, 5], seed: 19, grad: false)
        let targets = [1, 4, -100, 0]
        let logp = logits.logSoftmax()
        let expected = -(logp.data[1] + logp.data[5 + 4] + logp.data[15 + 0]) / 3
        #expect(abs(logits.crossEntropy(targets: targets).item - expected) < 1e-5)
    }

    @Test func normalizations() {
        let x = random([3, 8], seed: 20, std: 2), w = random([8], seed: 21), b = random([8], seed: 22)
        checkGradients([x, w]) { t in t[0].rmsNorm(weight: t[1], eps: 1e-5) }
        checkGradients([x, w]) { t in t[0].rmsNorm(weight: t[1], eps: 1e-6, weightOffset: 1) }
        checkGradients([x, w, b]) { t in t[0].layerNorm(weight: t[1], bias: t[2], eps: 1e-5) }
    }

    /// Width 27 runs the row kernels' sixteen-, eight- and one-lane parts; values against a
    /// float64 evaluation of the definition.
    @Test func rmsNormRowKernels() {
        let x = random([5, 27], seed: 30, std: 2), w = random([27], seed: 31)
        for offset: Float in [0, 1] {
            let y = x.rmsNorm(weight: w, eps: 1e-5, weightOffset: offset)
            for r in 0..<5 {
                let row = (0..<27).map { Double(x.data[r * 27 + $0]) }
                let inv = 1 / (row.map { $0 * $0 }.reduce(0, +) / 27 + 1e-5).squareRoot()
                for j in 0..<27 {
                    let expected = row[j] * inv * Double(offset + w.data[j])
                    #expect(abs(Double(y.data[r * 27 + j]) - expected) <= 1e-5 * max(1, abs(expected)))
                }
            }
            checkGradients([x, w]) { t in t[0].rmsNorm(weight: t[1], eps: 1e-5, weightOffset: offset) }
        }
    }

    /// Gated activations' gradient paths: tail lanes (15 elements), one tensor as gate and up, either
    /// side frozen, and a gradient that adds to one already there.
    @Test func swiGLUGradientPaths() {
        let a = random([3, 5], seed: 32, std: 1.5), up = random([3, 5], seed: 33)
        let frozen = random([3, 5], seed: 34, grad: false)
        let fused = a.gated(with: up, activation: .silu), unfused = a.silu().multiplying(up)
        #expect(zip(fused.data, unfused.data).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        checkGradients([a, up]) { t in t[0].gated(with: t[1], activation: .silu) }
        checkGradients([a]) { t in t[0].gated(with: t[0], activation: .silu) }
        checkGradients([a, frozen]) { t in t[0].gated(with: t[1], activation: .silu) }
        checkGradients([frozen, up]) { t in t[0].gated(with: t[1], activation: .silu) }
        checkGradients([a, up]) { t in t[0].gated(with: t[1], activation: .silu).adding(t[0]).adding(t[1]) }
        checkGradients([a]) { t in t[0].gated(with: t[0], activation: .geluTanh) }
        // Split over threads (ranges need not be whole vectors): gradients equal the unfused ops',
        // for SwiGLU's kernel and for the generic gated path (GeGLU).
        for activation in [Activation.Kind.silu, .geluTanh] {
            func gradients(fusedOp: Bool) -> [Float] {
                let x = random([301, 257], seed: 35, std: 1.5), u = random([301, 257], seed: 36)
                let y = fusedOp ? x.gated(with: u, activation: activation) : x.activated(activation).multiplying(u)
                y.sum().backward()
                return x.grad! + u.grad!
            }
            #expect(zip(gradients(fusedOp: true), gradients(fusedOp: false)).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) },
                    "\(activation)")
        }
    }

    @Test func rotaryEmbedding() {
        let x = random([2, 3, 2, 8], seed: 23)
        let rope = RotaryEmbedding(headDim: 8, theta: 10_000)
        checkGradients([x]) { t in t[0].rope(rope, startPosition: 5) }
    }

    @Test func rowGather() {
        let x = random([2, 3, 4], seed: 33)
        checkGradients([x]) { t in t[0].gatheringRows([5, 0, 5, 2]) }
    }

    @Test func embeddingGather() {
        let table = random([6, 4], seed: 24)
        checkGradients([table]) { t in Tensor.embedding(t[0], ids: [1, 5, 1, 0], shape: [2, 2]) }
    }

    @Test(arguments: [true, false])
    func attentionCausalAndFull(causal: Bool) {
        let q = random([2, 4, 4, 3], seed: 25), k = random([2, 4, 2, 3], seed: 26), v = random([2, 4, 2, 3], seed: 27)
        checkGradients([q, k, v]) { t in
            Tensor.attention(query: t[0], key: t[1], value: t[2], causal: causal)
        }
    }

    @Test func attentionWithKeyMaskAndOffset() {
        let q = random([1, 2, 2, 4], seed: 28), k = random([1, 5, 2, 4], seed: 29), v = random([1, 5, 2, 4], seed: 30)
        let mask = [true, false, true, true, true]
        checkGradients([q, k, v]) { t in
            Tensor.attention(query: t[0], key: t[1], value: t[2], causal: true, queryOffset: 3, keyMask: mask)
        }
    }

    @Test func concatSliceReshapeTranspose() {
        let a = random([2, 3, 4], seed: 31), b = random([2, 2, 4], seed: 32)
        checkGradients([a, b]) { t in Tensor.concatenate([t[0], t[1]], axis: 1) }
        checkGradients([a]) { t in t[0].sliced(axis: 2, 1..<3) }
        checkGradients([a]) { t in t[0].reshaped([6, 4]).sliced(axis: 0, 2..<5) }
        checkGradients([a]) { t in t[0].transposedLastTwo() }
    }
}
