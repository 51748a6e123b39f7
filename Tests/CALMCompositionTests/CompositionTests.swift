import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTraining
import Foundation
import Testing

@Suite("CALM composition")
struct CompositionTests {
    @Test func defaultConnectionRule() {
        let pairs = { (a: Int, b: Int) in ConnectionRule.defaultConnections(anchorLayers: a, augmentLayers: b).map(\.description) }
        #expect(pairs(8, 8) == ["3:3", "7:7"])
        #expect(pairs(12, 8) == ["5:3", "11:7"])
        #expect(pairs(6, 2) == ["5:1"])
        #expect(pairs(4, 16) == ["0:3", "1:7", "2:11", "3:15"])
    }

    @Test func explicitConnectionsAreValidated() throws {
        #expect(try ConnectionRule.parse("1:0, 3:2", anchorLayers: 4, augmentLayers: 3).map(\.description) == ["1:0", "3:2"])
        for (spec, message) in [("4:0", "anchor layer 4"), ("0:3", "augment layer 3"), ("1-2", "malformed"), ("1:x", "malformed"),
                                ("", "malformed"), ("1:1,1:1", "twice")] {
            #expect { try ConnectionRule.parse(spec, anchorLayers: 4, augmentLayers: 3) } throws: { "\($0)".contains(message) }
        }
    }

    @Test func freshCompositionEqualsTheAnchorExactly() throws {
        let anchor = try tinyLM(seed: 1)
        let expertA = try tinyLM(width: 16, layers: 4, heads: 2, seed: 2), expertB = try tinyLM(width: 24, layers: 2, heads: 2, seed: 3)
        let model = try ComposedModel(anchor: anchor, augments: [
            ("a", expertA, [Connection(anchorLayer: 1, augmentLayer: 3)]),
            ("b", expertB, [Connection(anchorLayer: 1, augmentLayer: 0), Connection(anchorLayer: 3, augmentLayer: 1)]),
        ])
        let tokens = TokenBatch(ids: [1, 5, 6, 7, 8, 9, 1, 10, 12, 14, 4, 4], batch: 2, length: 6)
        let composed = withoutGradients { model.forward(tokens) }
        let alone = withoutGradients { anchor.forward(tokens).logits! }
        #expect(composed.data == alone.data)
    }

