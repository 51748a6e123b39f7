import CKernels
import Foundation

/// How the second operand of a binary op lines up with the first.
enum Broadcast {
    /// Same shape.
    case none
    /// `b.shape` is a suffix of `a.shape` (a bias added to every row).
    case suffix(Int)
    /// `b.shape == a.shape` with the last dimension 1 (one scalar per row, e.g. a gate).
    case perRow(Int)

    init(_ a: Tensor, _ b: Tensor, op: String) {
        if a.shape == b.shape {
            self = .none
        } else if b.rank <= a.rank, Array(a.shape.suffix(b.rank)) == b.shape, b.count > 0 {
            self = .suffix(b.count)
        } else if b.rank == a.rank, b.lastDim == 1, Array(a.shape.dropLast()) == Array(b.shape.dropLast()) {
            self = .perRow(a.lastDim)
        } else {
            preconditionFailure("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
    }
}

extension Tensor {
    /// Element-wise `self + other`; `other` may be a suffix (bias) or one value per row.
    public func adding(_ other: Tensor) -> Tensor { binary(other, op: "add", sign: 1) }

    /// Element-wise `self - other`, with the same broadcasting as `adding`.
    public func subtracting(_ other: Tensor) -> Tensor { binary(other, op: "sub", sign: -1) }

    private func binary(_ other: Tensor, op: String, sign: Float) -> Tensor {
        let a = self, b = other
        let mode = Broadcast(a, b, op: op)
        let out = Self.combine(a.data, b.data, mode) { x, y in x + sign * y }
        return .result(shape: a.shape, data: out, inputs: [a, b], family: .elementwise) { out in
            let g = out.grad!
            if a.requiresGrad { a.accumulateGrad(g) }
            guard b.requiresGrad else { return }
            switch mode {
            case .none:
                b.accumulateGrad(g, scale: sign)
            case .suffix(let n):
                b.withGradBuffer { gb in
                    var base = 0
                    while base < g.count {
                        for j in 0..<n { gb[j] += sign * g[base + j] }
                        base += n
                    }
                }
            case .perRow(let n):
                b.withGradBuffer { gb in
                    for r in 0..<gb.count {
                        var s: Float = 0
                        for j in 0..<n { s += g[r * n + j] }
                        gb[r] += sign * s
                    }
                }
            }
        }
    }

    /// Element-wise `self * other`; `other` may be a suffix or one value per row.
    public func multiplying(_ other: Tensor) -> Tensor {
        let a = self, b = other
        let mode = Broadcast(a, b, op: "mul")
        let out = Self.combine(a.data, b.data, mode) { x, y in x * y }
        return .result(shape: a.shape, data: out, inputs: [a, b], family: .elementwise) { out in
            let g = out.grad!
            if a.requiresGrad { a.accumulateGrad(Self.combine(g, b.data, mode) { g, y in g * y }) }
            guard b.requiresGrad else { return }
            b.withGradBuffer { gb in
                a.data.withUnsafeBufferPointer { ap in
                    g.withUnsafeBufferPointer { gp in
                        let db = gb.baseAddress!, x = ap.baseAddress!, dy = gp.baseAddress!
                        switch mode {
                        case .none:
                            Parallel.forRanges(gb.count, grain: Parallel.elementGrain) { r in
                                for i in r { db[i] += dy[i] * x[i] }
                            }
                        case .suffix(let n):
                            for i in 0..<ap.count { db[i % n] += dy[i] * x[i] }
                        case .perRow(let n):
                            Self.addRowDots(dy, x, width: n, into: gb)
                        }
                    }
                }
            }
        }
    }

    /// `self + y ⊙ g` with one gate value per row, `g (..., 1)`: a bridge's gated
    /// contribution added to the residual stream in one pass (no `y ⊙ g` temporary).
    public func adding(_ y: Tensor, scaledByRow g: Tensor) -> Tensor {
        let a = self
        precondition(y.shape == a.shape, "adding(scaledByRow:): shapes \(a.shape) and \(y.shape) differ")
        guard case .perRow(let n) = Broadcast(a, g, op: "adding(scaledByRow:)") else {
            preconditionFailure("adding(scaledByRow:): gate \(g.shape) is not one value per row of \(a.shape)")
        }
        let out = [Float].uninitialized(count: a.count) { o in
            a.data.withUnsafeBufferPointer { ap in
                y.data.withUnsafeBufferPointer { yp in
                    g.data.withUnsafeBufferPointer { gp in
                        let o = o.baseAddress!, x = ap.baseAddress!, y = yp.baseAddress!, g = gp.baseAddress!
                        Parallel.forRanges(gp.count, grain: Parallel.rowGrain(width: n)) { rows in
                            for r in rows { let v = g[r]; for j in r * n..<(r + 1) * n { o[j] = x[j] + v * y[j] } }
                        }
                    }
                }
            }
        }
        return .result(shape: a.shape, data: out, inputs: [a, y, g], family: .elementwise) { out in
            let dOut = out.grad!
            if a.requiresGrad { a.accumulateGrad(dOut) }
            if y.requiresGrad { y.accumulateGrad(Self.combine(dOut, g.data, .perRow(n)) { d, v in d * v }) }
            guard g.requiresGrad else { return }
            g.withGradBuffer { gg in
                y.data.withUnsafeBufferPointer { yp in
                    dOut.withUnsafeBufferPointer { dp in Self.addRowDots(dp.baseAddress!, yp.baseAddress!, width: n, into: gg) }
                }
            }
        }
    }

    /// dst[r] += Σ_j a[r·n + j] · b[r·n + j] for every row r of dst: the gradient of a per-row
    /// scale, split over threads.
    private static func addRowDots(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, width n: Int,
                                   into dst: UnsafeMutableBufferPointer<Float>) {
        let d = dst.baseAddress!
        Parallel.forRanges(dst.count, grain: Parallel.rowGrain(width: n)) { rows in
            for r in rows {
                var s: Float = 0
                for j in 0..<n { s += a[r * n + j] * b[r * n + j] }
                d[r] += s
            }
        }
    }

    /// f(a[i], b[·]) for every element of `a`, with `b` broadcast as `mode` says, split over threads.
    @inline(__always)
    private static func combine(_ a: [Float], _ b: [Float], _ mode: Broadcast, _ f: (Float, Float) -> Float) -> [Float] {
        [Float].uninitialized(count: a.count) { o in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    let o = o.baseAddress!, x = ap.baseAddress!, y = bp.baseAddress!
                    switch mode {
                    case .none:
                        Parallel.forRanges(a.count, grain: Parallel.elementGrain) { r in for i in r { o[i] = f(x[i], y[i]) } }
                    case .suffix(let n):
                        Parallel.forRanges(a.count / n, grain: Parallel.rowGrain(width: n)) { rows in
                            for r in rows { for j in 0..<n { o[r * n + j] = f(x[r * n + j], y[j]) } }
                        }
                    case .perRow(let n):
                        Parallel.forRanges(b.count, grain: Parallel.rowGrain(width: n)) { rows in
                            for r in rows { let v = y[r]; for j in 0..<n { o[r * n + j] = f(x[r * n + j], v) } }
                        }
                    }
                }
            }
        }
    }

