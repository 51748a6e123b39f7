import CALMModels
import CALMTensor

/// A frozen model that also predicts tokens on its own, so `calm generate`, `eval` and
/// `forward --model` run it. An augment need not be one: a composition asks an augment only
/// for hidden states, and for how sure its prediction is when its gates read that
/// (`calm compose --confidence-gates`).
public protocol CausalLanguageModel: AugmentModel, IncrementalDecoder {
    /// Logits `(B, T, vocab)` for a whole batch, without gradients.
    func logits(_ tokens: TokenBatch) -> Tensor
    /// Entropy in nats of the next-token distribution at every position `(B, T, 1)`, from the
    /// output of the last block `(B, T, width)`.
    func predictionEntropy(fromHidden h: Tensor) -> Tensor
}

extension TransformerLM: CausalLanguageModel {
    public func logits(_ tokens: TokenBatch) -> Tensor {
        // A forward pass without `upTo` always computes logits.
        withoutGradients { forward(tokens).logits! }
    }
}