    @Test func crossAttentionIsCausal() throws {
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            ("a", try tinyLM(width: 16, layers: 4, heads: 2, seed: 2), ConnectionRule.defaultConnections(anchorLayers: 4, augmentLayers: 4)),
        ])
        randomizeOutputs(model)
        let base = [1, 5, 6, 7, 8, 9, 10, 11]
        let logits = withoutGradients { model.forward(TokenBatch(base)) }
        let anchorOnly = withoutGradients { model.anchor.forward(TokenBatch(base)).logits! }
        #expect(logits.data != anchorOnly.data)  // the bridges matter
        let v = model.vocabularySize
        for t in 0..<(base.count - 1) {
            var changed = base
            changed[t + 1] = (changed[t + 1] + 3) % v
            let other = withoutGradients { model.forward(TokenBatch(changed)) }
            #expect(Array(other.data[0..<((t + 1) * v)]) == Array(logits.data[0..<((t + 1) * v)]),
                    "changing token \(t + 1) changed an earlier logit")
            #expect(Array(other.data[((t + 1) * v)...]) != Array(logits.data[((t + 1) * v)...]))
        }
    }

    @Test(arguments: [1, 2])
    func cachedDecodingEqualsFullRecompute(augmentCount: Int) throws {
        var augments: [(name: String, model: any AugmentModel, connections: [Connection])] = [
            ("a", try tinyLM(width: 16, layers: 4, heads: 2, seed: 2), [Connection(anchorLayer: 1, augmentLayer: 1), Connection(anchorLayer: 3, augmentLayer: 3)]),
        ]
        if augmentCount == 2 {
            augments.append(("b", try tinyLM(width: 24, layers: 2, heads: 3, seed: 3, architecture: "gpt2"), [Connection(anchorLayer: 1, augmentLayer: 1)]))
        }
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: augments)
        randomizeOutputs(model)
        let sequence = [1, 5, 6, 7, 20, 9, 10, 11, 4, 3]
        let full = withoutGradients { model.forward(TokenBatch(sequence)) }
        let state = model.startDecoding(capacity: sequence.count)
        var incremental = model.feed(Array(sequence[0..<3]), state: state)
        let v = model.vocabularySize
        var maxError = zip(incremental, full.data[(2 * v)..<(3 * v)]).map { abs($0 - $1) }.max()!
        for t in 3..<sequence.count {
            incremental = model.feed([sequence[t]], state: state)
            maxError = max(maxError, zip(incremental, full.data[(t * v)..<((t + 1) * v)]).map { abs($0 - $1) }.max()!)
        }
        #expect(maxError < 1e-5)
    }

    @Test func onlyBridgesTrainAndFrozenModelsKeepTheirHashes() throws {
        let anchor = try tinyLM(seed: 1), expert = try tinyLM(width: 16, layers: 4, heads: 2, seed: 2)
        let anchorHash = try ContentHash.of(configurationJSON: anchor.configurationJSON, tokenizer: sharedTokenizer, parameters: anchor.parameters)
        let expertHash = try ContentHash.of(configurationJSON: expert.configurationJSON, tokenizer: sharedTokenizer, parameters: expert.parameters)
        let model = try ComposedModel(anchor: anchor, augments: [("e", expert, [Connection(anchorLayer: 2, augmentLayer: 3)])])
        let data = TrainingData(examples: (0..<8).map { i in
            TrainingData.example(prompt: "\(i) +", completion: " \(i)", tokenizer: sharedTokenizer)
        })
        var options = TrainingOptions()
        options.steps = 3
        options.batchSize = 4
        let trainer = try Trainer(parameters: model.parameters, train: data, eval: nil, padID: 0, options: options) {
            model.loss($0, lossMask: $1)
        }
        let before = model.parameters.map(\.tensor.data)
        try trainer.run()
        #expect(model.parameters.map(\.tensor.data) != before)
        #expect(anchor.parameters.allSatisfy { $0.tensor.grad == nil && !$0.tensor.requiresGrad })
        #expect(try ContentHash.of(configurationJSON: anchor.configurationJSON, tokenizer: sharedTokenizer, parameters: anchor.parameters) == anchorHash)
        #expect(try ContentHash.of(configurationJSON: expert.configurationJSON, tokenizer: sharedTokenizer, parameters: expert.parameters) == expertHash)
    }
}

