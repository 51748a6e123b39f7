import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTraining
import Foundation
import Testing

/// The toy recurrent augment: block widths 12, 10, 6 over an 8-wide embedding, so connected
/// blocks have different widths from each other and from every transformer in these tests.
func toyLM(seed: UInt64 = 2, decays: [Float] = [0.5, 0.8, 0.95]) throws -> ExponentialMovingAverageLM {
    try ExponentialMovingAverageLM(
        config: EMAConfig(vocabSize: sharedTokenizer.vocabularySize, embeddingWidth: 8, widths: [12, 10, 6], decays: decays),
        seed: seed)
}

/// Largest absolute difference between two equally long float sequences.
func maxAbsDifference<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B) -> Float {
    precondition(a.count == b.count, "comparing \(a.count) values with \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

func contentHash(_ model: any AugmentModel) throws -> String {
    try ContentHash.of(configurationJSON: model.configurationJSON, tokenizer: sharedTokenizer, parameters: model.parameters)
}

/// A second, non-transformer `AugmentModel` going through every step a transformer expert does:
/// registration, loading, composition, training, saving and cached decoding.
@Suite("A recurrent toy augment")
struct ToyAugmentTests {
    static let sequences = [[1, 5, 6, 7, 20, 9, 10, 11, 4, 3], [2, 8, 8, 13, 1, 0, 17, 5, 6, 9]]

    // MARK: (a) the toy model on its own

    @Test func incrementalDecodingEqualsTheFullForward() throws {
        let model = try toyLM()
        let all = Set(0..<model.layerCount)
        let T = Self.sequences[0].count
        // Both sequences in one batch: each row must be computed from its own tokens only.
        let full = model.hiddenStates(TokenBatch(ids: Self.sequences.flatMap { $0 }, batch: 2, length: T), layers: all)
        for b in all { #expect(full[b]!.shape == [2, T, model.outputWidth(ofLayer: b)]) }
        for (row, sequence) in Self.sequences.enumerated() {
            let decoder = model.makeDecoder(capacity: T)
            var start = 0
            // Uneven chunks: a prompt, single tokens and a pair all go through the same state.
            for chunk in [3, 1, 1, 2, 1, 2] {
                let piece = decoder.hiddenStates(TokenBatch(Array(sequence[start..<(start + chunk)])), layers: all)
                for b in all {
                    let C = model.outputWidth(ofLayer: b)
                    #expect(piece[b]!.shape == [1, chunk, C])  // (1, chunk, C_b)
                    let expected = full[b]!.data[((row * T + start) * C)..<((row * T + start + chunk) * C)]
                    let error = maxAbsDifference(piece[b]!.data, expected)
                    #expect(error < 1e-5, "sequence \(row), block \(b), positions \(start)..<\(start + chunk): \(error)")
                }
                start += chunk
            }
            #expect(start == T)
        }
    }

    /// Equal paths would also agree if the state did nothing (a per-token model): the output
    /// at the last position must depend on the first token, and no output on a later token.
    /// With every decay 0 the model is exactly such a per-token model, and the same check
    /// must then see no dependence, so the check itself can tell the two apart.
    @Test(arguments: [false, true])
    func theStateCarriesEarlierTokensAndNothingLater(memoryless: Bool) throws {
        let model = memoryless ? try toyLM(decays: [0, 0, 0]) : try toyLM()
        let all = Set(0..<model.layerCount)
        let base = Self.sequences[0], T = base.count
        let reference = model.hiddenStates(TokenBatch(base), layers: all)
        var firstChanged = base
        firstChanged[0] = (firstChanged[0] + 3) % sharedTokenizer.vocabularySize
        let changedFirst = model.hiddenStates(TokenBatch(firstChanged), layers: all)
        var lastChanged = base
        lastChanged[T - 1] = (lastChanged[T - 1] + 3) % sharedTokenizer.vocabularySize
        let changedLast = model.hiddenStates(TokenBatch(lastChanged), layers: all)
        for b in all {
            let C = model.outputWidth(ofLayer: b)
            let lastRow = (T - 1) * C..<T * C
            let trace = maxAbsDifference(reference[b]!.data[lastRow], changedFirst[b]!.data[lastRow])
            if memoryless {
                #expect(trace == 0, "block \(b)")
            } else {
                // Decays of 0.5 to 0.95 over 9 steps still leave a measurable trace of token 0.
                #expect(trace > 1e-4, "block \(b)")
            }
            #expect(Array(reference[b]!.data[..<((T - 1) * C)]) == Array(changedLast[b]!.data[..<((T - 1) * C)]), "block \(b)")
        }
    }

    // MARK: (b) checkpoint, runtime and expert registry

    @Test func savesRegistersAndLoadsBackIdentically() throws {
        try ExponentialMovingAverageLM.registerRuntime()
        #expect(ArchitectureRegistry.runtime(serving: "ema-lm")?.name == "ema")
        let dir = try makeTemporaryDirectory()
        let model = try toyLM(seed: 4)
        let hash = try model.save(tokenizer: sharedTokenizer, to: "\(dir)/toy.h5")
        #expect(hash == (try contentHash(model)))

        let registry = ExpertRegistry(directory: "\(dir)/experts")
        let entry = try registry.register(file: "\(dir)/toy.h5", name: "toy", domain: "toy-domain")
        #expect(entry.architecture == "ema-lm")
        #expect(entry.contentHash == hash)
        // 8·V embedding + per block two (out, in) matrices and a bias.
        let V = sharedTokenizer.vocabularySize
        #expect(entry.parameterCount == 8 * V + (2 * 12 * 8 + 12) + (2 * 10 * 12 + 10) + (2 * 6 * 10 + 6))
        #expect(entry.parameterCount == model.parameterCount)

        let (_, loaded) = try registry.load("toy")
        let reloaded = try #require(loaded.model as? ExponentialMovingAverageLM)
        #expect(reloaded.config == model.config)
        #expect(loaded.architecture == "ema-lm")
        #expect(try ArchitectureRegistry.recomputedHash(loaded) == hash)
        #expect(try registry.verify(["toy"]).allSatisfy(\.ok))
        #expect(reloaded.parameters.allSatisfy { !$0.tensor.requiresGrad })  // loaded frozen
        let tokens = TokenBatch(ids: Self.sequences.flatMap { $0 }, batch: 2, length: Self.sequences[0].count)
        let layers = Set(0..<model.layerCount)
        let before = model.hiddenStates(tokens, layers: layers), after = reloaded.hiddenStates(tokens, layers: layers)
        for b in layers { #expect(after[b]!.data == before[b]!.data, "block \(b)") }
    }

    @Test func aCheckpointWithAnotherModelsTensorsIsRefused() throws {
        try ExponentialMovingAverageLM.registerRuntime()
        let dir = try makeTemporaryDirectory()
        // The same tensors under a config that expects a fourth block: strict loading must
        // name the missing tensor rather than build a model with a block left uninitialised.
        let model = try toyLM()
        var deeper = model.config
        deeper.widths.append(4)
        deeper.decays.append(0.5)
        try model.save(tokenizer: sharedTokenizer, to: "\(dir)/toy.h5") { [deeper] file in
            try file.setAttribute("config", try deeper.jsonString())
        }
        #expect { try ArchitectureRegistry.load("\(dir)/toy.h5") } throws: { "\($0)".contains("missing tensor blocks.3.") }
        // And a config the toy cannot run is refused with the reason, not a crash.
        var unstable = model.config
        unstable.decays[1] = 1.5
        try model.save(tokenizer: sharedTokenizer, to: "\(dir)/bad.h5") { [unstable] file in
            try file.setAttribute("config", try unstable.jsonString())
        }
        #expect { try ArchitectureRegistry.load("\(dir)/bad.h5") } throws: { "\($0)".contains("one decay in [0, 1)") }
    }

    // MARK: (c) composition and training

    static func augments(_ toy: ExponentialMovingAverageLM, withTransformer: Bool) throws
        -> [(name: String, model: any AugmentModel, connections: [Connection])] {
        var augments: [(name: String, model: any AugmentModel, connections: [Connection])] = [
            ("toy", toy, [Connection(anchorLayer: 1, augmentLayer: 0), Connection(anchorLayer: 3, augmentLayer: 2)]),
        ]
        if withTransformer {
            augments.append(("tf", try tinyLM(width: 16, layers: 2, heads: 2, seed: 3), [Connection(anchorLayer: 2, augmentLayer: 1)]))
        }
        return augments
    }

    @Test(arguments: [false, true])
    func onlyBridgesTrainAndTheToyKeepsItsWeights(withTransformer: Bool) throws {
        let anchor = try tinyLM(seed: 1), toy = try toyLM()
        let anchorHash = try contentHash(anchor), toyHash = try contentHash(toy)
        let toyWeights = toy.parameters.map(\.tensor.data)
        let augments = try Self.augments(toy, withTransformer: withTransformer)
        let otherHashes = try augments.dropFirst().map { try contentHash($0.model) }
        let model = try ComposedModel(anchor: anchor, augments: augments, seed: 1)
        let data = TrainingData(examples: (0..<8).map { i in
            TrainingData.example(prompt: "\(i) +", completion: " \(i)", tokenizer: sharedTokenizer)
        })
        var options = TrainingOptions()
        options.steps = 12
        options.batchSize = 8
        options.learningRate = 1e-2
        options.warmupSteps = 2
        let trainer = try Trainer(parameters: model.parameters, train: data, eval: nil, padID: 0, options: options) {
            model.loss($0, lossMask: $1)
        }
        let lossBefore = trainer.evaluate(data)
        let bridgesBefore = model.parameters.map(\.tensor.data)
        try trainer.run()
        let lossAfter = trainer.evaluate(data)
        #expect(lossAfter < lossBefore - 0.2, "loss \(lossBefore) -> \(lossAfter)")
        // Every augment's bridges learned, the toy's included.
        for i in augments.indices {
            let prefix = "augments.\(i)."
            let changed = zip(model.parameters, bridgesBefore).contains { $0.name.hasPrefix(prefix) && $0.tensor.data != $1 }
            #expect(changed, "no bridge of augment \(augments[i].name) changed")
        }
        #expect(toy.parameters.map(\.tensor.data) == toyWeights)
        #expect(toy.parameters.allSatisfy { $0.tensor.grad == nil && !$0.tensor.requiresGrad })
        #expect(try contentHash(toy) == toyHash)
        #expect(try contentHash(anchor) == anchorHash)
        #expect(try augments.dropFirst().map { try contentHash($0.model) } == otherHashes)
    }

    /// Gradients flow back through bridges reading toy states of two different widths.
    @Test func bridgeGradientsMatchFiniteDifferences() throws {
        let model = try ComposedModel(anchor: try tinyLM(width: 16, layers: 3, heads: 2, seed: 1), augments: [
            ("toy", try toyLM(), [Connection(anchorLayer: 0, augmentLayer: 1), Connection(anchorLayer: 2, augmentLayer: 2)]),
        ])
        randomizeOutputs(model)
        expectBridgeGradientsMatchFiniteDifferences(model)
    }

    // MARK: (d) composition checkpoint

    @Test func compositionWithTheToySavesAndLoadsThroughTheRegistry() throws {
        try ExponentialMovingAverageLM.registerRuntime()
        let dir = try makeTemporaryDirectory()
        let anchorPath = "\(dir)/anchor.h5"
        let anchorHash = try ModelCheckpoint.save(model: try tinyLM(seed: 1), tokenizer: sharedTokenizer, to: anchorPath)
        let registry = ExpertRegistry(directory: "\(dir)/experts")
        try toyLM().save(tokenizer: sharedTokenizer, to: "\(dir)/toy.h5")
        try ModelCheckpoint.save(model: try tinyLM(width: 16, layers: 2, heads: 2, seed: 3), tokenizer: sharedTokenizer, to: "\(dir)/tf.h5")
        try registry.register(file: "\(dir)/toy.h5", name: "toy", domain: "d")
        try registry.register(file: "\(dir)/tf.h5", name: "tf", domain: "d")
        let (toyEntry, toy) = try registry.load("toy"), (tfEntry, tf) = try registry.load("tf")
        let toyConnections = [Connection(anchorLayer: 1, augmentLayer: 0), Connection(anchorLayer: 3, augmentLayer: 2)]
        let tfConnections = [Connection(anchorLayer: 2, augmentLayer: 1)]
        let model = try ComposedModel(anchor: try ModelCheckpoint.load(anchorPath).model,
                                      augments: [("toy", toy.model, toyConnections), ("tf", tf.model, tfConnections)])
        randomizeOutputs(model)  // fresh bridges add nothing; these make the augments count
        let compPath = "\(dir)/comp.h5"
        let spec = CompositionSpec(
            anchor: .init(path: "anchor.h5", contentHash: anchorHash, architecture: "llama"),
            augments: [.init(name: "toy", contentHash: toyEntry.contentHash, architecture: "ema-lm", connections: toyConnections),
                       .init(name: "tf", contentHash: tfEntry.contentHash, architecture: "llama", connections: tfConnections)],
            registry: CompositionCheckpoint.reference(to: registry.directory, from: compPath), heads: model.heads, seed: 0)
        try CompositionCheckpoint.save(model, spec: spec, tokenizer: sharedTokenizer, to: compPath)

        let tokens = TokenBatch(ids: Self.sequences.flatMap { $0 }, batch: 2, length: Self.sequences[0].count)
        let expected = withoutGradients { model.forward(tokens).data }
        let anchorAlone = withoutGradients { model.anchor.forward(tokens).logits!.data }
        #expect(maxAbsDifference(expected, anchorAlone) > 1e-3)  // the comparison below is not the anchor's
        // With the registry given explicitly, and found only through the path the spec recorded.
        for resolver in [ModelResolver(registryOverride: registry.directory), ModelResolver()] {
            let reloaded = try CompositionCheckpoint.load(compPath, resolver: resolver)
            #expect(reloaded.spec.augments.map(\.architecture) == ["ema-lm", "llama"])
            #expect(reloaded.model.augments[0].model is ExponentialMovingAverageLM)
            #expect(reloaded.model.augments.map { $0.bridges.map(\.connection) } == [toyConnections, tfConnections])
            #expect(reloaded.model.parameters.map(\.tensor.data) == model.parameters.map(\.tensor.data))
            #expect(withoutGradients { reloaded.model.forward(tokens).data } == expected)
        }
    }

    // MARK: (e) cached composed decoding

    @Test(arguments: [false, true])
    func cachedComposedDecodingEqualsFullRecompute(withTransformer: Bool) throws {
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: try Self.augments(try toyLM(), withTransformer: withTransformer))
        randomizeOutputs(model)
        let sequence = Self.sequences[0]
        let full = withoutGradients { model.forward(TokenBatch(sequence)) }  // (1, T, V)
        let anchorAlone = withoutGradients { model.anchor.forward(TokenBatch(sequence)).logits! }
        #expect(maxAbsDifference(full.data, anchorAlone.data) > 1e-3)  // the bridges matter
        let v = model.vocabularySize
        let state = model.startDecoding(capacity: sequence.count)
        var logits = model.feed(Array(sequence[0..<3]), state: state)
        var maxError = maxAbsDifference(logits, full.data[(2 * v)..<(3 * v)])
        for t in 3..<sequence.count {
            logits = model.feed([sequence[t]], state: state)
            maxError = max(maxError, maxAbsDifference(logits, full.data[(t * v)..<((t + 1) * v)]))
        }
        #expect(maxError < 1e-5)
    }

    // MARK: (f) cost report

    @Test func costReportCountsTheRecurrentStateWhichDoesNotGrowWithContext() throws {
        let toy = try toyLM()
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: try Self.augments(toy, withTransformer: true))
        // One running average per block, over its input: widths 8 (embedding), 12 and 10.
        let stateBytes = (8 + 12 + 10) * MemoryLayout<Float>.size
        // The estimate matches what a decoder actually holds after decoding.
        let decoder = toy.makeDecoder(capacity: 40)
        _ = decoder.hiddenStates(TokenBatch(Array(repeating: 5, count: 40)), layers: [2])
        #expect(decoder.states.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size == stateBytes)

        let short = CostReport(model: model, contextLength: 16), long = CostReport(model: model, contextLength: 32)
        #expect(short.residentBytes["augment toy decoding state"] == stateBytes)
        #expect(long.residentBytes["augment toy decoding state"] == stateBytes)
        // The transformer expert's KV cache, unlike the toy's state, doubles with the context.
        let tfState = try #require(short.residentBytes["augment tf decoding state"])
        #expect(tfState > 0 && long.residentBytes["augment tf decoding state"] == 2 * tfState)
        #expect(short.augmentParameters["toy"] == toy.parameterCount)
        #expect(short.residentBytes["augment toy weights"] == toy.parameterCount * MemoryLayout<Float>.size)
        // The toy's forward FLOPs (through block 2, the deepest connected) are in the decoding cost.
        let alone = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            ("tf", try tinyLM(width: 16, layers: 2, heads: 2, seed: 3), [Connection(anchorLayer: 2, augmentLayer: 1)]),
        ])
        let withoutToy = CostReport(model: alone, contextLength: 16)
        let toyFLOPs = toy.forwardFLOPsPerToken(throughLayer: 2, span: 16)
        #expect(toyFLOPs == 2 * Double((2 * 12 * 8 + 8) + (2 * 10 * 12 + 12) + (2 * 6 * 10 + 10)))
        #expect(short.composedDecodeFLOPsPerToken - withoutToy.composedDecodeFLOPsPerToken > toyFLOPs)
    }

    /// Every resident-memory line names its part in full, however long the expert's name.
    @Test func costReportNamesEveryPartInFull() throws {
        let name = "an-expert-with-a-long-name"
        let model = try ComposedModel(anchor: try tinyLM(seed: 1), augments: [
            (name, try tinyLM(width: 16, layers: 2, heads: 2, seed: 3), [Connection(anchorLayer: 2, augmentLayer: 1)]),
        ])
        let report = CostReport(model: model, contextLength: 16)
        let lines = report.rendered().split(separator: "\n").map(String.init)
        for (part, _) in report.residentBytes {
            #expect(lines.contains { $0.hasPrefix("    \(part) ") }, "\(part) in \(lines)")
        }
        #expect(report.residentBytes.keys.contains("augment \(name) decoding state"))
    }
}

@Suite("runtime registration")
struct RuntimeRegistrationTests {
    /// A family belongs to one runtime: claiming one another runtime serves is refused.
    @Test func aFamilyHasOneRuntime() {
        #expect { try ArchitectureRegistry.register(runtime: "other", families: ["llama"]) { _, _ in try tinyLM(seed: 0) } } throws: {
            "\($0)".contains("llama already served by runtime \"transformer\"")
        }
        #expect(ArchitectureRegistry.runtime(serving: "llama")?.name == "transformer")
    }
}
