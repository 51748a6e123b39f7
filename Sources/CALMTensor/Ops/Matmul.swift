import CKernels
extension Tensor {
    /// Affine map over the last dimension: `x (..., in) · weightᵀ + bias`, with `weight` stored
    /// as `(out, in)` (the PyTorch `nn.Linear` layout) and optional `bias (out)`.
    /// One sgemm forward; backward is one sgemm for the input and, only when the weight is
    /// trainable, one accumulating sgemm for the weight.
    ///
    /// `residual` (same shape as the result) is added in the GEMM itself (it becomes C with
    /// beta = 1), so a pre-norm block's `x + W·h` costs no pass of its own; its gradient is the
    /// result's, handed on without a copy.
    public func linear(_ weight: Tensor, bias: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        let x = self
        precondition(weight.rank == 2 && weight.shape[1] == x.lastDim,
                     "linear: input \(x.shape) does not match weight \(weight.shape)")
        let rows = x.rowCount, inF = weight.shape[1], outF = weight.shape[0]
        Self.checkLinearAddends(outF: outF, bias: bias, residual: residual, input: x.shape)
        let out = [Float].uninitialized(count: rows * outF) { o in
            x.data.withUnsafeBufferPointer { xp in
                weight.data.withUnsafeBufferPointer { wp in
                    if rows <= 2 {
                        // Decoding feeds one row: the kernels' matrix-vector product reads W once
                        // and splits its rows over the same spinning threads as quantized weights
                        // (OpenBLAS's sgemv threads would fight those for the two cores).
                        withOptionalPointer(bias) { bp in
                            for r in 0..<rows {
                                ck_matvec_threads(Int32(CK_F32), UnsafeRawPointer(wp.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                                  Int64(outF), Int64(inF), xp.baseAddress! + r * inF, bp, o.baseAddress! + r * outF,
                                                  Int32(BLAS.threads))
                            }
                        }
                        Self.addResidual(residual, to: o)
                        return
                    }
                    let prefilled = Self.prefillLinearOutput(o, rows: rows, outF: outF, bias: bias, residual: residual)
                    // (rows, in) · (out, in)ᵀ -> (rows, out)
                    BLAS.gemm(transA: false, transB: true, m: rows, n: outF, k: inF,
                              a: xp.baseAddress!, lda: inF, b: wp.baseAddress!, ldb: inF,
                              beta: prefilled ? 1 : 0, c: o.baseAddress!, ldc: outF)
                }
            }
        }
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        let inputs = [x, weight] + [bias, residual].compactMap { $0 }
        return .result(shape: outShape, data: out, inputs: inputs, family: .matmul) { out in
            if let residual, residual.requiresGrad { residual.accumulateGrad(out.grad!) }
            out.grad!.withUnsafeBufferPointer { g in
                if x.requiresGrad {
                    x.withGradOutput { gx, accumulate in
                        weight.data.withUnsafeBufferPointer { wp in
                            // dX (rows, in) (+)= dY (rows, out) · W (out, in)
                            BLAS.gemm(transA: false, transB: false, m: rows, n: inF, k: outF,
                                      a: g.baseAddress!, lda: outF, b: wp.baseAddress!, ldb: inF,
                                      beta: accumulate ? 1 : 0, c: gx.baseAddress!, ldc: inF)
                        }
                    }
                }
                if weight.requiresGrad {
                    weight.withGradBuffer { gw in
                        x.data.withUnsafeBufferPointer { xp in
                            // dW (out, in) += dYᵀ (out, rows) · X (rows, in)
                            BLAS.gemm(transA: true, transB: false, m: outF, n: inF, k: rows,
                                      a: g.baseAddress!, lda: outF, b: xp.baseAddress!, ldb: inF,
                                      beta: 1, c: gw.baseAddress!, ldc: inF)
                        }
                    }
                }
                if let bias, bias.requiresGrad {
                    bias.withGradBuffer { gb in
                        for r in 0..<rows {
                            for j in 0..<outF { gb[j] += g[r * outF + j] }
                        }
                    }
                }
            }
        }
    }

    /// Checks a linear map's optional bias `(out)` and residual (the result's shape).
    static func checkLinearAddends(outF: Int, bias: Tensor?, residual: Tensor?, input: [Int]) {
        if let bias { precondition(bias.shape == [outF], "linear: bias \(bias.shape), expected [\(outF)]") }
        if let residual {
            precondition(residual.shape == Array(input.dropLast()) + [outF],
                         "linear: residual \(residual.shape), expected \(Array(input.dropLast()) + [outF])")
        }
    }

    /// o += residual, for the matrix-vector path (one or two rows: the product is written first).
    static func addResidual(_ residual: Tensor?, to o: UnsafeMutableBufferPointer<Float>) {
        guard let residual else { return }
        for i in 0..<o.count { o[i] += residual.data[i] }
    }

    /// Writes the terms a linear map adds to its product into `o (rows, out)`: the residual,
    /// plus bias rows. Returns whether anything was written, i.e. whether the GEMM must
    /// accumulate (beta = 1) rather than overwrite (beta = 0).
    static func prefillLinearOutput(_ o: UnsafeMutableBufferPointer<Float>, rows: Int, outF: Int,
                                    bias: Tensor?, residual: Tensor?) -> Bool {
        let dst = o.baseAddress!
        if let residual {
            residual.data.withUnsafeBufferPointer { rp in
                let src = rp.baseAddress!
                Parallel.forRanges(o.count, grain: Parallel.elementGrain) { r in
                    (dst + r.lowerBound).initialize(from: src + r.lowerBound, count: r.count)
                }
            }
        }
        guard let bias else { return residual != nil }
        bias.data.withUnsafeBufferPointer { bp in
            let b = bp.baseAddress!
            for r in 0..<rows {
                let row = dst + r * outF
                if residual == nil { row.initialize(from: b, count: outF) } else { for j in 0..<outF { row[j] += b[j] } }
            }
        }
        return true
    }

    /// Matrix product of the last two dimensions, batched over any leading dimensions that
    /// both operands share: `(..., m, k) · (..., k, n) -> (..., m, n)`, with optional
    /// transposition of either operand's last two dimensions.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        let a = self, b = other
        precondition(a.rank >= 2 && b.rank == a.rank && a.shape.dropLast(2) == b.shape.dropLast(2),
                     "matmul: shapes \(a.shape) and \(b.shape) are not batch-compatible")
        let batchShape = Array(a.shape.dropLast(2))
        let batch = batchShape.reduce(1, *)
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeSelf ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeOther ? (bc, br) : (br, bc)
        precondition(k == k2, "matmul: inner dimensions \(k) and \(k2) differ (\(a.shape) · \(b.shape))")
        // beta = 0: BLAS writes every output element.
        let out = [Float].uninitialized(count: batch * m * n) { o in
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    for i in 0..<batch {
                        BLAS.gemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
                                  a: ap.baseAddress! + i * ar * ac, lda: ac,
                                  b: bp.baseAddress! + i * br * bc, ldb: bc,
                                  c: o.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
        return .result(shape: batchShape + [m, n], data: out, inputs: [a, b], family: .matmul) { out in
            out.grad!.withUnsafeBufferPointer { g in
                if a.requiresGrad {
                    a.withGradBuffer { ga in
                        b.data.withUnsafeBufferPointer { bp in
                            for i in 0..<batch {
                                let gi = g.baseAddress! + i * m * n, bi = bp.baseAddress! + i * br * bc
                                let dst = ga.baseAddress! + i * ar * ac
                                if transposeSelf {
                                    // dA (k, m) += op(B) (k, n) · dCᵀ (n, m)
                                    BLAS.gemm(transA: transposeOther, transB: true, m: k, n: m, k: n,
                                              a: bi, lda: bc, b: gi, ldb: n, beta: 1, c: dst, ldc: ac)
                                } else {
                                    // dA (m, k) += dC (m, n) · op(B)ᵀ (n, k)
                                    BLAS.gemm(transA: false, transB: !transposeOther, m: m, n: k, k: n,
                                              a: gi, lda: n, b: bi, ldb: bc, beta: 1, c: dst, ldc: ac)
                                }
                            }
                        }
                    }
                }
                if b.requiresGrad {
                    b.withGradBuffer { gb in
                        a.data.withUnsafeBufferPointer { ap in
                            for i in 0..<batch {
                                let gi = g.baseAddress! + i * m * n, ai = ap.baseAddress! + i * ar * ac
                                let dst = gb.baseAddress! + i * br * bc
                                if transposeOther {
                                    // dB (n, k) += dCᵀ (n, m) · op(A) (m, k)
                                    BLAS.gemm(transA: true, transB: transposeSelf, m: n, n: k, k: m,
                                              a: gi, lda: n, b: ai, ldb: ac, beta: 1, c: dst, ldc: bc)
                                } else {
                                    // dB (k, n) += op(A)ᵀ (k, m) · dC (m, n)
                                    BLAS.gemm(transA: !transposeSelf, transB: false, m: k, n: n, k: m,
                                              a: ai, lda: ac, b: gi, ldb: n, beta: 1, c: dst, ldc: bc)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