@Suite("Reusing frozen activations")
struct FrozenActivationTests {
    @Test func cachedPrefixAndAugmentStatesGiveIdenticalLossAndGradients() throws {
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            ("a", try tinyLM(width: 16, layers: 4, heads: 2, seed: 2), [Connection(anchorLayer: 1, augmentLayer: 3), Connection(anchorLayer: 3, augmentLayer: 1)]),
        ])
        randomizeOutputs(model)
        let tokens = TokenBatch(ids: [1, 5, 6, 7, 8, 9, 1, 10, 12, 14, 4, 4], batch: 2, length: 6)
        func run(_ loss: () -> Tensor) -> (Float, [[Float]]) {
            for (_, p) in model.parameters { p.zeroGrad() }
            let l = loss()
            l.backward()
            return (l.item, model.parameters.map { $0.tensor.grad ?? [] })
        }
        let (plainLoss, plainGrads) = run { model.loss(tokens, lossMask: nil) }
        let states = model.augmentStates(tokens), prefix = model.frozenAnchorPrefix(tokens)
        #expect(prefix.layer == 1)
        let (cachedLoss, cachedGrads) = run { model.loss(tokens, lossMask: nil, augmentStates: states, anchorPrefix: prefix) }
        #expect(plainLoss == cachedLoss)
        #expect(plainGrads == cachedGrads)
        #expect(plainGrads.allSatisfy { !$0.isEmpty })
    }

    /// The cache fills a batch's missing examples in one right-padded pass; every example keeps
    /// the states it has when run alone, and a later batch reuses them.
    @Test func batchedFillGivesEachExampleItsOwnStates() throws {
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            ("a", try tinyLM(width: 16, layers: 4, heads: 2, seed: 2), [Connection(anchorLayer: 2, augmentLayer: 3)]),
        ])
        let examples = [[1, 5, 6], [1, 7, 8, 9, 10, 4], [1, 12, 14, 4, 4]].map { Example(ids: $0, lossMask: $0.map { _ in true }) }
        let cache = FrozenActivationCache(model: model, examples: examples)
        let (states, prefix) = cache.batch([2, 0, 1], length: 7)
        #expect(cache.misses == 3 && cache.hits == 0)
        for (b, index) in [2, 0, 1].enumerated() {
            let alone = TokenBatch(examples[index].ids)
            let expected = [(model.augmentStates(alone)[0][3]!, states[0][3]!), (model.frozenAnchorPrefix(alone).hidden, prefix.hidden)]
            for (single, batched) in expected {
                let width = single.lastDim, count = examples[index].ids.count
                for i in 0..<(count * width) {
                    #expect(abs(single.data[i] - batched.data[b * 7 * width + i]) < 1e-5)
                }
                // Right padding beyond the example stays zero.
                #expect(batched.data[(b * 7 + count) * width..<((b + 1) * 7 * width)].allSatisfy { $0 == 0 })
            }
        }
        _ = cache.batch([1, 0], length: 6)
        #expect(cache.misses == 3 && cache.hits == 2)
    }
}

@Suite("Composition gradients")
struct CompositionGradientTests {
    @Test(arguments: [true, false])
    func bridgeGradientsMatchFiniteDifferences(rotary: Bool) throws {
        let model = try ComposedModel(anchor: try tinyLM(width: 16, layers: 3, heads: 2, seed: 1), augments: [
            ("a", try tinyLM(width: 12, layers: 2, heads: 2, seed: 2), [Connection(anchorLayer: -1, augmentLayer: 1), Connection(anchorLayer: 1, augmentLayer: 0)]),
        ], rotaryBridges: rotary)
        randomizeOutputs(model)
        expectBridgeGradientsMatchFiniteDifferences(model)
    }
}

@Suite("Gate statistics")
struct GateStatisticsTests {
    /// One batched pass (right-padded examples of different lengths, frozen states from the
    /// activation cache or recomputed) gives the statistics of one forward per example.
    @Test(arguments: [false, true])
    func batchedPassEqualsOneForwardPerExample(cached: Bool) throws {
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            ("a", try tinyLM(width: 16, layers: 4, heads: 2, seed: 2), ConnectionRule.defaultConnections(anchorLayers: 4, augmentLayers: 4)),
        ])
        randomizeOutputs(model)
        var g = SeededGenerator(seed: 4)
        let examples = (0..<40).map { i in
            let ids = (0..<(3 + i % 7)).map { _ in Int(g.next() % UInt64(model.vocabularySize)) }
            return Example(ids: ids, lossMask: ids.map { _ in true })
        }
        let data = TrainingData(examples: examples)
        let recorder = GateRecorder()
        for example in examples { _ = withoutGradients { model.forward(TokenBatch(example.ids), gates: recorder) } }
        let expected = GateStatistics.from(recorder.values, model: model)
        let cache = cached ? FrozenActivationCache(model: model, examples: examples) : nil
        let got = CompositionJob.gateStatistics(model, data: data, cache: cache)
        #expect(got.count == expected.count && !got.isEmpty)
        for (a, b) in zip(got, expected) {
            #expect(a.count == b.count && a.connection == b.connection)
            for (x, y) in [(a.mean, b.mean), (a.std, b.std), (a.min, b.min), (a.max, b.max)] { #expect(abs(x - y) < 1e-5) }
        }
        #expect(expected[0].std > 0)  // the gates vary, so a wrong position mapping would show
    }
}
