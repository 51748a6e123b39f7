import CALMCheckpoint
import CALMComposition
import CALMHuggingFace
import CALMModels
import CALMTensor
import CALMTraining
import Foundation
import MambaExpert
import Testing

/// A transformer anchor (the repository's tiny Hugging Face llama, converted) composed with a
/// Mamba expert, alone and together with a transformer expert, through `CompositionJob`: the
/// path `calm compose` takes.
@Suite("Mamba expert in a composition", .serialized)
struct CompositionTests {
    /// Anchor, Mamba expert and a random transformer expert (all with the anchor's tokenizer),
    /// registered in a scratch registry, and a small composition data set.
    struct Setup {
        let dir: String
        let anchorPath: String
        let registry: ExpertRegistry
        let data: String
        let mamba: MambaLM

        init() throws {
            try MambaCheckpoint.registerRuntime()
            dir = try makeTemporaryDirectory()
            anchorPath = "\(dir)/anchor.h5"
            let anchor = try HuggingFaceConverter.convert(directory: Fixtures.llama, to: anchorPath)
            mamba = try MambaHuggingFace.convert(directory: Fixtures.mamba("mamba-tied"), to: "\(dir)/mamba.h5").model
            let transformer = try TransformerLM(config: .llama(vocabSize: anchor.model.config.vocabSize, hiddenSize: 16, numLayers: 2,
                                                               numHeads: 2, intermediateSize: 32, maxPositions: 64), seed: 3)
            try ModelCheckpoint.save(model: transformer, tokenizer: anchor.tokenizer, to: "\(dir)/tf.h5")
            registry = ExpertRegistry(directory: "\(dir)/experts")
            try registry.register(file: "\(dir)/mamba.h5", name: "mamba", domain: "test")
            try registry.register(file: "\(dir)/tf.h5", name: "tf", domain: "test")
            data = "\(dir)/dc.jsonl"
            let lines = (0..<24).map { i in "{\"prompt\": \"The model reads \(i % 6)\", \"completion\": \" facts \(i % 4)\"}" }
            try lines.joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        }

        func compose(_ experts: [String], output: String) throws -> CompositionJob.Result {
            var options = TrainingOptions()
            options.steps = 4
            options.batchSize = 4
            options.warmupSteps = 1
            options.learningRate = 1e-2
            options.logEvery = 1000
            var job = CompositionJob(anchorPath: anchorPath, experts: experts, registry: registry, dataPath: data,
                                     outputPath: output, options: options)
            job.connectionSpecs = ["mamba": "0:0,1:2", "tf": "1:1"]
            return try job.run()
        }
    }

    @Test(arguments: [["mamba"], ["mamba", "tf"]])
    func trainsSavesLoadsAndDecodesCachedAsRecomputed(_ experts: [String]) throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.dir) }
        let output = "\(setup.dir)/composition.h5"
        let result = try setup.compose(experts, output: output)
        #expect(result.trainer.progress.step == 4)
        #expect(result.trainer.progress.losses.allSatisfy { $0.isFinite })
        // Training moved the bridges away from their initial values.
        var fresh = RandomWeights(seed: result.spec.seed)
        let initial = try CompositionAssembly.assemble(result.spec, anchor: result.model.anchor,
                                                       experts: result.model.augments.map(\.model), weights: &fresh)
        let moved = zip(initial.parameters, result.model.parameters).map { maxDifference($0.tensor.data, $1.tensor.data) }.max() ?? 0
        #expect(moved > 1e-4)

        let loaded = try CompositionCheckpoint.load(output, resolver: ModelResolver(registryOverride: setup.registry.directory))
        #expect(loaded.spec.augments.map(\.architecture) == experts.map { $0 == "mamba" ? "mamba" : "llama" })
        #expect(loaded.model.augments[0].model is MambaLM)
        #expect(loaded.model.parameters.map(\.tensor.data) == result.model.parameters.map(\.tensor.data))
        let sequence = [0, 53, 283, 362, 328, 382, 359, 66, 69, 84, 222, 409]
        #expect(withoutGradients { loaded.model.forward(TokenBatch(sequence)).data }
                == withoutGradients { result.model.forward(TokenBatch(sequence)).data })

        // Larger bridge outputs, so that the augments visibly change every logit compared below.
        var generator = SeededGenerator(seed: 5)
        for (name, tensor) in loaded.model.parameters where name.hasSuffix("o_proj.weight") || name.hasSuffix("gate.weight") {
            for i in 0..<tensor.count { tensor.data[i] = generator.nextNormal() * 0.3 }
        }
        let full = withoutGradients { loaded.model.forward(TokenBatch(sequence)).data }  // (1, T, V)
        let anchorAlone = withoutGradients { loaded.model.anchor.forward(TokenBatch(sequence)).logits?.data ?? [] }
        #expect(maxDifference(full, anchorAlone) > 1e-3)
        let v = loaded.model.vocabularySize
        let state = loaded.model.startDecoding(capacity: sequence.count)
        var logits = loaded.model.feed(Array(sequence[0..<4]), state: state)
        var maxError = maxDifference(logits, Array(full[(3 * v)..<(4 * v)]))
        for t in 4..<sequence.count {
            logits = loaded.model.feed([sequence[t]], state: state)
            maxError = max(maxError, maxDifference(logits, Array(full[(t * v)..<((t + 1) * v)])))
        }
        #expect(maxError < 1e-4, "cached composed decoding differs from recomputation by \(maxError)")
    }

    /// The cost report counts the Mamba expert's recurrent state (fixed size) beside the
    /// transformer expert's KV cache (growing with the context), and the Mamba blocks' FLOPs.
    @Test func costReportCountsTheRecurrentState() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.dir) }
        let result = try setup.compose(["mamba", "tf"], output: "\(setup.dir)/composition.h5")
        let config = setup.mamba.config
        // (E · (K − 1) + E · N) floats per block: 3 blocks of 64 · (3 + 8).
        #expect(config.recurrentStateBytes == 3 * 64 * (3 + 8) * 4)
        let short = CostReport(model: result.model, contextLength: 16), long = CostReport(model: result.model, contextLength: 32)
        #expect(short.residentBytes["augment mamba decoding state"] == config.recurrentStateBytes)
        #expect(long.residentBytes["augment mamba decoding state"] == config.recurrentStateBytes)
        let kv = try #require(short.residentBytes["augment tf decoding state"])
        #expect(long.residentBytes["augment tf decoding state"] == 2 * kv)
        #expect(short.residentBytes["augment mamba weights"] == setup.mamba.parameterCount * 4)
        // The Mamba blocks through the deepest connected one (block 2: all three) are in the decoding cost.
        let mambaFLOPs = setup.mamba.forwardFLOPsPerToken(throughLayer: 2, span: 16)
        // Per block, multiply-adds: in_proj 32·128, x_proj 64·(2 + 16), dt_proj 2·64, out_proj 64·32,
        // conv 64·4, scan 3·64·8; two FLOPs each.
        #expect(mambaFLOPs == 3 * 2 * Double(32 * 128 + 64 * 18 + 2 * 64 + 64 * 32 + 64 * 4 + 3 * 64 * 8))
        #expect(result.cost.composedDecodeFLOPsPerToken - result.cost.anchorDecodeFLOPsPerToken > mambaFLOPs)
        // A decoder holds exactly the state the report counts, after any number of tokens.
        let decoder = setup.mamba.makeDecoder(capacity: 40)
        _ = decoder.hiddenStates(TokenBatch(Array(repeating: 5, count: 40)), layers: [2])
        #expect(decoder.state.byteCount == config.recurrentStateBytes)
    }
}
