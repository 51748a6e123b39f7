import CALMModels
import CALMTensor
import Foundation
import Testing

/// A model that stores a subset of its vocabulary (`stored_tokens`) must be exactly the full
/// model restricted to those tokens: same logits on stored columns, -inf elsewhere, a loss that
/// is the softmax over stored tokens only, and gradients that agree with finite differences.
@Suite("Models storing part of their vocabulary")
struct StoredTokensTests {
    static let stored = [1, 3, 4, 7, 9]
    static let full = TransformerConfig.llama(vocabSize: 12, hiddenSize: 8, numLayers: 2, numHeads: 2,
                                              intermediateSize: 16, maxPositions: 16)

    /// Copies a full model's weights, keeping only the stored rows of the embedding and head
    /// plus a zero row for every other token.
    struct StoredRows: WeightSource {
        var weights: [String: Tensor]
        var rows: [Int]

        mutating func weight(_ name: String, shape: [Int], initial: WeightInit) throws -> Tensor {
            let source = weights[name]!
            guard name == "embed.weight" || name == "lm_head.weight" else {
                return Tensor(shape: source.shape, data: source.data, requiresGrad: true)
            }
            let width = source.shape[1]
            let kept = rows.flatMap { Array(source.data[($0 * width)..<(($0 + 1) * width)]) }
            return Tensor(shape: shape, data: kept + [Float](repeating: 0, count: width), requiresGrad: true)
        }
    }

    static func pair() throws -> (full: TransformerLM, subset: TransformerLM) {
        let full = try TransformerLM(config: Self.full, seed: 3)
        var config = Self.full
        config.storedTokens = stored
        var source = StoredRows(weights: Dictionary(uniqueKeysWithValues: full.parameters.map { ($0.name, $0.tensor) }),
                                rows: stored)
        return (full, try TransformerLM(config: config, weights: &source))
    }

    @Test func logitsAreTheFullModelsOnStoredTokensAndMinusInfinityElsewhere() throws {
        let (full, subset) = try Self.pair()
        let tokens = TokenBatch([1, 4, 9, 3, 7])
        let expected = withoutGradients { full.forward(tokens).logits! }  // (1, 5, 12)
        let got = withoutGradients { subset.forward(tokens).logits! }
        #expect(got.shape == [1, 5, 12])
        for row in 0..<5 {
            for id in 0..<12 {
                let value = got.data[row * 12 + id]
                if Self.stored.contains(id) {
                    #expect(abs(value - expected.data[row * 12 + id]) < 1e-5)
                } else {
                    #expect(value == -.infinity)
                }
            }
        }
    }

    @Test func lossIsTheSoftmaxOverStoredTokens() throws {
        let (full, subset) = try Self.pair()
        let tokens = TokenBatch(ids: [1, 4, 9, 3, 7, 3, 3, 1], batch: 2, length: 4)
        let logits = withoutGradients { full.forward(tokens).logits! }  // (2, 4, 12)
        var total: Double = 0
        var count = 0
        for b in 0..<2 {
            for t in 0..<3 {
                let row = Array(logits.data[((b * 4 + t) * 12)..<((b * 4 + t + 1) * 12)])
                let kept = Self.stored.map { Double(row[$0]) }
                let top = kept.max()!
                let lse = top + log(kept.map { exp($0 - top) }.reduce(0, +))
                total += lse - Double(row[tokens.ids[b * 4 + t + 1]])
                count += 1
            }
        }
        let loss = withoutGradients { subset.loss(tokens) }
        #expect(abs(Double(loss.data[0]) - total / Double(count)) < 1e-5)
    }

    /// Surprisal of a given next token is -log of the softmax over stored tokens; a token the
    /// model never predicts, or none (-1), is infinitely surprising.
    @Test func surprisalIsMinusLogTheStoredSoftmax() throws {
        let (full, subset) = try Self.pair()
        let tokens = TokenBatch([1, 4, 9, 3, 7])
        let logits = withoutGradients { full.forward(tokens).logits! }  // (1, 5, 12)
        let hidden = withoutGradients { subset.forward(tokens, collect: [1]).hidden[1]! }  // (1, 5, 8)
        let next = [4, 9, 2, 7, -1]
        let got = subset.predictionSurprisal(fromHidden: hidden, ofNext: next)
        for (t, id) in next.enumerated() where Self.stored.contains(id) {
            let kept = Self.stored.map { Double(logits.data[t * 12 + $0]) }
            let top = kept.max()!
            let lse = top + log(kept.map { exp($0 - top) }.reduce(0, +))
            #expect(abs(Double(got[t]) - (lse - Double(logits.data[t * 12 + id]))) < 1e-5)
        }
        #expect(got[2] == .infinity && got[4] == .infinity)
    }

    @Test func unstoredTokensReadTheLastRowAndCannotBePredicted() throws {
        let (_, subset) = try Self.pair()
        // Tokens 0, 5 and 11 are not stored: all three read the (zero) last row.
        let embedded = subset.embed(TokenBatch([0, 5, 11]))
        #expect(embedded.data.allSatisfy { $0 == 0 })
        let loss = withoutGradients { subset.loss(TokenBatch([1, 5])) }
        #expect(loss.data[0] == .infinity)
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        let (_, subset) = try Self.pair()
        subset.setTrainable(true)
        let tokens = TokenBatch(ids: [1, 4, 9, 3, 0, 3, 7, 1], batch: 2, length: 4)
        let embedding = subset.tokenEmbedding
        subset.loss(tokens).backward()
        let analytic = embedding.grad!
        // Input rows of stored tokens (the head is untied: its rows train through the targets).
        for index in [0, 1, 8 + 3, 16 + 5, 24 + 2, 32 + 7] {
            let saved = embedding.data[index]
            let step: Float = 1e-2
            embedding.data[index] = saved + step
            let up = withoutGradients { subset.loss(tokens).data[0] }
            embedding.data[index] = saved - step
            let down = withoutGradients { subset.loss(tokens).data[0] }
            embedding.data[index] = saved
            let numeric = (up - down) / (2 * step)
            #expect(abs(numeric - analytic[index]) < 2e-3 + 2e-2 * abs(numeric), "embedding[\(index)]")
        }
    }

    @Test func configurationRejectsBadStoredTokens() throws {
        for (bad, words) in [([Int](), "is empty"), ([3, 1], "ascending"), ([1, 1], "ascending"), ([1, 12], "outside")] {
            var config = Self.full
            config.storedTokens = bad
            #expect { try config.validate() } throws: { "\($0)".contains("stored_tokens") && "\($0)".contains(words) }
        }
        var config = Self.full
        config.storedTokens = Self.stored
        #expect(try TransformerConfig.parse(json: config.jsonString()) == config)
        #expect(config.parameterCount == (try TransformerLM(config: config, seed: 0)).parameterCount)
    }
}
