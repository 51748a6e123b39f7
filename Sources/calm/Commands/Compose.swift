import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMTensor
import CALMTraining
import Foundation

struct Compose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a CALM composition of a frozen anchor with frozen registered experts.",
        discussion: """
            Only the bridges (projection, cross-attention, gate per expert and connection) train, on the \
            JSONL composition set D_C. Connections default to the paper's rule (see README); override with \
            --connections "3:3,7:7" (all experts) or --connections NAME=3:3,7:7 (one expert, repeatable).
            """)

    @Option(help: "Anchor model checkpoint (.h5).") var anchor: String
    @Option(name: .customLong("expert"), help: "Registered expert name (repeat for several).") var experts: [String] = []
    @Option(help: "Composition data D_C (JSONL prompt/completion).") var data: String
    @Option(help: "Held-out JSONL for evaluation loss.") var evalData: String?
    @Option(help: "Output composition checkpoint (.h5).") var output: String
    @Option(help: "Explicit connections ANCHOR:AUGMENT,... for every expert, or NAME=ANCHOR:AUGMENT,...")
    var connections: [String] = []
    @Option(help: "Cross-attention heads (default: the anchor's).") var heads: Int?
    @Option(help: "Resume from a composition checkpoint written by compose.") var resume: String?
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var training: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        guard !experts.isEmpty else { throw CLIError("give at least one --expert NAME") }
        guard Set(experts).count == experts.count else { throw CLIError("an --expert is listed twice") }
        let expertRegistry = registry.expertRegistry
        let anchorModel = try ArchitectureRegistry.load(anchor)
        guard let anchorLM = anchorModel.model as? TransformerLM else {
            throw CLIError("\(anchor): the anchor must be a transformer LM")
        }
        var augments: [(name: String, model: any AugmentModel, connections: [Connection])] = []
        var references: [CompositionSpec.AugmentReference] = []
        for name in experts {
            let (entry, expert) = try expertRegistry.load(name)
            guard expert.tokenizer.fingerprint == anchorModel.tokenizer.fingerprint else {
                throw CLIError("expert \"\(name)\" uses a different tokenizer than the anchor \(anchor): CALM aligns the two models token by token, so they must share one")
            }
            let pairs = try connectionsFor(name, anchorLayers: anchorLM.config.numLayers, augmentLayers: expert.model.layerCount)
            augments.append((name, expert.model, pairs))
            references.append(.init(name: name, contentHash: entry.contentHash, architecture: entry.architecture, connections: pairs))
        }
        let spec = CompositionSpec(
            anchor: .init(path: CompositionCheckpoint.reference(to: anchor, from: output), contentHash: anchorModel.contentHash,
                          architecture: anchorModel.architecture),
            augments: references, heads: heads ?? anchorLM.config.numHeads, seed: training.seed)
        let model = try ComposedModel(anchor: anchorLM, augments: augments, heads: spec.heads, seed: spec.seed)

        var resumeFile: HDF5File?
        var options = training.options
        if let resume {
            let (saved, file) = try CompositionCheckpoint.readSpec(resume)
            guard saved.anchor.contentHash == spec.anchor.contentHash, saved.augments == spec.augments, saved.heads == spec.heads else {
                throw CLIError("\(resume): was trained with a different anchor, experts, connections or heads")
            }
            try readTensors(into: model.parameters, from: file)
            options = try Trainer.savedOptions(in: file, steps: training.steps)
            resumeFile = file
        }

        let tokenizer = anchorModel.tokenizer
        let sequenceLength = model.maxContext - 1
        let train = try TrainingData.load(data, tokenizer: tokenizer, sequenceLength: sequenceLength)
        let eval = try evalData.map { try TrainingData.load($0, tokenizer: tokenizer, sequenceLength: sequenceLength) }
        let trainer = try Trainer(parameters: model.parameters, train: train, eval: eval, padID: tokenizer.padID ?? 0,
                                  options: options) { tokens, mask in
            model.loss(tokens, lossMask: mask)
        }
        if let resumeFile { try trainer.restoreState(from: resumeFile, steps: training.steps) }
        resumeFile = nil

        let longest = train.examples.map(\.ids.count).max() ?? 1
        let cost = CostReport(model: model, contextLength: longest)
        FileHandle.standardError.write(Data("composition: \(experts.joined(separator: " + ")) into \(anchor); \(train.examples.count) examples\n\(cost.rendered())\n".utf8))
        trainer.reporter = ProgressReporter(totalSteps: options.steps, logEvery: options.logEvery)
        try trainer.run { trainer in
            let gates = Self.gateStatistics(model, data: train, padID: tokenizer.padID ?? 0)
            try CompositionCheckpoint.save(model, spec: spec, tokenizer: tokenizer, to: output, gateStatistics: gates,
                                           costReport: cost) { try trainer.writeState(to: $0) }
            trainer.reporter?.log("step \(trainer.progress.step): saved \(output)")
        }
        print(cost.rendered())
    }

    private func connectionsFor(_ name: String, anchorLayers: Int, augmentLayers: Int) throws -> [Connection] {
        var spec: String?
        for entry in connections {
            if let eq = entry.firstIndex(of: "=") {
                if entry[..<eq] == name { spec = String(entry[entry.index(after: eq)...]) }
            } else if spec == nil {
                spec = entry
            }
        }
        guard let spec else { return ConnectionRule.defaultConnections(anchorLayers: anchorLayers, augmentLayers: augmentLayers) }
        do { return try ConnectionRule.parse(spec, anchorLayers: anchorLayers, augmentLayers: augmentLayers) } catch {
            throw CLIError("--connections for \(name): \(error)")
        }
    }

    /// Gate statistics over (up to 256 examples of) the composition data.
    static func gateStatistics(_ model: ComposedModel, data: TrainingData, padID: Int) -> [GateStatistics] {
        let recorder = GateRecorder()
        for example in data.examples.prefix(256) {
            _ = withoutGradients { model.forward(TokenBatch(example.ids), gates: recorder) }
        }
        return GateStatistics.from(recorder.values, model: model)
    }
}
