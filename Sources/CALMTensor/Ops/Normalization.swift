import CKernels
import Foundation

extension Tensor {
    /// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) * (weightOffset + weight)`.
    /// `weightOffset` is 0 for Llama-style models and 1 for Gemma, which stores `w - 1`.
    public func rmsNorm(weight: Tensor, eps: Float, weightOffset: Float = 0) -> Tensor {
        let x = self
        let n = x.lastDim, rows = x.rowCount
        precondition(weight.shape == [n], "rmsNorm: weight \(weight.shape), expected [\(n)]")
        let scale = weightOffset == 0 ? weight.data : weight.data.map { weightOffset + $0 }  // (C) applied per channel
        var invRms = [Float](repeating: 0, count: rows)  // (rows) saved for backward
        let grain = Parallel.rowGrain(width: n)
        let out = [Float].uninitialized(count: x.count) { o in  // (rows, C)
            x.data.withUnsafeBufferPointer { xp in
                scale.withUnsafeBufferPointer { w in
                    invRms.withUnsafeMutableBufferPointer { inverses in
                        let o = o.baseAddress!, xp = xp.baseAddress!, w = w.baseAddress!, inverses = inverses.baseAddress!
                        Parallel.forRanges(rows, grain: grain) { r in
                            let base = r.lowerBound * n
                            ck_rmsnorm_forward(xp + base, w, Int64(r.count), Int64(n), eps, o + base, inverses + r.lowerBound)
                        }
                    }
                }
            }
        }
        return .result(shape: x.shape, data: out, inputs: [x, weight], family: .normalization) { out in
            let g = out.grad!
            x.data.withUnsafeBufferPointer { xp in
                if x.requiresGrad {
                    x.withGradBuffer { gx in
                        g.withUnsafeBufferPointer { g in
                            scale.withUnsafeBufferPointer { w in
                                invRms.withUnsafeBufferPointer { inverses in
                                    let dx = gx.baseAddress!, g = g.baseAddress!, xp = xp.baseAddress!, w = w.baseAddress!
                                    let inverses = inverses.baseAddress!
                                    // y = x·inv·w'; dx = inv·(g·w') − x·inv³/n · Σ(g·w'·x)
                                    Parallel.forRanges(rows, grain: grain) { r in
                                        let base = r.lowerBound * n
                                        ck_rmsnorm_backward(xp + base, w, g + base, inverses + r.lowerBound, Int64(r.count),
                                                            Int64(n), dx + base)
                                    }
                                }
                            }
                        }
                    }
                }
                if weight.requiresGrad {
                    weight.withGradBuffer { gw in
                        for r in 0..<rows {
                            let base = r * n, inv = invRms[r]
                            for j in 0..<n { gw[j] += g[base + j] * xp[base + j] * inv }
                        }
                    }
                }
            }
        }
    }

    /// LayerNorm over the last dimension: `(x − mean) / sqrt(var + eps) * weight + bias`.
    public func layerNorm(weight: Tensor, bias: Tensor?, eps: Float) -> Tensor {
        let x = self
        let n = x.lastDim, rows = x.rowCount
        precondition(weight.shape == [n], "layerNorm: weight \(weight.shape), expected [\(n)]")
        if let bias { precondition(bias.shape == [n], "layerNorm: bias \(bias.shape), expected [\(n)]") }
        var out = [Float](repeating: 0, count: x.count)
        var xhat = [Float](repeating: 0, count: x.count)  // normalised input, saved for backward
        var invStd = [Float](repeating: 0, count: rows)
        x.data.withUnsafeBufferPointer { xp in
            for r in 0..<rows {
                let base = r * n
                var mean: Float = 0
                for j in 0..<n { mean += xp[base + j] }
                mean /= Float(n)
                var variance: Float = 0
                for j in 0..<n { let d = xp[base + j] - mean; variance += d * d }
                variance /= Float(n)
                let inv = 1 / (variance + eps).squareRoot()
                invStd[r] = inv
                for j in 0..<n {
                    let h = (xp[base + j] - mean) * inv
                    xhat[base + j] = h
                    out[base + j] = h * weight.data[j] + (bias?.data[j] ?? 0)
                }
            }
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return .result(shape: x.shape, data: out, inputs: inputs, family: .normalization) { out in
            let g = out.grad!
            let w = weight.data
            if x.requiresGrad {
                x.withGradBuffer { gx in
                    for r in 0..<rows {
                        let base = r * n
                        // dx = inv/n · (n·gh − Σgh − xhat·Σ(gh·xhat)), gh = g·w
                        var sumGh: Float = 0, sumGhX: Float = 0
                        for j in 0..<n {
                            let gh = g[base + j] * w[j]
                            sumGh += gh
                            sumGhX += gh * xhat[base + j]
                        }
                        let k = invStd[r] / Float(n)
                        for j in 0..<n {
                            let gh = g[base + j] * w[j]
                            gx[base + j] += k * (Float(n) * gh - sumGh - xhat[base + j] * sumGhX)
                        }
                    }
                }
            }
            if weight.requiresGrad {
                weight.withGradBuffer { gw in
                    for r in 0..<rows { for j in 0..<n { gw[j] += g[r * n + j] * xhat[r * n + j] } }
                }
            }
            if let bias, bias.requiresGrad {
                bias.withGradBuffer { gb in
                    for r in 0..<rows { for j in 0..<n { gb[j] += g[r * n + j] } }
                }
            }
        }
    }
}
