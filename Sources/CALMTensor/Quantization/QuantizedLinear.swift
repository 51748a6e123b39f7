import CKernels
import Dispatch

/// How products with quantized weights are split into work.
public enum QuantizedKernels {
    /// Up to this many activation rows, each row is a matrix-vector product straight off the
    /// blocks (decoding); above it, panels of weight rows are dequantized and multiplied with
    /// sgemm (prefill, training), which reuses each dequantized value across all rows.
    public static let matvecRowLimit = 2
    /// Weight rows dequantized at a time for sgemm: 128-4096 measured alike for a 512-token
    /// prefill of the 135M benchmark model (sgemm dominates), so a small reusable buffer.
    public static let panelRows = 256
    /// A matrix-vector product is split over BLAS's threads only from this many weights on.
    /// Splitting every projection through GCD made decoding the 135M benchmark model slower
    /// (68-79 against 81-89 tokens/s with q4_0 on this shared 2-core machine): a wake-up costs
    /// about what a 1536 x 576 product takes. Only an output head of this size is split.
    public static let parallelMatvecWeights = 1 << 22

    /// `y (rows) = W x (+ bias)` for one activation row, split over row ranges of W.
    static func matvec(_ w: QuantizedMatrix, x: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                       y: UnsafeMutablePointer<Float>) {
        let threads = w.rows * w.cols >= parallelMatvecWeights ? min(BLAS.threads, w.rows) : 1
        w.bytes.withUnsafeBufferPointer { b in
            let job = MatvecJob(format: w.format.kernelID, weights: b.baseAddress!, rowBytes: w.rowBytes, cols: w.cols,
                                x: x, bias: bias, y: y)
            if threads <= 1 { return job.run(rows: 0..<w.rows) }
            DispatchQueue.concurrentPerform(iterations: threads) { i in
                job.run(rows: (w.rows * i / threads)..<(w.rows * (i + 1) / threads))
            }
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

/// One matrix-vector product's pointers, shared by the threads that split its rows: each
/// thread writes its own rows of y and only reads everything else, hence @unchecked Sendable.
private struct MatvecJob: @unchecked Sendable {
    let format: Int32
    let weights: UnsafePointer<UInt8>
    let rowBytes: Int, cols: Int
    let x: UnsafePointer<Float>
    let bias: UnsafePointer<Float>?
    let y: UnsafeMutablePointer<Float>

    func run(rows: Range<Int>) {
        ck_matvec(format, weights + rows.lowerBound * rowBytes, Int64(rows.count), Int64(cols), x,
                  bias.map { $0 + rows.lowerBound }, y + rows.lowerBound)
    }
}

extension Tensor {
    /// `x (..., in) · Wᵀ + bias` with a frozen quantized `W (out, in)`, accumulating in float32.
    /// Backward gives the input (and a trainable bias) their gradients; the weight has none.
    public func linear(_ weight: QuantizedMatrix, bias: Tensor? = nil) -> Tensor {
        let x = self
        precondition(weight.cols == x.lastDim, "linear: input \(x.shape) does not match quantized weight \(weight.shape)")
        let rows = x.rowCount, inF = weight.cols, outF = weight.rows
        if let bias { precondition(bias.shape == [outF], "linear: bias \(bias.shape), expected [\(outF)]") }
        let out = [Float].uninitialized(count: rows * outF) { o in
            guard rows > 0, outF > 0 else { return }
            guard inF > 0 else {
                // No inputs: every output is its bias (the blocks are empty, nothing to read).
                for r in 0..<rows { for j in 0..<outF { o[r * outF + j] = bias?.data[j] ?? 0 } }
                return
            }
            x.data.withUnsafeBufferPointer { xp in
                if rows <= QuantizedKernels.matvecRowLimit {
                    withOptionalPointer(bias) { bp in
                        for r in 0..<rows {
                            QuantizedKernels.matvec(weight, x: xp.baseAddress! + r * inF, bias: bp, y: o.baseAddress! + r * outF)
                        }
                    }
                    return
                }
                if let bias {
                    bias.data.withUnsafeBufferPointer { bp in
                        for r in 0..<rows { (o.baseAddress! + r * outF).initialize(from: bp.baseAddress!, count: outF) }
                    }
                }
                QuantizedKernels.forEachPanel(weight) { start, count, panel in
                    // (rows, in) · panel (count, in)ᵀ -> columns start ..< start + count of (rows, out)
                    BLAS.gemm(transA: false, transB: true, m: rows, n: count, k: inF,
                              a: xp.baseAddress!, lda: inF, b: panel, ldb: inF,
                              beta: bias == nil ? 0 : 1, c: o.baseAddress! + start, ldc: outF)
                }
            }
        }
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        return .result(shape: outShape, data: out, inputs: bias.map { [x, $0] } ?? [x]) { out in
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
private func withOptionalPointer<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let tensor else { return body(nil) }
    return tensor.data.withUnsafeBufferPointer { body($0.baseAddress) }
}
