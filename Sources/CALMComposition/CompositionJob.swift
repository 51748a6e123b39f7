import CALMCheckpoint
import CALMModels
import CALMTensor
import CALMTokenizers
import CALMTraining
import Foundation

/// Everything `calm compose` (and `calm demo --retrain`) needs to train a composition.
public struct CompositionJob {
    public var anchorPath: String
    public var experts: [String]
    public var registry: ExpertRegistry
    public var dataPath: String
    public var evalPath: String?
    public var outputPath: String
    /// Explicit connections "ANCHOR:AUGMENT,..." per expert name, or under "*" for every
    /// expert; experts without one use the default rule.
    public var connectionSpecs: [String: String] = [:]
    public var heads: Int?
    /// Rotary position embeddings on bridge queries and keys.
    public var rotaryBridges = true
    /// Gates also read each expert's prediction entropy (how sure it is of the next token).
    public var confidenceGates = false
    /// Gates also read how surprised each expert was by the text (`Familiarity`).
    public var familiarityGates = false
    /// Start every bridge as a copy of its expert's next-token prediction in the anchor's token
    /// space (`VocabularyAlignment`); a resumed run keeps its trained bridges.
    public var vocabularyBridges = false
    /// Train only these parts of each bridge (`Bridge.partNames`; nil: all). The others stay as
    /// initialised (with `vocabularyBridges`: the fitted relay): gates alone learn when to trust
    /// an expert but cannot store facts of their own.
    public var trainableBridgeParts: Set<String>?
    public var options: TrainingOptions
    public var resumePath: String?
    /// Write the final checkpoint without optimizer state (a quarter of the size; not resumable).
    public var finalWithoutResumeState = false
    /// Reuse frozen activations across epochs: nil decides by size (see `run`).
    public var cacheFrozenActivations: Bool?
    /// Use `defaultLearningRate(anchorWidth:)` instead of `options.learningRate` (no --lr given).
    public var learningRateFromWidth = false
    /// Data-parallel training over these processes (nil: this process alone).
    public var group: (any DataParallelGroup)?

    /// The default peak learning rate for bridges into an anchor of this width: 3e-3 up to
    /// width 128 (the key-value models), then falling as 1/width, since the bridge's output
    /// projection writes into a residual stream whose scale the anchor sets (SmolLM2-135M,
    /// width 576, diverged within 4 steps at 3e-3 and trains at 3e-4; this gives 6.7e-4).
    public static func defaultLearningRate(anchorWidth: Int) -> Float {
        3e-3 * min(1, 128 / Float(anchorWidth))
    }

    /// Largest activation cache `run` builds on its own.
    public static let automaticCacheLimit = 2 << 30

    public init(anchorPath: String, experts: [String], registry: ExpertRegistry, dataPath: String, outputPath: String,
                options: TrainingOptions) {
        self.anchorPath = anchorPath
        self.experts = experts
        self.registry = registry
        self.dataPath = dataPath
        self.outputPath = outputPath
        self.options = options
    }

    public struct Result {
        public let model: ComposedModel
        public let spec: CompositionSpec
        public let cost: CostReport
        public let trainer: Trainer
        public let usedActivationCache: Bool
    }

    /// Loads the anchor and experts, checks tokenizers, trains, and saves the composition
    /// (with gate statistics, cost report and resumable state) at every save point. With a
    /// `group`, every rank sets up, all compare their inputs (or learn that one failed) before
    /// anything trains, and the trainer shares each batch among them.
    public func run(reporter: ProgressReporter? = nil, log: (String) -> Void = { _ in }) throws -> Result {
        let setup = Swift.Result { try prepare(log: log) }
        if let group { try InputAgreement.check(setup.flatMap { job in Swift.Result { try job.fingerprints() } }, group: group) }
        let job = try setup.get()
        let (model, spec, trainer, train, tokenizer) = (job.model, job.spec, job.trainer, job.train, job.tokenizer)
        let longest = train.examples.map(\.ids.count).max() ?? 1
        let cost = CostReport(model: model, contextLength: longest, trainedParts: trainableBridgeParts)
        log("composition: \(experts.joined(separator: " + ")) into \(anchorPath); \(train.examples.count) examples; "
            + (job.useCache ? String(format: "frozen activations cached (%.1f MiB)", Double(job.cacheBytes) / 1_048_576) : "frozen models recomputed each step"))
        // The cost report is the caller's to print (once); the chosen bridges are only known here.
        for reference in spec.augments {
            log("\(reference.name): " + reference.connections.map { "anchor \($0.anchorLayer) <- augment \($0.augmentLayer)" }.joined(separator: ", "))
        }
        trainer.reporter = reporter
        let output = outputPath
        let slimFinal = finalWithoutResumeState
        try trainer.run { trainer in
            let gates = Self.gateStatistics(model, data: train, cache: job.activationCache)
            let final = trainer.progress.step == trainer.options.steps
            try CompositionCheckpoint.save(model, spec: spec, tokenizer: tokenizer, to: output, gateStatistics: gates,
                                           costReport: cost) { file in
                if !(final && slimFinal) { try trainer.writeState(to: file) }
            }
            trainer.reporter?.log("step \(trainer.progress.step): saved \(output)")
        }
        return Result(model: model, spec: spec, cost: cost, trainer: trainer, usedActivationCache: job.useCache)
    }

