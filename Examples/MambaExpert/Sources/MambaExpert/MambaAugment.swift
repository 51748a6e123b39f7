import CALMComposition
import CALMModels
import CALMTensor

/// Mamba as a CALM augment: hidden states after any block, a recurrent state in place of a KV
/// cache, costs that do not grow with the context. Nothing in the composition code knows it.
extension MambaLM: CausalLanguageModel {
    public var layerCount: Int { config.numLayers }
    public func outputWidth(ofLayer layer: Int) -> Int { config.hiddenSize }
    /// A recurrent model holds any length: its state has a fixed size.
    public var maxContext: Int { .max }
    public var vocabularySize: Int { config.vocabSize }
    public var parameters: NamedParameters { namedWeights.compactMap { name, w in w.dense.map { (name, $0) } } }
    public var weights: NamedWeights { namedWeights }
    public var configurationJSON: String { (try? config.jsonString()) ?? "" }

    public func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor] {
        guard let last = layers.max() else { return [:] }
        return forward(tokens, state: MambaState(batch: tokens.batch, config: config), collect: layers, upTo: last)
    }

    /// No attention: `span` does not matter.
    public func forwardFLOPsPerToken(throughLayer layer: Int, span: Int) -> Double {
        Double(layer + 1) * config.blockFLOPsPerToken
    }

    /// The recurrent state, the same for any `capacity`.
    public func decodingStateBytes(capacity: Int) -> Int { config.recurrentStateBytes }

    public func makeDecoder(capacity: Int) -> MambaDecoder { MambaDecoder(model: self) }

    // IncrementalDecoder (calm generate / eval with --model): the state is the whole cache.
    public func startDecoding(capacity: Int) -> MambaState { MambaState(batch: 1, config: config) }

    public func predictionEntropy(fromHidden h: Tensor) -> Tensor { logits(fromHidden: h).softmaxEntropy() }
    public func predictionSurprisal(fromHidden h: Tensor, ofNext next: [Int]) -> [Float] {
        logits(fromHidden: h).rowSurprisal(of: next)
    }

    public func feed(_ tokens: [Int], state: MambaState) -> [Float] {
        let batch = TokenBatch(tokens)
        let output = run(batch, state: state, collect: [], upTo: config.numLayers - 1).output  // (1, T, C)
        return logits(fromHidden: output.gatheringRows([tokens.count - 1])).data  // (1, V)
    }
}

/// One sequence being decoded as an augment: each call feeds the new tokens through the blocks
/// up to the deepest one asked for, carrying their convolution and scan states forward.
public final class MambaDecoder: AugmentDecoder {
    let model: MambaLM
    public let state: MambaState

    init(model: MambaLM) {
        self.model = model
        state = MambaState(batch: 1, config: model.config)
    }

    public func hiddenStates(_ tokens: TokenBatch, layers: Set<Int>) -> [Int: Tensor] {
        guard let last = layers.max() else { return [:] }
        return model.forward(tokens, state: state, collect: layers, upTo: last)
    }
}
