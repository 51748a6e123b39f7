import CALMModels
import CALMTensor
import Testing

@Suite("Incremental decoding and sampling")
struct DecodingTests {
    static let configs: [TransformerConfig] = [
        .llama(vocabSize: 17, hiddenSize: 24, numLayers: 3, numHeads: 4, numKVHeads: 2, intermediateSize: 40, maxPositions: 32),
        .gpt2(vocabSize: 17, hiddenSize: 24, numLayers: 2, numHeads: 3, maxPositions: 32),
    ]

    @Test(arguments: configs)
    func cachedDecodingEqualsFullRecompute(config: TransformerConfig) throws {
        let model = try TransformerLM(config: config, seed: 7)
        model.setTrainable(false)
        let sequence = [1, 5, 9, 2, 14, 3, 3, 8, 11, 0]
        let full = model.forward(TokenBatch(sequence)).logits!  // (1, T, V)
        // Feed a 4-token prompt, then one token at a time.
        let cache = model.makeCache()
        var pieces = [model.forward(TokenBatch(Array(sequence[0..<4])), cache: cache).logits!.data]
        for t in 4..<sequence.count {
            pieces.append(model.forward(TokenBatch([sequence[t]]), cache: cache).logits!.data)
        }
        let incremental = pieces.flatMap { $0 }
        let maxError = zip(full.data, incremental).map { abs($0 - $1) }.max()!
        #expect(incremental.count == full.count)
        #expect(maxError < 1e-5)
        #expect(cache.length == sequence.count)
    }

    @Test func hiddenStatesAfterRequestedBlocks() throws {
        let model = try TransformerLM(config: Self.configs[0], seed: 3)
        let tokens = TokenBatch([1, 2, 3, 4])
        let out = model.forward(tokens, collect: [0, 2])
        #expect(Set(out.hidden.keys) == [0, 2])
        #expect(out.hidden[0]!.shape == [1, 4, 24])
        // Running the blocks by hand reproduces the collected states.
        let h0 = model.runBlock(0, model.embed(tokens))
        #expect(h0.data == out.hidden[0]!.data)
        // `upTo` stops early and computes no logits.
        let partial = model.forward(tokens, collect: [1], upTo: 1)
        #expect(partial.logits == nil)
        #expect(partial.hidden[1]!.shape == [1, 4, 24])
    }

    @Test func hookChangesWhatLaterBlocksSee() throws {
        let model = try TransformerLM(config: Self.configs[0], seed: 3)
        let tokens = TokenBatch([1, 2, 3])
        let plain = model.forward(tokens).logits!
        let identity = model.forward(tokens) { _, h in h }.logits!
        #expect(plain.data == identity.data)
        let shifted = model.forward(tokens) { layer, h in layer == 1 ? h.scaled(by: 2) : h }.logits!
        #expect(plain.data != shifted.data)
    }

    @Test func greedyIsArgmaxAndSamplingIsSeeded() throws {
        var greedy = Sampler(.greedy)
        #expect(greedy.sample([0.1, 3, -1, 2.9]) == 1)
        let logits: [Float] = [1, 2, 3, 0.5, 2.5]
        func draws(_ o: SamplingOptions) -> [Int] {
            var s = Sampler(o)
            return (0..<200).map { _ in s.sample(logits) }
        }
        let a = draws(SamplingOptions(temperature: 1, seed: 42)), b = draws(SamplingOptions(temperature: 1, seed: 42))
        #expect(a == b)
        #expect(Set(a).count > 2)
        // top-k 2 keeps only the two largest logits (indices 2 and 4).
        #expect(Set(draws(SamplingOptions(temperature: 1, topK: 2, seed: 1))) == [2, 4])
        // A tiny top-p keeps only the most likely token.
        #expect(Set(draws(SamplingOptions(temperature: 1, topP: 0.01, seed: 1))) == [2])
    }

    @Test func generationStopsAtTheStopTokenAndChecksContext() throws {
        let model = try TransformerLM(config: Self.configs[0], seed: 5)
        let out = try model.generate(prompt: [1, 2], maxTokens: 10)
        #expect(out.count == 10)
        let stop = out[3]
        let stopped = try model.generate(prompt: [1, 2], maxTokens: 10, stopToken: stop)
        #expect(stopped == Array(out.prefix(while: { $0 != stop })))
        #expect(throws: GenerationError.self) { try model.generate(prompt: [1], maxTokens: 40) }
        #expect(throws: GenerationError.self) { try model.generate(prompt: [], maxTokens: 4) }
    }

    @Test func generateMatchesRecomputedGreedyDecoding() throws {
        let model = try TransformerLM(config: Self.configs[1], seed: 9)
        model.setTrainable(false)
        var sequence = [3, 1, 4]
        for _ in 0..<6 {
            let logits = model.forward(TokenBatch(sequence)).logits!.data
            sequence.append(Sampler.argmax(Array(logits.suffix(17))))
        }
        #expect(try model.generate(prompt: [3, 1, 4], maxTokens: 6) == Array(sequence.dropFirst(3)))
    }
}

extension TransformerConfig: CustomTestStringConvertible {
    public var testDescription: String { architecture }
}