    /// A composition ready to train: models, bridges (fresh or resumed), data and trainer.
    struct Prepared {
        let model: ComposedModel
        let spec: CompositionSpec
        let trainer: Trainer
        let train: TrainingData
        let tokenizer: any Tokenizer
        let useCache: Bool
        let cacheBytes: Int
        /// The frozen states of D_C when training caches them (the gate statistics reuse them).
        let activationCache: FrozenActivationCache?

        /// What every rank of a data-parallel run must share.
        func fingerprints() throws -> [InputAgreement.Fingerprint] {
            var items = [InputAgreement.Fingerprint("anchor model", spec.anchor.contentHash)]
            for augment in spec.augments { items.append(.init("expert \(augment.name)", augment.contentHash)) }
            items.append(.init("bridges (connections, heads, rotary, confidence and familiarity gates, seed)",
                               try InputAgreement.digest(ofJSON: [String(describing: spec.augments),
                                                                  "\(spec.heads) \(spec.rotary) \(spec.confidenceGates ?? false) "
                                                                      + "\(spec.familiarityGates ?? false) \(spec.seed)"])))
            return items + (try trainer.fingerprints())
        }
    }

    private func prepare(log: (String) -> Void) throws -> Prepared {
        guard !experts.isEmpty else { throw ConnectionError("give at least one expert") }
        guard Set(experts).count == experts.count else { throw ConnectionError("an expert is listed twice") }
        let anchor = try ModelResolver.anchor(at: anchorPath)
        let anchorLM = anchor.model
        var expertModels: [any AugmentModel] = []
        var references: [CompositionSpec.AugmentReference] = []
        for name in experts {
            let (entry, expert) = try registry.load(name)
            guard expert.tokenizer.fingerprint == anchor.tokenizer.fingerprint else {
                throw RegistryError("expert \"\(name)\" uses a different tokenizer than the anchor \(anchorPath): CALM aligns the two models token by token, so they must share one; retrain the expert with the anchor's tokenizer (calm pretrain --tokenizer-from \(anchorPath))")
            }
            let pairs: [Connection]
            if let spec = connectionSpecs[name] ?? connectionSpecs["*"] {
                do {
                    pairs = try ConnectionRule.parse(spec, anchorLayers: anchorLM.config.numLayers, augmentLayers: expert.model.layerCount)
                } catch { throw ConnectionError("connections for \(name): \(error)") }
            } else {
                pairs = ConnectionRule.defaultConnections(anchorLayers: anchorLM.config.numLayers, augmentLayers: expert.model.layerCount)
            }
            expertModels.append(expert.model)
            references.append(.init(name: name, contentHash: entry.contentHash, architecture: entry.architecture, connections: pairs))
        }
        let spec = CompositionSpec(
            anchor: .init(path: CompositionCheckpoint.reference(to: anchorPath, from: outputPath),
                          contentHash: anchor.contentHash, architecture: anchor.architecture),
            augments: references, registry: CompositionCheckpoint.reference(to: registry.directory, from: outputPath),
            heads: heads ?? anchorLM.config.numHeads, rotary: rotaryBridges, confidenceGates: confidenceGates,
            familiarityGates: familiarityGates, seed: options.seed)
        var fresh = RandomWeights(seed: spec.seed)
        let model = try CompositionAssembly.assemble(spec, anchor: anchorLM, experts: expertModels, weights: &fresh)

        var options = self.options
        if learningRateFromWidth {
            options.learningRate = Self.defaultLearningRate(anchorWidth: anchorLM.config.hiddenSize)
            log(String(format: "learning rate %g (the default for an anchor of width %d; --lr sets it)", options.learningRate,
                       anchorLM.config.hiddenSize))
        }
        var resumeFile: HDF5File?
        if let resumePath {
            let (saved, file) = try CompositionCheckpoint.readSpec(resumePath)
            guard saved.anchor.contentHash == spec.anchor.contentHash, saved.augments == spec.augments, saved.heads == spec.heads,
                  saved.rotary == spec.rotary, saved.confidenceGates == spec.confidenceGates,
                  saved.familiarityGates == spec.familiarityGates else {
                throw CheckpointError(path: resumePath,
                                      message: "was trained with a different anchor, experts, connections, heads or gates")
            }
            try readTensors(into: model.parameters, from: file)
            options = try Trainer.savedOptions(in: file, steps: options.steps)
            resumeFile = file
        }

        let tokenizer = anchor.tokenizer
        let sequenceLength = model.maxContext - 1
        let train = try TrainingData.load(dataPath, tokenizer: tokenizer, sequenceLength: sequenceLength)
        let eval = try evalPath.map { try TrainingData.load($0, tokenizer: tokenizer, sequenceLength: sequenceLength) }
        if vocabularyBridges && resumePath == nil {
            let norms = VocabularyAlignment.residualNorms(model, examples: train.examples.prefix(8).map(\.ids))
            try VocabularyAlignment.align(model, residualNorm: norms)
            log("bridges start as copies of each expert's next-token prediction (anchor state norms: "
                + norms.sorted { $0.key < $1.key }.map { String(format: "block %d %.1f", $0.key, $0.value) }.joined(separator: ", ") + ")")
        }
        let padID = tokenizer.padID ?? 0
        var trainable = model.parameters
        if let parts = trainableBridgeParts {
            let total = trainable.reduce(0) { $0 + $1.tensor.count }
            let kept = { (name: String) in Bridge.names(name, oneOf: parts) }
            for (name, tensor) in trainable where !kept(name) { tensor.requiresGrad = false }
            trainable.removeAll { !kept($0.name) }
            log("training only \(parts.sorted().joined(separator: ", ")): \(trainable.reduce(0) { $0 + $1.tensor.count }) of \(total) bridge parameters")
        }
        let trainer = try Trainer(parameters: trainable, train: train, eval: eval, padID: padID, options: options) { tokens, mask in
            model.loss(tokens, lossMask: mask)
        }
        if let resumeFile { try trainer.restoreState(from: resumeFile, steps: options.steps) }

        // Caching pays once examples come round again and the cache fits in memory.
        let cacheBytes = FrozenActivationCache.estimatedBytes(model: model, examples: train.examples)
        let epochs = Double(options.steps * options.batchSize) / Double(train.examples.count)
        let useCache = cacheFrozenActivations ?? (epochs > 1 && cacheBytes <= Self.automaticCacheLimit)
        var activationCache: FrozenActivationCache?
        if useCache {
            let cache = FrozenActivationCache(model: model, examples: train.examples)
            activationCache = cache
            trainer.indexedLoss = { tokens, mask, indices in
                let (states, prefix) = cache.batch(indices, length: tokens.length)
                return model.loss(tokens, lossMask: mask, augmentStates: states, anchorPrefix: prefix)
            }
        }
        trainer.sharding = useCache ? .ownership : .slices
        trainer.group = group
        return Prepared(model: model, spec: spec, trainer: trainer, train: train, tokenizer: tokenizer, useCache: useCache,
                        cacheBytes: cacheBytes, activationCache: activationCache)
    }

