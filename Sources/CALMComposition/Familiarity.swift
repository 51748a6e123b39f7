import CALMModels
import CALMTensor

/// How familiar an augment finds the text it has read (`calm compose --familiarity-gates`), from
/// its surprisal at every token, s_t = min(-log p_A(x_t | x_<t), cap), with s_0 = 0 (nothing
/// predicted the first token):
///
/// ```
/// r_t = λ r_(t-1) + (1 - λ) s_t       recent surprisal: high on text unlike the augment's own
///                                     (r_t = r_(t-1) at a token it never predicts)
/// c_t = c_(t-1) + s_t                 surprisal so far
/// F_A = (r_(t-1), c_t - min_A' c_t)   (B, T, 2); the second is 0 for the augment most at home
/// ```
/// The gate reads recent surprisal one token late, so the token just fed does not count yet: the
/// line break after a chat turn's `assistant` surprises every expert, and a gate reading r_t at
/// that position, where the answer's first word is predicted, learned to stay shut there
/// (README: 67.1% of held-out questions with r_t, 84.7% with r_(t-1), perplexity unchanged).
/// Entropy (confidence gates) says how sure an expert is of the next token, and an expert can be
/// sure and wrong: one that knows only invented countries confidently names one for any country.
/// Surprisal says whether it predicted the text it actually read: the expert that knows a country
/// found its name unsurprising and the other did not, which every later position still sees,
/// the answer's included; on general text an expert of a narrow domain is surprised throughout.
/// A token the expert never predicts (outside its stored vocabulary: chat markup, another
/// expert's names) adds `cap` nats to c and leaves r as it was, so r follows how well the expert
/// predicts the tokens it can predict at all (the chat markup just before an answer is outside
/// every expert's vocabulary; README has both variants measured).
enum Familiarity {
    static let cap: Float = 10
    static let decay: Float = 0.5

    /// An augment's (r, c): as running values, both after a position; as `advance` returns them,
    /// what a gate reads there (r before the position's token, c after it).
    struct Reading {
        var recent: Float = 0
        var total: Float = 0
    }

    /// What the gates read at each position of one sequence with surprisal `s` (uncapped),
    /// continuing `running`: (r_(t-1), c_t), recent surprisal as it stood before this token.
    static func advance(_ running: inout Reading, surprisal s: [Float]) -> [Reading] {
        s.map { raw in
            let s = min(raw, cap)
            let before = running.recent
            if raw.isFinite { running.recent = decay * running.recent + (1 - decay) * s }
            running.total += s
            return Reading(recent: before, total: running.total)
        }
    }

    /// (r, c) at every position `(B · T)` of a whole batch, from the augment's last-block output
    /// `(B, T, C)`: row (b, t) predicts token (b, t + 1).
    static func read(_ tokens: TokenBatch, lastHidden h: Tensor, predictor: any CausalLanguageModel) -> [Reading] {
        let (b, t) = (tokens.batch, tokens.length)
        let next = (0..<(b * t)).map { r in r % t == t - 1 ? -1 : tokens.ids[r + 1] }
        let predicted = predictor.predictionSurprisal(fromHidden: h, ofNext: next)  // (B · T)
        return (0..<b).flatMap { row -> [Reading] in
            var running = Reading()
            let start = row * t
            return advance(&running, surprisal: [0] + predicted[start..<(start + t - 1)])
        }
    }

    /// Each augment's features `(B, T, 2)` from its (r, c) at the same positions; nil stays nil.
    static func features(_ values: [[Reading]?], shape: [Int]) -> [Tensor?] {
        ComposedModel.pairsWithExcess(own: values.map { $0?.map(\.recent) }, compared: values.map { $0?.map(\.total) }, shape: shape)
    }
}

/// One augment's familiarity over a decoded sequence: its running values and the prediction of
/// its newest position, which the next token fed will be scored against.
final class FamiliarityTracker {
    private var running = Familiarity.Reading()
    /// The augment's last-block output at the newest position `(1, 1, C)` (nil before any token).
    private var newestHidden: Tensor?
    /// (r, c) at the positions of the latest `read`.
    private(set) var newest: [Familiarity.Reading] = []

    /// Scores `tokens` against the augment's predictions, given its last-block output for them `(1, T, C)`.
    func read(_ tokens: [Int], lastHidden h: Tensor, predictor: any CausalLanguageModel) {
        let t = tokens.count
        // One head pass: the previous newest row predicts tokens[0], row i of h predicts tokens[i + 1].
        let surprisal: [Float]
        if let newestHidden {
            surprisal = Array(predictor.predictionSurprisal(fromHidden: Tensor.concatenate([newestHidden, h], axis: 1),
                                                            ofNext: tokens + [-1]).dropLast())
        } else {
            surprisal = [0] + predictor.predictionSurprisal(fromHidden: h, ofNext: Array(tokens.dropFirst()) + [-1]).dropLast()
        }
        newest = Familiarity.advance(&running, surprisal: surprisal)
        newestHidden = h.sliced(axis: 1, (t - 1)..<t)
    }
}
