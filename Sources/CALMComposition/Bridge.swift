import CALMModels
import CALMTensor
import Foundation

/// The learned pieces of one connection between an augment block and an anchor block:
/// projection, multi-head cross-attention and a per-token gate.
///
/// ```
/// a  = proj(H_A)                               (B, S, D_B)   augment states in anchor width
/// q  = RoPE(W_q · rms(H_B)),  k = RoPE(W_k · rms(a)),  v = W_v · rms(a)
/// z  = attention(q, k, v), causal             (B, T, D_B)   position t sees s ≤ t only
/// y  = W_o · z
/// g  = sigmoid(w_g · rms(H_B) + u_g · rms(z) [+ c_g · E_A] [+ f_g · F_A] + b_g)   (B, T, 1)   per token, per augment and connection
/// H_B ← H_B + g ⊙ y
/// ```
/// With confidence gates, E_A `(B, T, 2)` is the entropy of the augment's own next-token
/// prediction at each position and how far it exceeds the lowest entropy of any augment there:
/// an expert that does not know an answer spreads its prediction, and with several experts the
/// one that knows is the surest, so the gate can close on that however alike the experts'
/// states look. With familiarity gates, F_A `(B, T, 2)` is how surprised the augment was by the
/// text it read, lately and so far against the least surprised augment (`Familiarity`).
/// `W_o` starts at zero, so a fresh composition computes exactly what the anchor computes.
/// The RMS norms (learned scale, initialised to 1) keep attention logits in range whatever
/// the two models' residual-stream magnitudes are. Rotary position embeddings on q and k (the
/// two models see the same tokens at the same positions) let a bridge find the augment state
/// at a given relative position, e.g. the same token, which content alone cannot express.
/// The gate sees what the augment offers (z) as well as the anchor's state, so with several
/// augments each gate can open on the tokens its augment knows about (routing).
public final class Bridge {
    public let connection: Connection
    public let heads: Int
    public let projection: Linear  // (D_B, D_A)
    public let queryNorm: Tensor, keyNorm: Tensor  // (D_B)
    public let query: Linear, key: Linear, value: Linear, output: Linear  // (D_B, D_B)
    public let gate: Linear  // (1, D_B), on the anchor state
    public let gateFromAugment: Linear  // (1, D_B), on the attended augment states; starts at zero
    public let gateFromConfidence: Linear?  // (1, 2), on the augment's prediction entropy and its excess
    public let gateFromFamiliarity: Linear?  // (1, 2), on the augment's recent surprisal and its excess so far
    /// A fixed unit scale for the parameter-free RMS norm of z.
    private let unitScale: Tensor
    /// Rotary embedding of bridge queries and keys (nil: content-only attention).
    let rotary: RotaryEmbedding?
    static let normEps: Float = 1e-6

    /// A bridge whose weights, named under `prefix` (e.g. "augments.0.connections.1"), come
    /// from `weights`: fresh ones for a new composition, stored ones when loading.
    init(_ prefix: String, connection: Connection, augmentWidth: Int, anchorWidth: Int, heads: Int, rotary: Bool,
         confidence: Bool, familiarity: Bool, weights w: inout some WeightSource) throws {
        self.connection = connection
        self.heads = heads
        self.rotary = rotary ? RotaryEmbedding(headDim: anchorWidth / heads, theta: 10_000) : nil
        let std: Float = 0.02
        let square = [anchorWidth, anchorWidth]
        projection = try Linear("\(prefix).proj", inFeatures: augmentWidth, outFeatures: anchorWidth, bias: true,
                                std: 1 / Float(augmentWidth).squareRoot(), weights: &w)
        queryNorm = try w.weight("\(prefix).query_norm.weight", shape: [anchorWidth], initial: .filled(1))
        keyNorm = try w.weight("\(prefix).key_norm.weight", shape: [anchorWidth], initial: .filled(1))
        // With rotary embeddings, q and k get a bias that starts as a shared per-head vector u:
        // uᵀ R(t − s) u peaks at t = s, so every bridge starts out reading the augment state of
        // its own token (the two models are aligned token by token) and learns from there.
        let alignment = rotary ? Self.alignmentBias(headDim: anchorWidth / heads, heads: heads) : nil
        query = Linear(weight: try w.weight("\(prefix).q_proj.weight", shape: square, initial: .normal(std: std)),
                       bias: try alignment.map { try w.weight("\(prefix).q_proj.bias", shape: [anchorWidth], initial: .values($0)) })
        key = Linear(weight: try w.weight("\(prefix).k_proj.weight", shape: square, initial: .normal(std: std)),
                     bias: try alignment.map { try w.weight("\(prefix).k_proj.bias", shape: [anchorWidth], initial: .values($0)) })
        value = try Linear("\(prefix).v_proj", inFeatures: anchorWidth, outFeatures: anchorWidth, bias: false, std: std, weights: &w)
        output = Linear(weight: try w.weight("\(prefix).o_proj.weight", shape: square, initial: .zeros))
        gate = Linear(weight: try w.weight("\(prefix).gate.weight", shape: [1, anchorWidth], initial: .zeros),
                      bias: try w.weight("\(prefix).gate.bias", shape: [1], initial: .zeros))
        gateFromAugment = Linear(weight: try w.weight("\(prefix).gate_augment.weight", shape: [1, anchorWidth], initial: .zeros))
        gateFromConfidence = confidence
            ? Linear(weight: try w.weight("\(prefix).gate_confidence.weight", shape: [1, 2], initial: .values(Self.confidenceStart))) : nil
        gateFromFamiliarity = familiarity
            ? Linear(weight: try w.weight("\(prefix).gate_familiarity.weight", shape: [1, 2], initial: .values(Self.familiarityStart)))
            : nil
        unitScale = Tensor(filling: 1, shape: [anchorWidth])
    }