    /// `self * factor`.
    public func scaled(by factor: Float) -> Tensor {
        let a = self
        let out = a.data.map { $0 * factor }
        return .result(shape: a.shape, data: out, inputs: [a], family: .elementwise) { out in
            a.accumulateGrad(out.grad!, scale: factor)
        }
    }

    /// Applies `f` element-wise; `df(x, y)` is the derivative given input x and output y.
    @inline(__always)
    func unary(_ f: (Float) -> Float, _ df: @escaping (Float, Float) -> Float) -> Tensor {
        let a = self
        let out = [Float].uninitialized(count: a.count) { o in
            a.data.withUnsafeBufferPointer { x in
                let o = o.baseAddress!, x = x.baseAddress!
                Parallel.forRanges(a.count, grain: Parallel.elementGrain) { r in for i in r { o[i] = f(x[i]) } }
            }
        }
        return .result(shape: a.shape, data: out, inputs: [a], family: .activation) { out in
            a.withGradBuffer { ga in
                a.data.withUnsafeBufferPointer { x in
                    out.data.withUnsafeBufferPointer { y in
                        out.grad!.withUnsafeBufferPointer { g in
                            let da = ga.baseAddress!, x = x.baseAddress!, y = y.baseAddress!, g = g.baseAddress!
                            Parallel.forRanges(ga.count, grain: Parallel.elementGrain) { r in
                                for i in r { da[i] += g[i] * df(x[i], y[i]) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// x * sigmoid(x).
    public func silu() -> Tensor { unary(Activation.silu, Activation.siluDerivative) }

    /// Logistic sigmoid.
    public func sigmoid() -> Tensor { unary(Activation.sigmoid) { _, y in y * (1 - y) } }

    /// Hyperbolic tangent.
    public func tanh() -> Tensor { unary(Foundation.tanh) { _, y in 1 - y * y } }

    /// GELU, exact (erf) or with the tanh approximation (GPT-2's "gelu_new", Gemma).
    public func gelu(approximate: Bool = false) -> Tensor {
        approximate
            ? unary(Activation.geluTanh, { x, _ in Activation.geluTanhDerivative(x) })
            : unary(Activation.gelu, { x, _ in Activation.geluDerivative(x) })
    }

    /// Fused gated activation `act(self) * up`, as in SwiGLU (silu) and GeGLU (gelu).
    /// Saves the intermediate tensor an unfused version would allocate.
    public func gated(with up: Tensor, activation: Activation.Kind) -> Tensor {
        precondition(shape == up.shape, "gated: shapes \(shape) and \(up.shape) differ")
        if activation == .silu { return swiGLU(with: up) }
        let gate = self
        let (f, df) = activation.functions
        let n = count
        let out = [Float].uninitialized(count: n) { o in
            gate.data.withUnsafeBufferPointer { gp in
                up.data.withUnsafeBufferPointer { upp in
                    let o = o.baseAddress!, x = gp.baseAddress!, u = upp.baseAddress!
                    Parallel.forRanges(n, grain: Parallel.elementGrain) { r in for i in r { o[i] = f(x[i]) * u[i] } }
                }
            }
        }
        return .result(shape: shape, data: out, inputs: [gate, up], family: .activation) { out in
            out.grad!.withUnsafeBufferPointer { gp in
                gate.data.withUnsafeBufferPointer { xp in
                    up.data.withUnsafeBufferPointer { upp in
                        let g = gp.baseAddress!, x = xp.baseAddress!, u = upp.baseAddress!
                        // One tensor in both roles gets both sums, one after the other.
                        if gate.requiresGrad {
                            gate.withGradBuffer { gg in
                                let d = gg.baseAddress!
                                Parallel.forRanges(n, grain: Parallel.elementGrain) { r in
                                    for i in r { d[i] += g[i] * u[i] * df(x[i]) }
                                }
                            }
                        }
                        if up.requiresGrad {
                            up.withGradBuffer { gu in
                                let d = gu.baseAddress!
                                Parallel.forRanges(n, grain: Parallel.elementGrain) { r in for i in r { d[i] += g[i] * f(x[i]) } }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `silu(self) * up` in one AVX2 pass (the MLP of every Llama-style block, so hot). The
    /// backward writes a gradient that starts here instead of zero-filling and adding.
    private func swiGLU(with up: Tensor) -> Tensor {
        let gate = self
        let n = count
        let out = [Float].uninitialized(count: n) { o in
            gate.data.withUnsafeBufferPointer { x in
                up.data.withUnsafeBufferPointer { u in
                    let o = o.baseAddress!, x = x.baseAddress!, u = u.baseAddress!
                    Parallel.forRanges(n, grain: Parallel.elementGrain) { r in
                        ck_swiglu_forward(x + r.lowerBound, u + r.lowerBound, o + r.lowerBound, Int64(r.count))
                    }
                }
            }
        }
        return .result(shape: shape, data: out, inputs: [gate, up], family: .activation) { out in
            out.grad!.withUnsafeBufferPointer { g in
                gate.data.withUnsafeBufferPointer { x in
                    up.data.withUnsafeBufferPointer { u in
                        let g = g.baseAddress!, x = x.baseAddress!, u = u.baseAddress!
                        func run(_ dGate: UnsafeMutableBufferPointer<Float>?, _ addGate: Bool,
                                 _ dUp: UnsafeMutableBufferPointer<Float>?, _ addUp: Bool) {
                            let dg = dGate?.baseAddress, du = dUp?.baseAddress
                            Parallel.forRanges(n, grain: Parallel.elementGrain) { r in
                                let lo = r.lowerBound
                                ck_swiglu_backward(x + lo, u + lo, g + lo, dg.map { $0 + lo }, du.map { $0 + lo },
                                                   Int64(r.count), addGate ? 1 : 0, addUp ? 1 : 0)
                            }
                        }
                        switch (gate.requiresGrad, up.requiresGrad) {
                        case (true, true) where gate === up: gate.withGradOutput { d, add in run(d, add, d, true) }
                        case (true, true): gate.withGradOutput { dg, addG in up.withGradOutput { du, addU in run(dg, addG, du, addU) } }
                        case (true, false): gate.withGradOutput { run($0, $1, nil, false) }
                        case (false, true): up.withGradOutput { run(nil, false, $0, $1) }
                        case (false, false): break
                        }
                    }
                }
            }
        }
    }

    /// Applies a named activation.
    public func activated(_ kind: Activation.Kind) -> Tensor {
        let (f, df) = kind.functions
        return unary(f) { x, _ in df(x) }
    }
}

/// Scalar activation functions and their derivatives.
public enum Activation {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case silu
        case gelu
        case geluTanh = "gelu_tanh"
        case relu

        var functions: (@Sendable (Float) -> Float, @Sendable (Float) -> Float) {
            switch self {
            case .silu: return (Activation.silu, { Activation.siluDerivative($0, 0) })
            case .gelu: return (Activation.gelu, Activation.geluDerivative)
            case .geluTanh: return (Activation.geluTanh, Activation.geluTanhDerivative)
            case .relu: return ({ max($0, 0) }, { $0 > 0 ? 1 : 0 })
            }
        }
    }

    @inline(__always) public static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

    @inline(__always) public static func silu(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }

    @inline(__always) static func siluDerivative(_ x: Float, _: Float) -> Float {
        let s = sigmoid(x)
        return s * (1 + x * (1 - s))
    }

    @inline(__always) public static func gelu(_ x: Float) -> Float {
        0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752))
    }

    @inline(__always) static func geluDerivative(_ x: Float) -> Float {
        let cdf = 0.5 * (1 + Foundation.erf(x * 0.70710678118654752))
        let pdf = Foundation.exp(-0.5 * x * x) * 0.39894228040143268
        return cdf + x * pdf
    }

    private static let geluC: Float = 0.79788456080286536  // sqrt(2/pi)

    @inline(__always) public static func geluTanh(_ x: Float) -> Float {
        0.5 * x * (1 + Foundation.tanh(geluC * (x + 0.044715 * x * x * x)))
    }

    @inline(__always) static func geluTanhDerivative(_ x: Float) -> Float {
        let inner = geluC * (x + 0.044715 * x * x * x)
        let t = Foundation.tanh(inner)
        let dInner = geluC * (1 + 3 * 0.044715 * x * x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner
    }
}
