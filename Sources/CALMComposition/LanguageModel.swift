import CALMModels
import CALMTensor

/// A frozen model that also predicts tokens on its own, so `calm generate`, `eval` and
/// `forward --model` run it. An augment need not be one: a composition never asks an augment
/// for logits, only for hidden states.
public protocol CausalLanguageModel: AugmentModel, IncrementalDecoder {
    /// Logits `(B, T, vocab)` for a whole batch, without gradients.
    func logits(_ tokens: TokenBatch) -> Tensor
}

extension TransformerLM: CausalLanguageModel {
    public func logits(_ tokens: TokenBatch) -> Tensor {
        // A forward pass without `upTo` always computes logits.
        withoutGradients { forward(tokens).logits! }
    }
}
