@testable import CALMComposition
import CALMModels
import CALMTensor
import Testing

/// Bridges that start as copies of the expert's next-token prediction: the least-squares map
/// between the two output heads, and a bridge that then ranks tokens as the expert does.
@Suite("Vocabulary-aligned bridges")
struct VocabularyAlignmentTests {
    /// Anchor wider than the vocabulary: the map is exact, so the bridge's own contribution to
    /// the anchor's logits is the expert's logits up to a positive scale per token.
    @Test func alignedBridgeRanksTokensAsTheExpertDoes() throws {
        let vocab = sharedTokenizer.vocabularySize
        let anchor = try tinyLM(width: (vocab + 15) / 8 * 8, layers: 2, heads: 4, seed: 1)
        let expert = try tinyLM(width: 16, layers: 2, heads: 2, seed: 2)
        let model = try ComposedModel(anchor: anchor, augments: [("e", expert, [Connection(anchorLayer: 1, augmentLayer: 1)])])
        try VocabularyAlignment.align(model, residualNorm: [1: 10], ridge: 1e-5)
        let bridge = model.augments[0].bridges[0]
        let tokens = TokenBatch([1, 4, 7, 2, 9, 3])
        let states = expert.hiddenStates(tokens, layers: [1])[1]!  // (1, T, 16)
        let expertLogits = withoutGradients { expert.logits(fromHidden: states) }  // (1, T, V)
        // What the bridge adds at its own token, through the anchor's final norm scale and head.
        let added = withoutGradients { bridge.projection(states).rmsNorm(weight: bridge.keyNorm, eps: 1e-6) }  // (1, T, C)
        let scale = anchor.finalNorm.effectiveScale, width = anchor.config.hiddenSize
        let head = anchor.lmHead ?? anchor.tokenEmbedding
        for t in 0..<tokens.length {
            let fromBridge = (0..<vocab).map { v in
                (0..<width).reduce(Float(0)) { $0 + head.data[v * width + $1] * scale[$1] * added.data[t * width + $1] }
            }
            let fromExpert = Array(expertLogits.data[(t * vocab)..<((t + 1) * vocab)])
            #expect(fromBridge.indices.max { fromBridge[$0] < fromBridge[$1] } == fromExpert.indices.max { fromExpert[$0] < fromExpert[$1] })
            // Proportional: the ratio is one positive number for every token.
            let ratio = fromBridge[0] / fromExpert[0]
            #expect(ratio > 0)
            for v in 0..<vocab { #expect(abs(fromBridge[v] - ratio * fromExpert[v]) < 1e-2 * abs(ratio) * (1 + abs(fromExpert[v]))) }
        }
        // v_proj = I and o_proj = s·I with s = 2 · norm / sqrt(width).
        #expect(bridge.value.weight.dense!.data[0] == 1 && bridge.value.weight.dense!.data[1] == 0)
        #expect(abs(bridge.output.weight.dense!.data[0] - 20 / Float(width).squareRoot()) < 1e-5)
    }

    @Test func bridgesMustReadTheExpertsLastBlock() throws {
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            ("e", try tinyLM(width: 16, layers: 3, heads: 2, seed: 2), [Connection(anchorLayer: 1, augmentLayer: 1)]),
        ])
        #expect { try VocabularyAlignment.align(model, residualNorm: [:]) } throws: { "\($0)".contains("last block 2") }
    }

    @Test func choleskySolvesASmallSystem() throws {
        // [[4, 2], [2, 3]] x = [[2], [5]]  ->  x = [[-0.5], [2]]
        let x = try #require(VocabularyAlignment.choleskySolve([4, 2, 2, 3], [2, 5], n: 2, columns: 1))
        #expect(abs(x[0] + 0.5) < 1e-12 && abs(x[1] - 2) < 1e-12)
        #expect(VocabularyAlignment.choleskySolve([1, 2, 2, 1], [1, 1], n: 2, columns: 1) == nil)
    }
}
