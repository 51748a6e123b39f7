@testable import CALMComposition
@testable import CALMModels
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
        let (model, deviation) = try alignedDeviation(anchor: anchor, expert: expert)
        #expect(deviation < 1e-2)
        // v_proj = I and o_proj = s·I with s = 2 · norm / sqrt(width).
        let bridge = model.augments[0].bridges[0], width = anchor.config.hiddenSize
        #expect(bridge.value.weight.dense!.data[0] == 1 && bridge.value.weight.dense!.data[1] == 0)
        #expect(abs(bridge.output.weight.dense!.data[0] - 20 / Float(width).squareRoot()) < 1e-5)
    }

    /// Anchor narrower than the vocabulary (every real pair): a freely learned expert head admits
    /// no exact map, an anchored one (`pretrain --head-from`) does.
    @Test func anchoredExpertHeadMakesTheMapExact() throws {
        let anchor = try tinyLM(width: 16, layers: 2, heads: 4, seed: 1)
        #expect(anchor.config.vocabSize > 16)
        let free = try alignedDeviation(anchor: anchor, expert: try tinyLM(width: 8, layers: 2, heads: 2, seed: 2)).deviation
        #expect(free > 0.05)
        let anchored = try tinyLM(width: 8, layers: 2, heads: 2, seed: 2)
        try AnchoredHead.apply(to: anchored, anchorHead: try #require(anchor.lmHead), seed: 3)
        #expect(try alignedDeviation(anchor: anchor, expert: anchored).deviation < 1e-3)
    }

    @Test func principalDirectionsAreOrthonormalAndFindTheDominantSubspace() throws {
        // Rows in a 3-dimensional subspace of R^10 plus small noise.
        var g = SeededGenerator(seed: 7)
        let basis = Tensor.randomNormal([3, 10], std: 1, generator: &g)
        let coefficients = Tensor.randomNormal([200, 3], std: 1, generator: &g)
        let rows = withoutGradients { coefficients.matmul(basis).adding(Tensor.randomNormal([200, 10], std: 1e-3, generator: &g)) }
        let p = AnchoredHead.principalDirections(of: rows, count: 3, seed: 1)  // (3, 10)
        let gram = withoutGradients { p.matmul(p, transposeOther: true) }
        for i in 0..<3 { for j in 0..<3 { #expect(abs(gram.data[i * 3 + j] - (i == j ? 1 : 0)) < 1e-5) } }
        // Projecting onto P and back keeps each basis vector: the subspace is found.
        let back = withoutGradients { basis.matmul(p, transposeOther: true).matmul(p) }
        for i in 0..<30 { #expect(abs(back.data[i] - basis.data[i]) < 1e-2 * (1 + abs(basis.data[i]))) }
    }

    /// Aligns a one-bridge composition and returns the largest deviation, relative to the
    /// expert's logit scale, between the bridge's contribution to the anchor's logits (through
    /// its final-norm scale and head, at the bridge's own token) and a positive multiple of the
    /// expert's logits.
    private func alignedDeviation(anchor: TransformerLM, expert: TransformerLM) throws -> (model: ComposedModel, deviation: Float) {
        let vocab = anchor.config.vocabSize
        let model = try ComposedModel(anchor: anchor, augments: [("e", expert, [Connection(anchorLayer: 1, augmentLayer: 1)])])
        try VocabularyAlignment.align(model, residualNorm: [1: 10], ridge: 1e-5)
        let bridge = model.augments[0].bridges[0]
        let tokens = TokenBatch([1, 4, 7, 2, 9, 3])
        let states = expert.hiddenStates(tokens, layers: [1])[1]!  // (1, T, C_e)
        let expertLogits = withoutGradients { expert.logits(fromHidden: states) }  // (1, T, V)
        let added = withoutGradients { bridge.projection(states).rmsNorm(weight: bridge.keyNorm, eps: 1e-6) }  // (1, T, C_a)
        let scale = anchor.finalNorm.effectiveScale, width = anchor.config.hiddenSize
        let head = anchor.lmHead ?? anchor.tokenEmbedding
        var worst: Float = 0
        for t in 0..<tokens.length {
            let fromBridge = (0..<vocab).map { v in
                (0..<width).reduce(Float(0)) { $0 + head.data[v * width + $1] * scale[$1] * added.data[t * width + $1] }
            }
            let fromExpert = Array(expertLogits.data[(t * vocab)..<((t + 1) * vocab)])
            // The best positive ratio (least squares), then the worst token's deviation from it.
            let ratio = zip(fromBridge, fromExpert).reduce(0) { $0 + $1.0 * $1.1 } / fromExpert.reduce(0) { $0 + $1 * $1 }
            #expect(ratio > 0)
            let spread = fromExpert.map(abs).max() ?? 1
            for v in 0..<vocab { worst = max(worst, abs(fromBridge[v] / ratio - fromExpert[v]) / spread) }
        }
        return (model, worst)
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