    /// Gate statistics over (up to 256 examples of) the composition data: one pass, in batches
    /// of up to 32 right-padded examples (padding only follows a sequence, so causal attention
    /// keeps it from every real position; its gate values are dropped), the frozen states taken
    /// from `cache` when training built one.
    public static func gateStatistics(_ model: ComposedModel, data: TrainingData,
                                      cache: FrozenActivationCache? = nil) -> [GateStatistics] {
        let examples = Array(data.examples.prefix(256))
        var kept: GateRecord = [:]
        for start in stride(from: 0, to: examples.count, by: 32) {
            let indices = Array(start..<min(start + 32, examples.count))
            let lengths = indices.map { examples[$0].ids.count }
            let length = lengths.max() ?? 0
            guard length > 0 else { continue }
            var ids = [Int](repeating: 0, count: indices.count * length)  // (B, T)
            for (b, i) in indices.enumerated() {
                for (t, id) in examples[i].ids.enumerated() { ids[b * length + t] = id }
            }
            let tokens = TokenBatch(ids: ids, batch: indices.count, length: length)
            let recorder = GateRecorder()
            let frozen = cache?.batch(indices, length: length)
            withoutGradients {
                model.recordGates(tokens, augmentStates: frozen?.augmentStates, anchorPrefix: frozen?.anchorPrefix,
                                  into: recorder)
            }
            for (key, values) in recorder.values {  // (B, T) per key
                for (b, n) in lengths.enumerated() { kept[key, default: []] += values[(b * length)..<(b * length + n)] }
            }
        }
        return GateStatistics.from(kept, model: model)
    }
}
