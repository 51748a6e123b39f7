import Foundation
import Testing
@testable import CALMTensor

/// The attention kernels (AVX2 and plain C paths) against a float64 reference written out
/// loop by loop: values, probabilities and all three gradients, over the cases the models use
/// (grouped-query heads, causal rows with an offset, a sliding window, padding keys, a KV
/// cache's batch stride, row and key counts that are not multiples of the kernels' blocks).
@Suite("Attention kernels")
struct AttentionKernelTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var batch = 2, queries = 7, keys = 7, heads = 4, kvHeads = 2, headDim = 16
        var offset = 0, causal = true, window: Int? = nil, masked = false, extraCacheRows = 0
        var testDescription: String {
            "B\(batch) T\(queries) S\(keys) H\(heads)/\(kvHeads) D\(headDim) offset \(offset) causal \(causal)"
                + " window \(window.map(String.init) ?? "-") mask \(masked) cache +\(extraCacheRows)"
        }
    }

    static let cases: [Case] = [
        Case(),
        Case(batch: 1, queries: 1, keys: 13, heads: 2, kvHeads: 1, headDim: 32, offset: 12),  // one decoded token
        Case(batch: 3, queries: 5, keys: 9, heads: 2, kvHeads: 2, headDim: 8, offset: 4, masked: true),
        Case(batch: 2, queries: 10, keys: 10, heads: 3, kvHeads: 1, headDim: 24, window: 4),
        Case(batch: 2, queries: 6, keys: 11, heads: 2, kvHeads: 2, headDim: 64, causal: false, masked: true),
        Case(batch: 2, queries: 3, keys: 8, heads: 4, kvHeads: 4, headDim: 16, offset: 5, extraCacheRows: 6),
        Case(batch: 1, queries: 9, keys: 9, heads: 2, kvHeads: 1, headDim: 12),  // D not a multiple of 8
        // Several row blocks with a partial last one; D of 16 + 16 + 8 columns.
        Case(batch: 1, queries: 37, keys: 37, heads: 2, kvHeads: 1, headDim: 40),
        Case(batch: 2, queries: 21, keys: 45, heads: 2, kvHeads: 2, headDim: 24, offset: 24, window: 19),
    ]

    struct Outputs { var out: [Double], probs: [Double], dq: [Double], dk: [Double], dv: [Double] }

    /// Buffers for one case: K and V hold `keys + extraCacheRows` rows per batch entry.
    struct Inputs {
        var shape: AttentionShape, q: [Float], k: [Float], v: [Float], dOut: [Float], mask: [Bool]?
        init(_ c: Case) {
            var g = SeededGenerator(seed: UInt64(c.queries * 31 + c.keys * 7 + c.headDim))
            let stride = (c.keys + c.extraCacheRows) * c.kvHeads * c.headDim
            shape = AttentionShape(batch: c.batch, queries: c.queries, keys: c.keys, heads: c.heads, kvHeads: c.kvHeads,
                                   headDim: c.headDim, queryOffset: c.offset, causal: c.causal, window: c.window,
                                   kvBatchStride: stride)
            q = (0..<(c.batch * c.queries * c.heads * c.headDim)).map { _ in g.nextNormal() }
            k = (0..<(c.batch * stride)).map { _ in g.nextNormal() }
            v = (0..<(c.batch * stride)).map { _ in g.nextNormal() }
            dOut = (0..<q.count).map { _ in g.nextNormal() }
            mask = c.masked ? (0..<(c.batch * c.keys)).map { $0 % 3 != 1 } : nil
        }
    }

    /// Loop-by-loop float64 attention and its gradients for upstream gradient dOut.
    static func reference(_ x: Inputs) -> Outputs {
        let s = x.shape, (T, S, D, H) = (s.queries, s.keys, s.headDim, s.heads)
        let group = H / s.kvHeads, qRow = H * D, kvRow = s.kvHeads * D
        var out = [Double](repeating: 0, count: x.q.count), probs = [Double](repeating: 0, count: s.batch * H * T * S)
        var dq = out, dk = [Double](repeating: 0, count: x.k.count), dv = dk
        for b in 0..<s.batch {
            for h in 0..<H {
                let kvBase = b * s.kvBatchStride + (h / group) * D
                for t in 0..<T {
                    let qBase = (b * T + t) * qRow + h * D
                    let position = s.queryOffset + t
                    func sees(_ j: Int) -> Bool {
                        if s.causal && j > position { return false }
                        if let w = s.window, j <= position - w { return false }
                        return x.mask?[b * S + j] ?? true
                    }
                    var scores = [Double](repeating: -.infinity, count: S)
                    for j in 0..<S where sees(j) {
                        var dot = 0.0
                        for d in 0..<D { dot += Double(x.q[qBase + d]) * Double(x.k[kvBase + j * kvRow + d]) }
                        scores[j] = dot * Double(s.scale)
                    }
                    let top = scores.max() ?? -.infinity
                    var p = scores.map { top == -.infinity ? 0 : Foundation.exp($0 - top) }
                    let total = p.reduce(0, +)
                    if total > 0 { p = p.map { $0 / total } }
                    for j in 0..<S { probs[((b * H + h) * T + t) * S + j] = p[j] }
                    var dp = [Double](repeating: 0, count: S)
                    for j in 0..<S {
                        for d in 0..<D {
                            out[qBase + d] += p[j] * Double(x.v[kvBase + j * kvRow + d])
                            dp[j] += Double(x.dOut[qBase + d]) * Double(x.v[kvBase + j * kvRow + d])
                            dv[kvBase + j * kvRow + d] += p[j] * Double(x.dOut[qBase + d])
                        }
                    }
                    let mean = zip(p, dp).map(*).reduce(0, +)
                    for j in 0..<S {
                        let dScore = p[j] * (dp[j] - mean) * Double(s.scale)
                        for d in 0..<D {
                            dq[qBase + d] += dScore * Double(x.k[kvBase + j * kvRow + d])
                            dk[kvBase + j * kvRow + d] += dScore * Double(x.q[qBase + d])
                        }
                    }
                }
            }
        }
        return Outputs(out: out, probs: probs, dq: dq, dk: dk, dv: dv)
    }

    static func kernels(_ x: Inputs, portable: Bool) -> Outputs {
        var s = x.shape
        s.portable = portable
        var out = [Float](repeating: 0, count: x.q.count)
        var probs = [Float](repeating: .nan, count: s.batch * s.heads * s.queries * s.keys)
        var dq = [Float](repeating: 0, count: x.q.count), dk = [Float](repeating: 0, count: x.k.count), dv = dk
        AttentionKernel.forward(s, q: x.q, k: x.k, v: x.v, keyMask: x.mask, out: &out, probabilities: &probs)
        AttentionKernel.backward(s, q: x.q, k: x.k, v: x.v, probabilities: probs, gradOut: x.dOut,
                                 gradQ: &dq, gradK: &dk, gradV: &dv)
        func wide(_ a: [Float]) -> [Double] { a.map(Double.init) }
        return Outputs(out: wide(out), probs: wide(probs), dq: wide(dq), dk: wide(dk), dv: wide(dv))
    }

    static func largestError(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    }

    @Test(arguments: cases, [false, true])
    func kernelsMatchTheReference(_ c: Case, portable: Bool) {
        let inputs = Inputs(c)
        let expected = Self.reference(inputs), got = Self.kernels(inputs, portable: portable)
        for (name, a, b) in [("out", got.out, expected.out), ("probabilities", got.probs, expected.probs),
                             ("dQ", got.dq, expected.dq), ("dK", got.dk, expected.dk), ("dV", got.dv, expected.dv)] {
            #expect(Self.largestError(a, b) < 2e-5, "\(name)")
        }
    }

    @Test func cacheRowsPastTheKeysGetNoGradient() {
        let c = Case(batch: 2, queries: 3, keys: 8, heads: 4, kvHeads: 4, headDim: 16, offset: 5, extraCacheRows: 6)
        let got = Self.kernels(Inputs(c), portable: false)
        let stride = (c.keys + c.extraCacheRows) * c.kvHeads * c.headDim, used = c.keys * c.kvHeads * c.headDim
        for b in 0..<c.batch {
            #expect(got.dk[(b * stride + used)..<((b + 1) * stride)].allSatisfy { $0 == 0 })
            #expect(got.dv[(b * stride + used)..<((b + 1) * stride)].allSatisfy { $0 == 0 })
        }
    }

    @Test func oneTensorAsQueryKeyAndValue() {
        // The op sums the three roles' gradients separately when they share a tensor.
        let x = random([1, 6, 2, 8], seed: 64, std: 0.5)
        checkGradients([x]) { t in Tensor.attention(query: t[0], key: t[0], value: t[0], causal: true) }
    }

    @Test func gradientsThroughTheOpMatchFiniteDifferences() {
        // Head dimension 16: the vector path (3 and 4 in OpGradientTests take the plain one).
        let q = random([2, 5, 4, 16], seed: 61, std: 0.5), k = random([2, 5, 2, 16], seed: 62, std: 0.5)
        let v = random([2, 5, 2, 16], seed: 63, std: 0.5)
        checkGradients([q, k, v]) { t in
            Tensor.attention(query: t[0], key: t[1], value: t[2], causal: true, window: 3)
        }
    }
}
