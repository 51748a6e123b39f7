import CALMTensor
import Foundation

/// An expert whose output head lies in its anchor's token space (`calm pretrain --head-from`).
///
/// The expert's head row for token t is `P e_t`, where e_t is the anchor's head row for t and
/// P (expert width x anchor width, orthonormal rows) spans the top principal directions of the
/// anchor's rows for the tokens the expert stores. The head stays frozen while the expert trains
/// its blocks, so its logits are always
///
///     h · P e_t = (Pᵀ h) · e_t
///
/// the anchor's head applied to Pᵀ h. A bridge that maps the expert's last state through Pᵀ
/// therefore hands the anchor the expert's prediction for every token, including tokens the
/// composition data never shows (a head learned freely has no such map: a linear map between
/// two independently learned heads fits a few thousand tokens only roughly).
public enum AnchoredHead {
    public struct AnchoredHeadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The weight the expert keeps frozen.
    public static let frozenWeight = "lm_head.weight"

    /// Sets `expert`'s head to the projected anchor rows (the row every unstored token reads gets
    /// zero) and starts its input embedding at the same rows; the embedding may then train.
    /// `anchorHead` is the anchor's output head `(V, C_a)` over the same tokenizer.
    public static func apply(to expert: TransformerLM, anchorHead: Tensor, seed: UInt64) throws {
        let config = expert.config
        let (vocab, anchorWidth, width) = (anchorHead.shape[0], anchorHead.shape[1], config.hiddenSize)
        guard let head = expert.head?.dense else {
            throw AnchoredHeadError(description: "--head-from needs an untied float32 output head (the input embedding keeps training)")
        }
        guard vocab == config.vocabSize else {
            throw AnchoredHeadError(description: "--head-from: the anchor's head has \(vocab) tokens, the expert's tokenizer \(config.vocabSize)")
        }
        guard width <= anchorWidth else {
            throw AnchoredHeadError(description: "--head-from: the expert's width \(width) exceeds the anchor's \(anchorWidth); its head must be a projection of the anchor's")
        }
        let tokens = config.storedTokens ?? Array(0..<vocab)
        let rows = anchorHead.gatheringRows(tokens)  // (n, C_a)
        let directions = principalDirections(of: rows, count: width, seed: seed)  // (C_e, C_a)
        let projected = withoutGradients { rows.matmul(directions, transposeOther: true) }  // (n, C_e)
        let table = expert.tokenEmbedding
        for t in [head, table] {
            for i in 0..<t.count { t.data[i] = 0 }
            for i in 0..<(tokens.count * width) { t.data[i] = projected.data[i] }
        }
    }

    /// `count` orthonormal rows `(count, C)` spanning (approximately) the top principal directions
    /// of `rows` `(n, C)` (uncentred: they keep the dot products the head computes), by subspace
    /// iteration on the second-moment matrix.
    static func principalDirections(of rows: Tensor, count: Int, seed: UInt64, iterations: Int = 40) -> Tensor {
        let c = rows.shape[1]
        let moments = withoutGradients { rows.matmul(rows, transposeSelf: true) }  // (C, C)
        var generator = SeededGenerator(seed: seed)
        var basis = Tensor(shape: [count, c], data: (0..<(count * c)).map { _ in generator.nextNormal() })
        orthonormalizeRows(basis)
        for _ in 0..<iterations {
            basis = withoutGradients { basis.matmul(moments) }  // (count, C); moments is symmetric
            orthonormalizeRows(basis)
        }
        return basis
    }

    /// Modified Gram-Schmidt over the rows of `t` `(k, C)`, in Double.
    static func orthonormalizeRows(_ t: Tensor) {
        let (k, c) = (t.shape[0], t.shape[1])
        var rows = (0..<k).map { r in (0..<c).map { Double(t.data[r * c + $0]) } }
        for i in 0..<k {
            for j in 0..<i {
                let dot = (0..<c).reduce(0.0) { $0 + rows[i][$1] * rows[j][$1] }
                for x in 0..<c { rows[i][x] -= dot * rows[j][x] }
            }
            let norm = rows[i].reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            for x in 0..<c { rows[i][x] = norm > 0 ? rows[i][x] / norm : 0 }
        }
        for r in 0..<k { for x in 0..<c { t.data[r * c + x] = Float(rows[r][x]) } }
    }
}
