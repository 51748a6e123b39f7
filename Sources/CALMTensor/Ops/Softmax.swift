import Foundation

/// Row kernels shared by softmax, log-softmax, cross-entropy and attention.
enum RowKernels {
    /// In place: row <- softmax(row).
    @inline(__always)
    static func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        softmaxInPlace(row, n, visible: n)
    }

    /// In place: softmax over the first `visible` entries; the rest (masked keys) become 0
    /// without any work spent on them.
    @inline(__always)
    static func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int, visible: Int) {
        var maxV = -Float.infinity
        for j in 0..<visible where row[j] > maxV { maxV = row[j] }
        if maxV == -.infinity {  // fully masked row: define the result as zeros
            for j in 0..<n { row[j] = 0 }
            return
        }
        let inv = 1 / FastMath.expShifted(row, visible, shift: maxV)
        for j in 0..<visible { row[j] *= inv }
        for j in visible..<n { row[j] = 0 }
    }

    /// log(sum(exp(row))), computed stably.
    @inline(__always)
    static func logSumExp(_ row: UnsafePointer<Float>, _ n: Int) -> Float {
        var maxV = -Float.infinity
        for j in 0..<n where row[j] > maxV { maxV = row[j] }
        if maxV == -.infinity { return maxV }
        return maxV + Foundation.log(FastMath.sumExpShifted(row, n, shift: maxV))
    }
}

extension Tensor {
    /// Softmax over the last dimension.
    public func softmax() -> Tensor {
        let a = self
        let n = a.lastDim, rows = a.rowCount
        var out = a.data
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows { RowKernels.softmaxInPlace(o.baseAddress! + r * n, n) }
        }
        return .result(shape: a.shape, data: out, inputs: [a], family: .softmax) { out in
            let g = out.grad!, y = out.data
            a.withGradBuffer { ga in
                for r in 0..<rows {
                    var dot: Float = 0
                    for j in 0..<n { dot += g[r * n + j] * y[r * n + j] }
                    for j in 0..<n { ga[r * n + j] += y[r * n + j] * (g[r * n + j] - dot) }
                }
            }
        }
    }

    /// Log-softmax over the last dimension.
    public func logSoftmax() -> Tensor {
        let a = self
        let n = a.lastDim, rows = a.rowCount
        var out = a.data
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows {
                let row = o.baseAddress! + r * n
                let lse = RowKernels.logSumExp(row, n)
                for j in 0..<n { row[j] -= lse }
            }
        }
        return .result(shape: a.shape, data: out, inputs: [a], family: .softmax) { out in
            let g = out.grad!, y = out.data
            a.withGradBuffer { ga in
                for r in 0..<rows {
                    var gsum: Float = 0
                    for j in 0..<n { gsum += g[r * n + j] }
                    for j in 0..<n { ga[r * n + j] += g[r * n + j] - FastMath.exp(y[r * n + j]) * gsum }
                }
            }
        }
    }

    /// Entropy in nats of the softmax over the last dimension: `(..., n) -> (..., 1)`. Entries of
    /// -inf (tokens a model never predicts) have probability 0 and add nothing.
    /// Backward: dH/dx_j = -p_j (log p_j + H).
    public func softmaxEntropy() -> Tensor {
        let a = self
        let n = a.lastDim, rows = a.rowCount
        var entropy = [Float](repeating: 0, count: rows)
        var lse = [Float](repeating: 0, count: rows)  // kept for the backward
        a.data.withUnsafeBufferPointer { x in
            for r in 0..<rows {
                let row = x.baseAddress! + r * n
                lse[r] = RowKernels.logSumExp(row, n)
                guard lse[r].isFinite else { continue }
                var h: Float = 0
                for j in 0..<n where row[j] > -.infinity {
                    let logP = row[j] - lse[r]
                    h -= FastMath.exp(logP) * logP
                }
                entropy[r] = h
            }
        }
        return .result(shape: Array(a.shape.dropLast()) + [1], data: entropy, inputs: [a], family: .softmax) { out in
            let g = out.grad!
            a.data.withUnsafeBufferPointer { x in
                a.withGradBuffer { ga in
                    for r in 0..<rows where lse[r].isFinite {
                        let row = x.baseAddress! + r * n
                        for j in 0..<n where row[j] > -.infinity {
                            let logP = row[j] - lse[r]
                            ga[r * n + j] -= g[r] * FastMath.exp(logP) * (logP + entropy[r])
                        }
                    }
                }
            }
        }
    }

    /// Surprisal in nats of one column per row under the row's softmax, `-log p(columns[r])`
    /// (`(..., n) -> [rows]`, no gradient): +inf for a column outside `0..<n` or a logit of -inf.
    public func rowSurprisal(of columns: [Int]) -> [Float] {
        let n = lastDim, rows = rowCount
        precondition(columns.count == rows, "rowSurprisal: \(columns.count) columns for \(rows) rows")
        return data.withUnsafeBufferPointer { x in
            (0..<rows).map { r in
                guard (0..<n).contains(columns[r]) else { return .infinity }
                let row = x.baseAddress! + r * n
                return RowKernels.logSumExp(row, n) - row[columns[r]]
            }
        }
    }

    /// Mean cross-entropy of `self (..., vocab)` logits against integer targets, one per row.
    /// Rows whose target is negative (e.g. -100, padding or prompt tokens) are ignored.
    /// Fused log-softmax + NLL: one pass forward, `(softmax - onehot) / count` backward.
    /// Returns a scalar; 0 when every row is ignored.
    public func crossEntropy(targets: [Int]) -> Tensor {
        let logits = self
        let n = logits.lastDim, rows = logits.rowCount
        precondition(targets.count == rows, "crossEntropy: \(targets.count) targets for \(rows) rows")
        for r in 0..<rows where targets[r] >= n {
            preconditionFailure("crossEntropy: target \(targets[r]) outside vocabulary \(n)")
        }
        let grain = Parallel.rowGrain(width: n)
        var lse = [Float](repeating: 0, count: rows)
        logits.data.withUnsafeBufferPointer { x in
            lse.withUnsafeMutableBufferPointer { lse in
                let x = x.baseAddress!, lse = lse.baseAddress!
                Parallel.forRanges(rows, grain: grain) { range in
                    for r in range where targets[r] >= 0 { lse[r] = RowKernels.logSumExp(x + r * n, n) }
                }
            }
        }
        var total: Float = 0
        var counted = 0
        for r in 0..<rows where targets[r] >= 0 {
            total += lse[r] - logits.data[r * n + targets[r]]
            counted += 1
        }
        let scale: Float = counted == 0 ? 0 : 1 / Float(counted)
        return .result(shape: [], data: [total * scale], inputs: [logits], family: .softmax) { out in
            let g = out.grad![0] * scale
            logits.withGradBuffer { gl in
                logits.data.withUnsafeBufferPointer { x in
                    let gl = gl.baseAddress!, x = x.baseAddress!
                    Parallel.forRanges(rows, grain: grain) { range in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n)
                        defer { scratch.deallocate() }
                        for r in range where targets[r] >= 0 {
                            let base = r * n
                            scratch.update(from: x + base, count: n)
                            _ = FastMath.expShifted(scratch, n, shift: lse[r])  // softmax probabilities
                            for j in 0..<n { gl[base + j] += g * scratch[j] }
                            gl[base + targets[r]] -= g
                        }
                    }
                }
            }
        }
    }
}
