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
        var out = a.data
        out.withUnsafeMutableBufferPointer { o in
            b.data.withUnsafeBufferPointer { bp in
                switch mode {
                case .none:
                    for i in 0..<o.count { o[i] += sign * bp[i] }
                case .suffix(let n):
                    var base = 0
                    while base < o.count {
                        for j in 0..<n { o[base + j] += sign * bp[j] }
                        base += n
                    }
                case .perRow(let n):
                    for r in 0..<bp.count { let v = sign * bp[r]; for j in 0..<n { o[r * n + j] += v } }
                }
            }
        }
        return .result(shape: a.shape, data: out, inputs: [a, b]) { out in
            let g = out.grad!
            if a.requiresGrad { a.withGradBuffer { ga in for i in 0..<ga.count { ga[i] += g[i] } } }
            if b.requiresGrad {
                b.withGradBuffer { gb in
                    switch mode {
                    case .none:
                        for i in 0..<gb.count { gb[i] += sign * g[i] }
                    case .suffix(let n):
                        var base = 0
                        while base < g.count {
                            for j in 0..<n { gb[j] += sign * g[base + j] }
                            base += n
                        }
                    case .perRow(let n):
                        for r in 0..<gb.count {
                            var s: Float = 0
                            for j in 0..<n { s += g[r * n + j] }
                            gb[r] += sign * s
                        }
                    }
                }
            }
        }
    }

    /// Element-wise `self * other`; `other` may be a suffix or one value per row.
    public func multiplying(_ other: Tensor) -> Tensor {
        let a = self, b = other
        let mode = Broadcast(a, b, op: "mul")
        var out = a.data
        let bIndex: (Int) -> Int
        switch mode {
        case .none: bIndex = { $0 }
        case .suffix(let n): bIndex = { $0 % n }
        case .perRow(let n): bIndex = { $0 / n }
        }
        out.withUnsafeMutableBufferPointer { o in
            b.data.withUnsafeBufferPointer { bp in
                if case .none = mode {
                    for i in 0..<o.count { o[i] *= bp[i] }
                } else {
                    for i in 0..<o.count { o[i] *= bp[bIndex(i)] }
                }
            }
        }
        return .result(shape: a.shape, data: out, inputs: [a, b]) { out in
            let g = out.grad!
            if a.requiresGrad {
                a.withGradBuffer { ga in
                    b.data.withUnsafeBufferPointer { bp in
                        for i in 0..<ga.count { ga[i] += g[i] * bp[bIndex(i)] }
                    }
                }
            }
            if b.requiresGrad {
                b.withGradBuffer { gb in
                    a.data.withUnsafeBufferPointer { ap in
                        for i in 0..<ap.count { gb[bIndex(i)] += g[i] * ap[i] }
                    }
                }
            }
        }
    }

    /// `self * factor`.
    public func scaled(by factor: Float) -> Tensor {
        let a = self
        let out = a.data.map { $0 * factor }
        return .result(shape: a.shape, data: out, inputs: [a]) { out in
            let g = out.grad!
            a.withGradBuffer { ga in for i in 0..<ga.count { ga[i] += factor * g[i] } }
        }
    }

    /// Applies `f` element-wise; `df(x, y)` is the derivative given input x and output y.
    @inline(__always)
    func unary(_ f: (Float) -> Float, _ df: @escaping (Float, Float) -> Float) -> Tensor {
        let a = self
        let out = a.data.map(f)
        return .result(shape: a.shape, data: out, inputs: [a]) { out in
            let g = out.grad!
            let y = out.data
            a.withGradBuffer { ga in
                a.data.withUnsafeBufferPointer { x in
                    for i in 0..<ga.count { ga[i] += g[i] * df(x[i], y[i]) }
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
        var out = [Float](repeating: 0, count: count)
        gate.data.withUnsafeBufferPointer { gp in
            up.data.withUnsafeBufferPointer { upp in
                for i in 0..<out.count { out[i] = f(gp[i]) * upp[i] }
            }
        }
        return .result(shape: shape, data: out, inputs: [gate, up]) { out in
            let g = out.grad!
            gate.data.withUnsafeBufferPointer { gp in
                up.data.withUnsafeBufferPointer { upp in
                    if gate.requiresGrad {
                        gate.withGradBuffer { gg in
                            for i in 0..<gg.count { gg[i] += g[i] * upp[i] * df(gp[i]) }
                        }
                    }
                    if up.requiresGrad {
                        up.withGradBuffer { gu in
                            for i in 0..<gu.count { gu[i] += g[i] * f(gp[i]) }
                        }
                    }
                }
            }
        }
    }

    /// `silu(self) * up` with vectorised sigmoids (the MLP of every Llama-style block, so hot).
    private func swiGLU(with up: Tensor) -> Tensor {
        let gate = self
        let n = count
        var out = [Float](repeating: 0, count: n)
        gate.data.withUnsafeBufferPointer { x in
            up.data.withUnsafeBufferPointer { u in
                out.withUnsafeMutableBufferPointer { o in
                    FastMath.sigmoid(x.baseAddress!, o.baseAddress!, n)  // o = sigmoid(x)
                    for i in 0..<n { o[i] = x[i] * o[i] * u[i] }
                }
            }
        }
        return .result(shape: shape, data: out, inputs: [gate, up]) { out in
            let sig = UnsafeMutablePointer<Float>.allocate(capacity: n)
            defer { sig.deallocate() }
            out.grad!.withUnsafeBufferPointer { g in
                gate.data.withUnsafeBufferPointer { x in
                    up.data.withUnsafeBufferPointer { u in
                        FastMath.sigmoid(x.baseAddress!, sig, n)
                        if gate.requiresGrad {
                            gate.withGradBuffer { gg in
                                for i in 0..<n {
                                    let s = sig[i]
                                    gg[i] += g[i] * u[i] * s * (1 + x[i] * (1 - s))
                                }
                            }
                        }
                        if up.requiresGrad {
                            up.withGradBuffer { gu in
                                for i in 0..<n { gu[i] += g[i] * x[i] * sig[i] }
                            }
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
