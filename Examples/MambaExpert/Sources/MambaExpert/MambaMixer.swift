import CALMModels
import CALMTensor
import Foundation

/// The selective state-space mixer of one Mamba block (Gu & Dao 2023; Hugging Face
/// `MambaMixer`): in_proj splits into the scan input x and the gate z; x passes a depthwise
/// causal convolution and SiLU; x_proj makes the input-dependent time step (through dt_proj and
/// softplus), B and C; the scan runs the recurrence per channel; the output, gated by SiLU(z),
/// goes through out_proj.
struct MambaMixer {
    let config: MambaConfig
    let inProj: Linear  // (2E, C)
    let convWeight: Tensor  // (E, 1, K)
    let convBias: Tensor?  // (E)
    let xProj: Linear  // (R + 2N, E)
    let dtProj: Linear  // (E, R), with bias
    let aLog: Tensor  // (E, N)
    let d: Tensor  // (E)
    let outProj: Linear  // (C, E)
    /// A = −exp(A_log), `(E, N)`, computed once.
    let a: [Float]

    init(_ name: String, config: MambaConfig, weights: inout some WeightSource) throws {
        let (c, e, n, k, r) = (config.hiddenSize, config.intermediateSize, config.stateSize, config.convKernel, config.timeStepRank)
        self.config = config
        inProj = try Linear("\(name).in_proj", inFeatures: c, outFeatures: 2 * e, bias: config.useBias, std: 0.02, weights: &weights)
        convWeight = try weights.weight("\(name).conv1d.weight", shape: [e, 1, k], initial: .normal(std: 0.2))
        convBias = config.useConvBias ? try weights.weight("\(name).conv1d.bias", shape: [e], initial: .zeros) : nil
        xProj = try Linear("\(name).x_proj", inFeatures: e, outFeatures: r + 2 * n, bias: false, std: 0.02, weights: &weights)
        dtProj = try Linear("\(name).dt_proj", inFeatures: r, outFeatures: e, bias: true, std: 0.1, weights: &weights)
        // Fresh weights start at A = −1 (a stable decay); the models this runs are always loaded.
        // No initial array is built here, so a configuration naming huge sizes allocates nothing
        // before its tensors are checked.
        aLog = try weights.weight("\(name).A_log", shape: [e, n], initial: .zeros)
        d = try weights.weight("\(name).D", shape: [e], initial: .filled(1))
        outProj = try Linear("\(name).out_proj", inFeatures: e, outFeatures: c, bias: config.useBias, std: 0.02, weights: &weights)
        a = aLog.data.map { -Foundation.exp($0) }
    }

    func weights(_ name: String) -> NamedWeights {
        var out = inProj.weights("\(name).in_proj")
        out.append(("\(name).conv1d.weight", .dense(convWeight)))
        if let convBias { out.append(("\(name).conv1d.bias", .dense(convBias))) }
        out += xProj.weights("\(name).x_proj") + dtProj.weights("\(name).dt_proj")
        out += [("\(name).A_log", .dense(aLog)), ("\(name).D", .dense(d))]
        return out + outProj.weights("\(name).out_proj")
    }

    /// Mixes `x` `(B, T, C)`, the positions after those `state` has seen, and advances `state`.
    /// A full forward pass is this with a fresh state, so incremental decoding is the same code.
    func callAsFunction(_ x: Tensor, state: MambaLayerState) -> Tensor {
        let (batch, length) = (x.shape[0], x.shape[1])
        let (e, n, r) = (config.intermediateSize, config.stateSize, config.timeStepRank)
        let xz = inProj(x).data  // (B, T, 2E): scan input x, then gate z
        let u = convolve(xz, batch: batch, length: length, state: state)  // (B, T, E)
        let dbc = xProj(Tensor(shape: [batch, length, e], data: u)).data  // (B, T, R + 2N)
        let rows = batch * length
        var rank = [Float](repeating: 0, count: rows * r)
        for row in 0..<rows { for j in 0..<r { rank[row * r + j] = dbc[row * (r + 2 * n) + j] } }
        let dt = dtProj(Tensor(shape: [batch, length, r], data: rank)).data.map(softplus)  // (B, T, E)
        var y = [Float](repeating: 0, count: rows * e)  // (B, T, E)
        let skip = d.data  // (E)
        state.ssm.withUnsafeMutableBufferPointer { ssm in
            for b in 0..<batch {
                for t in 0..<length {
                    let row = b * length + t
                    let bcOffset = row * (r + 2 * n) + r  // B then C, N each
                    for channel in 0..<e {
                        let step = dt[row * e + channel], input = u[row * e + channel]
                        let s = (b * e + channel) * n
                        var out: Float = 0
                        for i in 0..<n {
                            // h ← exp(Δ·A)·h + Δ·B·u;  y = C·h
                            ssm[s + i] = Foundation.exp(step * a[channel * n + i]) * ssm[s + i] + step * dbc[bcOffset + i] * input
                            out += ssm[s + i] * dbc[bcOffset + n + i]
                        }
                        out += skip[channel] * input
                        y[row * e + channel] = out * Activation.silu(xz[row * 2 * e + e + channel])
                    }
                }
            }
        }
        state.length += length
        return outProj(Tensor(shape: [batch, length, e], data: y))  // (B, T, C)
    }

    /// The depthwise causal convolution over x (the first E of each row of `xz`) followed by
    /// SiLU; the window starts with the K − 1 inputs kept in `state`, which then keeps the last ones.
    private func convolve(_ xz: [Float], batch: Int, length: Int, state: MambaLayerState) -> [Float] {
        let (e, k) = (config.intermediateSize, config.convKernel)
        let kept = k - 1
        var u = [Float](repeating: 0, count: batch * length * e)  // (B, T, E)
        var window = [Float](repeating: 0, count: kept + length)
        let weight = convWeight.data, bias = convBias?.data  // (E, 1, K), (E)
        for b in 0..<batch {
            for channel in 0..<e {
                let s = (b * e + channel) * kept
                for j in 0..<kept { window[j] = state.conv[s + j] }
                for t in 0..<length { window[kept + t] = xz[(b * length + t) * 2 * e + channel] }
                let channelBias = bias?[channel] ?? 0
                for t in 0..<length {
                    var sum = channelBias
                    for j in 0..<k { sum += weight[channel * k + j] * window[t + j] }
                    u[(b * length + t) * e + channel] = Activation.silu(sum)
                }
                for j in 0..<kept { state.conv[s + j] = window[length + j] }
            }
        }
        return u
    }
}

/// PyTorch's softplus (β = 1, threshold 20): log(1 + eˣ), or x itself above the threshold.
@inline(__always) func softplus(_ x: Float) -> Float {
    x > 20 ? x : Foundation.log1p(Foundation.exp(x))
}
