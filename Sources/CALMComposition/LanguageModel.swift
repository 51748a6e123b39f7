import CALMModels
import CALMTensor

/// A frozen model that also predicts tokens on its own, so `calm generate`, `eval` and
/// `forward --model` run it. An augment need not be one: a composition asks an augment only
/// for hidden states, and for how sure its prediction is and how surprised it was by the text when its gates read
/// those (`calm compose --confidence-gates`, `--familiarity-gates`).
public protocol CausalLanguageModel: AugmentModel, IncrementalDecoder {
    /// Logits `(B, T, vocab)` for a whole batch, without gradients.
    func logits(_ tokens: TokenBatch) -> Tensor
    /// Entropy in nats of the next-token distribution at every position `(B, T, 1)`, from the
    /// output of the last block `(B, T, width)`.
    func predictionEntropy(fromHidden h: Tensor) -> Tensor
    /// Surprisal in nats `-log p(next[r])` of a given next token for every row r of the last
    /// block's output `(B, T, width)`; +inf for a token it never predicts or an id of -1.
    func predictionSurprisal(fromHidden h: Tensor, ofNext next: [Int]) -> [Float]
}

extension TransformerLM: CausalLanguageModel {
    public func logits(_ tokens: TokenBatch) -> Tensor {
        // A forward pass without `upTo` always computes logits.
        withoutGradients { forward(tokens).logits! }
    }
}