    /// Where the confidence weights start: every nat of entropy lowers the gate's logit by 2, and
    /// every nat above the surest expert by 8 more (nearly: only the surest expert speaks). Gates
    /// that train for a few hundred steps (Adam moves a weight by about the learning rate per
    /// step) could not find weights this large from zero (measured on the knowledge suite,
    /// README); output projections still start at zero, so a fresh composition still computes
    /// exactly what its anchor computes.
    static let confidenceStart: [Float] = [-2, -8]

    /// Where the familiarity weights start: every nat of recent surprisal and every nat of
    /// surprisal so far beyond the least surprised expert lower the gate's logit by 1 (for the
    /// same reason as `confidenceStart`).
    static let familiarityStart: [Float] = [-1, -1]

    /// Per-head bias u (repeated over heads) on the highest rotary frequencies, scaled so that
    /// the attention logit of the aligned position exceeds every other position's (up to 256
    /// back) by `gap` at initialisation.
    static func alignmentBias(headDim: Int, heads: Int, pairs: Int = 4, gap: Double = 6) -> [Float] {
        let half = headDim / 2
        let used = min(pairs, half)
        let rotary = RotaryEmbedding(headDim: headDim, theta: 10_000)
        func score(_ delta: Int) -> Double {
            (0..<used).reduce(0) { $0 + 2 * cos(Double(delta) * Double(rotary.inverseFrequencies[$1])) }
        }
        let margin = score(0) - (1...256).map(score).max()!
        // logit = c² · score / sqrt(headDim)
        let c = (gap * Double(headDim).squareRoot() / margin).squareRoot()
        var u = [Float](repeating: 0, count: headDim)
        for i in 0..<used {
            u[i] = Float(c)
            u[i + half] = Float(c)
        }
        return Array((0..<heads).map { _ in u }.joined())
    }

    /// The names of a bridge's parts, as its parameter names use them (`<prefix>.<part>.weight`).
    public static let partNames = ["proj", "query_norm", "key_norm", "q_proj", "k_proj", "v_proj", "o_proj", "gate", "gate_augment", "gate_confidence",
                                    "gate_familiarity"]

    /// Whether a parameter name from `parameters` names one of these parts
    /// (`...connections.0.o_proj.weight` is part `o_proj`).
    static func names(_ name: String, oneOf parts: Set<String>) -> Bool {
        parts.contains(String(name.split(separator: ".").dropLast().last ?? ""))
    }

    var anchorWidth: Int { queryNorm.count }
    var headDim: Int { anchorWidth / heads }

