import CALMModels
import CALMTensor
import Foundation

/// Starting bridges as copies of the expert's next-token prediction (`calm compose
/// --vocabulary-bridges`).
///
/// An expert and its anchor share one tokenizer, so their output heads name the same tokens. A
/// bridge that reads the expert's last block can start as the linear map that carries the
/// expert's prediction into the anchor's token space: M (anchor width x expert width) with
///
///     E_a diag(γ_a) M ≈ H_e diag(γ_e)      over the tokens the expert stores (least squares, ridge λ)
///
/// where E_a is the anchor's output head, γ_a its final-norm scale, H_e the expert's head and γ_e
/// its final-norm scale. For an expert trained with `calm pretrain --head-from ANCHOR` (its head
/// a projection of the anchor's, see `AnchoredHead`) the map is exact; for a head learned freely it
/// fits only roughly (measured: useless on the real pair, README). The bridge then starts
/// as proj = M, v_proj = I, o_proj = s·I: at its own token (the rotary alignment bias already
/// points each query there) it adds `s · rms(M h)`, whose anchor logits rank tokens as the expert
/// does. `s` makes that addition as large as the anchor's own state there, so the expert's
/// prediction is heard from the first step; training then learns when to trust it (the gate)
/// and refines the map. Learned from held-in facts alone, a free bridge tends to memorise those
/// facts; starting from the map that holds for every token lets it carry facts it never saw.
public enum VocabularyAlignment {
    public struct AlignmentError: Error, CustomStringConvertible {
        public let description: String
        init(_ message: String) { description = message }
    }

    /// Aligns every bridge of `model` (all must read an expert's last block, and every expert
    /// must be a transformer LM). `residualNorm` is the anchor's typical state norm at each
    /// connected layer (see `residualNorms`).
    public static func align(_ model: ComposedModel, residualNorm: [Int: Float], ridge: Double = 1e-3) throws {
        let anchorHead = (model.anchor.head ?? model.anchor.embedding).floatTensor()  // (V, C_a)
        let anchorScale = model.anchor.finalNorm.effectiveScale  // (C_a)
        for slot in model.augments {
            guard let expert = slot.model as? TransformerLM else {
                throw AlignmentError("--vocabulary-bridges: expert \(slot.name) is not a transformer LM (it needs an output head)")
            }
            let last = expert.config.numLayers - 1
            for bridge in slot.bridges where bridge.connection.augmentLayer != last {
                throw AlignmentError("--vocabulary-bridges: expert \(slot.name)'s bridge reads block \(bridge.connection.augmentLayer), "
                                     + "not its last block \(last), whose output is what its head reads")
            }
            let map = try copyMap(anchorHead: anchorHead, anchorScale: anchorScale, expert: expert, ridge: ridge)  // (C_a, C_e)
            for bridge in slot.bridges {
                let width = bridge.anchorWidth
                let norm = residualNorm[bridge.connection.anchorLayer] ?? Float(width).squareRoot()
                // y = g · s · rms(a) with g = sigmoid(0) = 1/2 and |rms(a)| = sqrt(width).
                let s = 2 * norm / Float(width).squareRoot()
                bridge.projection.weight.dense!.data = map
                if let bias = bridge.projection.bias { for i in 0..<bias.count { bias.data[i] = 0 } }
                setIdentity(bridge.value.weight.dense!, scale: 1, width: width)
                setIdentity(bridge.output.weight.dense!, scale: s, width: width)
            }
        }
    }

