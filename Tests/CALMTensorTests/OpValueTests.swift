import Foundation
import Testing
@testable import CALMTensor

@Suite("Forward values")
struct OpValueTests {
    @Test func matmulAgainstNaiveLoops() {
        let a = random([3, 4], seed: 40, grad: false), b = random([4, 2], seed: 41, grad: false)
        let c = a.matmul(b)
        for i in 0..<3 {
            for j in 0..<2 {
                var s: Float = 0
                for k in 0..<4 { s += a.data[i * 4 + k] * b.data[k * 2 + j] }
                #expect(abs(c.data[i * 2 + j] - s) < 1e-5)
            }
        }
    }

    @Test func causalAttentionHidesTheFuture() {
        let q = random([1, 4, 1, 2], seed: 42, grad: false)
        let k = random([1, 4, 1, 2], seed: 43, grad: false), v = random([1, 4, 1, 2], seed: 44, grad: false)
        let out = Tensor.attention(query: q, key: k, value: v)
        // Query 0 sees only key 0, so its output is value 0 exactly.
        #expect(Array(out.data[0..<2]) == Array(v.data[0..<2]))
        // Changing the last key/value leaves the first three outputs unchanged.
        k.data[6] += 3; v.data[7] -= 2
        let out2 = Tensor.attention(query: q, key: k, value: v)
        #expect(Array(out.data[0..<6]) == Array(out2.data[0..<6]))
    }

    @Test func frozenWeightGetsNoGradientButInputDoes() {
        let x = random([2, 3], seed: 45), w = random([4, 3], seed: 46, grad: false)
        x.linear(w).sum().backward()
        #expect(w.grad == nil)
        #expect(x.grad != nil)
    }

    @Test func noGraphWithoutGradients() {
        let x = random([2, 3], seed: 47)
        let y = withoutGradients { x.silu() }
        #expect(!y.requiresGrad)
        #expect(y.backwardFn == nil)
    }

    @Test func gradientsAccumulateAcrossUses() {
        let x = Tensor(shape: [2], data: [1, 2], requiresGrad: true)
        x.adding(x).multiplying(x).sum().backward()  // d/dx 2x² = 4x
        #expect(x.grad! == [4, 8])
    }

    @Test func ropeRotatesByPosition() {
        // Position 0 is the identity; norms are preserved at any position.
        let rope = RotaryEmbedding(headDim: 4, theta: 10_000)
        let x = random([1, 2, 1, 4], seed: 48, grad: false)
        let y = x.rope(rope)
        #expect(Array(y.data[0..<4]) == Array(x.data[0..<4]))
        let n0 = x.data[4..<8].map { $0 * $0 }.reduce(0, +), n1 = y.data[4..<8].map { $0 * $0 }.reduce(0, +)
        #expect(abs(n0 - n1) < 1e-5)
    }
}

@Suite("Fast math")
struct FastMathTests {
    @Test func vectorExpMatchesTheLibrary() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let approx = Double(FastMath.exp(x)), exact = Foundation.exp(Double(x))
            worst = max(worst, abs(approx - exact) / exact)
            x += 0.0137
        }
        #expect(worst < 1e-6, "worst relative error \(worst)")
        #expect(FastMath.exp(-Float.infinity) == 0)
        #expect(FastMath.exp(-1000) == 0)
        var row: [Float] = [0, 1, -.infinity, 2, 3, 4, 5, 6, 7, -.infinity, 0.5]
        let sum = row.withUnsafeMutableBufferPointer { FastMath.expShifted($0.baseAddress!, $0.count, shift: 7) }
        let expected = [0, 1, 2, 3, 4, 5, 6, 7, 0.5].map { Foundation.exp(Double($0) - 7) }.reduce(0, +)
        #expect(abs(Double(sum) - expected) / expected < 1e-6)
        #expect(row[2] == 0 && row[9] == 0)
    }

    /// The row kernels (C, eight lanes at a time) against the library, tails included, and a
    /// NaN stays a NaN: a diverging run must see it in its loss rather than a clamped value.
    @Test func rowKernelsMatchTheLibraryAndKeepNaN() {
        for n in [1, 7, 8, 13, 64] {
            let x = (0..<n).map { Float($0) * 0.73 - 4 }
            var row = x
            let sum = row.withUnsafeMutableBufferPointer { FastMath.expShifted($0.baseAddress!, n, shift: 1.5) }
            let onlySum = x.withUnsafeBufferPointer { FastMath.sumExpShifted($0.baseAddress!, n, shift: 1.5) }
            let exact = x.map { Foundation.exp(Double($0) - 1.5) }
            #expect(zip(row, exact).allSatisfy { abs(Double($0) - $1) <= 1e-6 * $1 })
            #expect(abs(Double(sum) - exact.reduce(0, +)) <= 1e-5 * exact.reduce(0, +))
            #expect(onlySum == sum)
            var sig = [Float](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xp in sig.withUnsafeMutableBufferPointer { FastMath.sigmoid(xp.baseAddress!, $0.baseAddress!, n) } }
            #expect(zip(sig, x).allSatisfy { abs(Double($0) - 1 / (1 + Foundation.exp(-Double($1)))) < 1e-6 })
        }
        var withNaN: [Float] = [0, 1, .nan, 2, 3, 4, 5, 6, 7]
        let sum = withNaN.withUnsafeMutableBufferPointer { FastMath.expShifted($0.baseAddress!, $0.count, shift: 0) }
        #expect(sum.isNaN && withNaN[2].isNaN)
        var sig = [Float](repeating: 0, count: 9)
        withNaN = [0, 1, .nan, 2, 3, 4, 5, 6, 7]
        withNaN.withUnsafeBufferPointer { xp in sig.withUnsafeMutableBufferPointer { FastMath.sigmoid(xp.baseAddress!, $0.baseAddress!, 9) } }
        #expect(sig[2].isNaN && !sig[3].isNaN)
    }
}