    func parameters(_ prefix: String) -> NamedParameters {
        projection.parameters("\(prefix).proj") + [("\(prefix).query_norm.weight", queryNorm), ("\(prefix).key_norm.weight", keyNorm)]
            + query.parameters("\(prefix).q_proj") + key.parameters("\(prefix).k_proj")
            + value.parameters("\(prefix).v_proj") + output.parameters("\(prefix).o_proj")
            + gate.parameters("\(prefix).gate") + gateFromAugment.parameters("\(prefix).gate_augment")
            + (gateFromConfidence?.parameters("\(prefix).gate_confidence") ?? [])
            + (gateFromFamiliarity?.parameters("\(prefix).gate_familiarity") ?? [])
    }

    /// Keys and values `(B, S, H, hd)` from augment states `(B, S, D_A)` at positions from `start`.
    func keysValues(_ augmentStates: Tensor, startPosition start: Int = 0) -> (keys: Tensor, values: Tensor) {
        let (b, s) = (augmentStates.shape[0], augmentStates.shape[1])
        let a = projection(augmentStates).rmsNorm(weight: keyNorm, eps: Self.normEps)  // (B, S, D_B)
        var k = key(a).reshaped([b, s, heads, headDim])
        if let rotary { k = k.rope(rotary, startPosition: start) }
        return (k, value(a).reshaped([b, s, heads, headDim]))
    }

    /// Queries `(B, T, H, hd)` and normalised anchor states `(B, T, D_B)` at positions from `start`.
    private func queries(_ anchorStates: Tensor, startPosition start: Int) -> (query: Tensor, normalized: Tensor) {
        let (b, t) = (anchorStates.shape[0], anchorStates.shape[1])
        let h = anchorStates.rmsNorm(weight: queryNorm, eps: Self.normEps)
        var q = query(h).reshaped([b, t, heads, headDim])
        if let rotary { q = q.rope(rotary, startPosition: start) }
        return (q, h)
    }

    /// `stream + g ⊙ W_o z` and the gate `(B, T, 1)` from the normalised anchor states and z
    /// `(B, T, D_B)`, and what the gate reads about the augment.
    private func gated(_ h: Tensor, _ z: Tensor, signals: GateSignals, stream: Tensor) -> (stream: Tensor, gate: Tensor) {
        var logit = gate(h).adding(gateFromAugment(z.rmsNorm(weight: unitScale, eps: Self.normEps)))
        if let gateFromConfidence {
            guard let confidence = signals.confidence else { preconditionFailure("a confidence-gated bridge needs its augment's confidence") }
            logit = logit.adding(gateFromConfidence(confidence))
        }
        if let gateFromFamiliarity {
            guard let familiarity = signals.familiarity else { preconditionFailure("a familiarity-gated bridge needs its augment's familiarity") }
            logit = logit.adding(gateFromFamiliarity(familiarity))
        }
        let g = logit.sigmoid()
        return (stream.adding(output(z), scaledByRow: g), g)
    }

    /// The anchor stream `(B, T, D_B)` with this bridge's gated contribution `g ⊙ y` added, and
    /// the gate `(B, T, 1)`; `anchorStates` is the anchor block output the bridge reads (training path).
    func adding(to stream: Tensor, anchorStates: Tensor, keys: Tensor, values: Tensor,
                signals: GateSignals) -> (stream: Tensor, gate: Tensor) {
        let (b, t) = (anchorStates.shape[0], anchorStates.shape[1])
        let (q, h) = queries(anchorStates, startPosition: 0)
        let attended = Tensor.attention(query: q, key: keys, value: values, causal: true)  // (B, T, H, hd)
        return gated(h, attended.reshaped([b, t, anchorWidth]), signals: signals, stream: stream)
    }

    /// The same for new anchor positions, attending over cached keys/values (inference).
    func cachedAdding(to stream: Tensor, anchorStates: Tensor, cache: BridgeCache,
                      signals: GateSignals) -> (stream: Tensor, gate: Tensor) {
        let (b, t) = (anchorStates.shape[0], anchorStates.shape[1])
        let (q, h) = queries(anchorStates, startPosition: cache.length)
        let attended = cache.attention(query: q)
        return gated(h, attended.reshaped([b, t, anchorWidth]), signals: signals, stream: stream)
    }
}

/// What a gate reads about its augment besides the two models' states, `(B, T, 2)` each; nil
/// where the composition's gates do not read it.
struct GateSignals {
    /// The augment's prediction entropy and its excess over the surest augment's.
    var confidence: Tensor?
    /// The augment's recent surprisal and its surprisal so far beyond the least surprised augment's.
    var familiarity: Tensor?
}