    /// The anchor's typical state norm at each layer a bridge feeds (before bridges): per
    /// example the median over its positions (a few positions, the first token's "attention
    /// sink", carry norms many times the rest), averaged over `examples`, each run alone.
    public static func residualNorms(_ model: ComposedModel, examples: [[Int]]) -> [Int: Float] {
        let layers = Set(model.augments.flatMap { $0.bridges.map(\.connection.anchorLayer) })
        var total: [Int: Float] = [:]
        for ids in examples {
            let hidden = withoutGradients { model.anchor.forward(TokenBatch(ids), collect: layers, upTo: layers.max()).hidden }
            for (layer, h) in hidden {
                let width = h.lastDim
                let norms = (0..<h.rowCount).map { r in
                    (0..<width).reduce(Float(0)) { $0 + h.data[r * width + $1] * h.data[r * width + $1] }.squareRoot()
                }.sorted()
                total[layer, default: 0] += norms.isEmpty ? 0 : norms[norms.count / 2]
            }
        }
        return total.mapValues { $0 / Float(max(examples.count, 1)) }
    }

    /// M = argmin |E_s diag(γ_a) M − T|² + λ|M|², E_s the anchor's head rows and T the expert's scaled
    /// head rows for the tokens the expert stores: solved from the normal equations by Cholesky, in
    /// Double. (Tokens the expert does not store have no target; asking 0 of them would pull M
    /// towards zero wherever those 47k rows have variance.)
    static func copyMap(anchorHead: Tensor, anchorScale: [Float], expert: TransformerLM, ridge: Double) throws -> [Float] {
        let (vocab, a) = (anchorHead.shape[0], anchorHead.shape[1])
        let expertHead = (expert.head ?? expert.embedding).floatTensor()  // (rows, C_e)
        let e = expertHead.shape[1]
        let expertScale = expert.finalNorm.effectiveScale
        let stored = expert.config.storedTokens ?? Array(0..<expert.config.vocabSize)
        // (expert row, token id) for the stored tokens the anchor's head also has.
        let pairs = stored.enumerated().filter { $0.element < vocab }
        // X = E_s diag(γ_a) (n, C_a); G = Xᵀ X and R = Xᵀ T.
        let x = anchorHead.gatheringRows(pairs.map(\.element))
        for v in 0..<pairs.count { for i in 0..<a { x.data[v * a + i] *= anchorScale[i] } }
        let target = Tensor(shape: [pairs.count, e], data: pairs.flatMap { row, _ in
            (0..<e).map { j in expertHead.data[row * e + j] * expertScale[j] }
        })
        let (g, r) = withoutGradients {
            (x.matmul(x, transposeSelf: true), x.matmul(target, transposeSelf: true))  // (C_a, C_a), (C_a, C_e)
        }
        var gram = g.data.map { Double($0) }
        let rhs = r.data.map { Double($0) }
        let trace = (0..<a).reduce(0.0) { $0 + gram[$1 * a + $1] } / Double(a)
        for i in 0..<a { gram[i * a + i] += ridge * trace }
        guard let solved = choleskySolve(gram, rhs, n: a, columns: e) else {
            throw AlignmentError("--vocabulary-bridges: the anchor's output head is degenerate (no least-squares map)")
        }
        return solved.map { Float($0) }
    }

    /// Solves G X = R for symmetric positive definite G (n x n), R (n x columns); nil if G is not
    /// positive definite.
    static func choleskySolve(_ g: [Double], _ r: [Double], n: Int, columns: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var sum = g[i * n + j]
                for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard sum > 0 else { return nil }
                    l[i * n + i] = sum.squareRoot()
                } else {
                    l[i * n + j] = sum / l[j * n + j]
                }
            }
        }
        var x = r
        for c in 0..<columns {
            for i in 0..<n {  // L y = r
                var sum = x[i * columns + c]
                for k in 0..<i { sum -= l[i * n + k] * x[k * columns + c] }
                x[i * columns + c] = sum / l[i * n + i]
            }
            for i in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ x = y
                var sum = x[i * columns + c]
                for k in (i + 1)..<n { sum -= l[k * n + i] * x[k * columns + c] }
                x[i * columns + c] = sum / l[i * n + i]
            }
        }
        return x
    }

    private static func setIdentity(_ t: Tensor, scale: Float, width: Int) {
        for i in 0..<t.count { t.data[i] = 0 }
        for i in 0..<width { t.data[i * width + i] = scale }
    }
}
