import CKernels

/// How products with quantized weights are split into work.
public enum QuantizedKernels {
    /// Up to this many activation rows, each row is a matrix-vector product straight off the
    /// blocks (decoding); above it, panels of weight rows are dequantized and multiplied with
    /// sgemm (prefill, training), which reuses each dequantized value across all rows.
    /// On SmolLM2-135M (Q4_1, 2 threads) prompts of 7 and 15 tokens ran 1.5-2x faster through
    /// the kernels than through dequantized panels, 31 alike, 63 slower; 32 so that a full decode
    /// batch of `calm serve` (`--max-batch` 32) stays on the kernels, where 32 streams of
    /// SmolLM2 Q4_1 had run slower through the panels than 8 streams through the kernels.
    public static let matvecRowLimit = 32
    /// Weight rows dequantized at a time for sgemm: 128-4096 measured alike for a 512-token
    /// prefill of the 135M benchmark model (sgemm dominates), so a small reusable buffer.
    public static let panelRows = 256
    /// `Y (n, rows) = X (n, cols) Wᵀ (+ bias)` for a few activation rows, split over BLAS's
    /// thread count by the kernels' own pool of spinning workers (a GCD wake-up per product cost
    /// about as much as a 1536 x 576 product, so decoding used one thread for all but the head).
    static func matmul(_ w: QuantizedMatrix, x: UnsafePointer<Float>, rows n: Int, bias: UnsafePointer<Float>?,
                       y: UnsafeMutablePointer<Float>) {
        w.bytes.withUnsafeBufferPointer { b in
            ck_matmul_threads(w.format.kernelID, b.baseAddress!, Int64(w.rows), Int64(w.cols), x, Int64(n), bias, y,
                              Int32(BLAS.threads))
        }
    }

    /// Calls `body(firstRow, panel)` for consecutive panels of W's rows dequantized into one
    /// reusable buffer `(panelRows, cols)`.
    static func forEachPanel(_ w: QuantizedMatrix, _ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        let panel = max(1, min(panelRows, w.rows))
        var scratch = [Float](unsafeUninitializedCapacity: panel * w.cols) { _, n in n = panel * w.cols }
        scratch.withUnsafeMutableBufferPointer { s in
            for start in stride(from: 0, to: w.rows, by: panel) {
                let count = min(panel, w.rows - start)
                w.dequantizeRows(start..<(start + count), into: s.baseAddress!)
                body(start, count, s.baseAddress!)
            }
        }
    }
}

extension Tensor {
    /// `x (..., in) · Wᵀ + bias` with a frozen quantized `W (out, in)`, accumulating in float32.
    /// Backward gives the input (and a trainable bias) their gradients; the weight has none.
    /// `residual` is added in the product, as for a float32 weight.
    public func linear(_ weight: QuantizedMatrix, bias: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        let x = self
        precondition(weight.cols == x.lastDim, "linear: input \(x.shape) does not match quantized weight \(weight.shape)")
        let rows = x.rowCount, inF = weight.cols, outF = weight.rows
        Self.checkLinearAddends(outF: outF, bias: bias, residual: residual, input: x.shape)
        let out = [Float].uninitialized(count: rows * outF) { o in
            guard rows > 0, outF > 0 else { return }
            guard inF > 0 else {
                // No inputs: every output is its bias (the blocks are empty, nothing to read).
                for r in 0..<rows {
                    for j in 0..<outF { o[r * outF + j] = (bias?.data[j] ?? 0) + (residual?.data[r * outF + j] ?? 0) }
                }
                return
            }
            x.data.withUnsafeBufferPointer { xp in
                if rows <= QuantizedKernels.matvecRowLimit {
                    withOptionalPointer(bias) { bp in
                        QuantizedKernels.matmul(weight, x: xp.baseAddress!, rows: rows, bias: bp, y: o.baseAddress!)
                    }
                    Self.addResidual(residual, to: o)
                    return
                }
                let prefilled = Self.prefillLinearOutput(o, rows: rows, outF: outF, bias: bias, residual: residual)
                QuantizedKernels.forEachPanel(weight) { start, count, panel in
                    // (rows, in) · panel (count, in)ᵀ -> columns start ..< start + count of (rows, out)
                    BLAS.gemm(transA: false, transB: true, m: rows, n: count, k: inF,
                              a: xp.baseAddress!, lda: inF, b: panel, ldb: inF,
                              beta: prefilled ? 1 : 0, c: o.baseAddress! + start, ldc: outF)
                }
            }
        }
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        return .result(shape: outShape, data: out, inputs: [x] + [bias, residual].compactMap { $0 }, family: .quantized) { out in
            if let residual, residual.requiresGrad { residual.accumulateGrad(out.grad!) }
            out.grad!.withUnsafeBufferPointer { g in
                if x.requiresGrad, rows > 0, inF > 0 {
                    x.withGradBuffer { gx in
                        QuantizedKernels.forEachPanel(weight) { start, count, panel in
                            // dX (rows, in) += dY[:, start ..< start + count] (rows, count) · panel (count, in)
                            BLAS.gemm(transA: false, transB: false, m: rows, n: inF, k: count,
                                      a: g.baseAddress! + start, lda: outF, b: panel, ldb: inF,
                                      beta: 1, c: gx.baseAddress!, ldc: inF)
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
}

/// Runs `body` with a pointer to the tensor's data, or nil.
func withOptionalPointer<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let tensor else { return body(nil) }
    return tensor.data.withUnsafeBufferPointer { body($0.baseAddress) }
}
