import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMDistributed
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
            --connections 3:3,7:7 (all experts) or --connections NAME=3:3,7:7 (one expert, repeatable); -1 \
            names the embedding output (--connections -1:0,0:0). Without --lr the learning rate is 0.003 for \
            anchors up to width 128 and 0.003 x 128 / width beyond. --resume continues a run with its saved \
            training options; give only --steps to go further.
            """)

    @Option(help: "Anchor model checkpoint (.h5).") var anchor: String
    @Option(name: .customLong("expert"), help: "Registered expert name (repeat for several).") var experts: [String] = []
    @Option(help: "Composition data D_C (JSONL prompt/completion).") var data: String
    @Option(help: "Held-out JSONL for evaluation loss.") var evalData: String?
    @Option(help: "Output composition checkpoint (.h5).") var output: String
    @Option(parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Explicit connections ANCHOR:AUGMENT,... for every expert, or NAME=ANCHOR:AUGMENT,... for one.",
                               valueName: "[NAME=]A:B,..."),
            transform: { try ConnectionList(parsing: $0) })
    var connections: [ConnectionList] = []
    @Option(parsing: .unconditional, help: "Cross-attention heads (default: the anchor's).") var heads: Int?
    @Flag(inversion: .prefixedNo, help: "Rotary position embeddings on bridge queries and keys.") var rotaryBridges = true
    @Flag(help: """
        Each gate also reads its expert's next-token entropy (how sure the expert is) and how far it exceeds the \
        surest expert's, so it can close where its expert does not know; experts must predict tokens.
        """)
    var confidenceGates = false
    @Flag(help: """
        Each gate also reads how surprised its expert was by the text it has read: lately (high on text \
        unlike the expert's own) and so far beyond the least surprised expert (which expert knows the names \
        in the question); experts must predict tokens.
        """)
    var familiarityGates = false
    @Flag(help: """
        Start each bridge as a copy of its expert's next-token prediction into the anchor's token space (a \
        least-squares map between the two output heads, which share the tokenizer); every bridge must read \
        its expert's last block. Helps bridges carry facts D_C never showed (see README, real composition).
        """)
    var vocabularyBridges = false
    @Option(help: ArgumentHelp("""
        Train only these parts of each bridge, comma-separated (\(Bridge.partNames.joined(separator: ", "))); the \
        others keep their initial values (with --vocabulary-bridges, the fitted relay). `gate,gate_augment`: bridges \
        learn when to trust an expert but cannot store facts.
        """, valueName: "parts"), transform: { try BridgeParts(parsing: $0) })
    var trainOnly: BridgeParts?
    @Option(help: "Resume from a composition checkpoint written by compose.") var resume: String?
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var training: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions

    @Flag(inversion: .prefixedNo, help: "Cache frozen activations across epochs (default: when it pays and fits in 2 GiB).")
    var activationCache: Bool?
    @Flag(help: "Write the final checkpoint without optimizer state (a quarter of the size; it cannot be resumed).")
    var noResumeState = false

    func run() throws {
        let group = try MPIRun.joinIfLaunched(threadsGiven: runtime.threads != nil)
        try training.checkRanges(minimumSteps: 1)
        try OptionCheck.atLeast(heads, 1, "--heads")
        guard !experts.isEmpty else { throw CLIError("give at least one --expert NAME") }
        if let parts = trainOnly?.names, !parts.contains("o_proj") && !vocabularyBridges {
            throw CLIError("--train-only without o_proj needs --vocabulary-bridges (fresh bridges start with a zero output projection: the other parts alone change nothing)")
        }
        if let parts = trainOnly?.names, parts.contains("gate_confidence") && !confidenceGates {
            throw CLIError("--train-only gate_confidence needs --confidence-gates (without them bridges have no such part)")
        }
        if let parts = trainOnly?.names, parts.contains("gate_familiarity") && !familiarityGates {
            throw CLIError("--train-only gate_familiarity needs --familiarity-gates (without them bridges have no such part)")
        }
        let specs = try connectionSpecs()
        if group?.rank ?? 0 == 0 { try OutputPath.validate(output, option: "--output") }  // only rank 0 writes
        try runtime.apply()
        var job = try makeJob(connectionSpecs: specs)
        job.group = group
        let options = job.options
        // Notes and warnings wait for the job's first log line, i.e. until the models and data
        // have loaded, so they never come before an error about something else.
        var remarksDue = true
        let result = try job.run(reporter: ProgressReporter(totalSteps: options.steps, logEvery: options.logEvery)) {
            if remarksDue {
                remarksDue = false
                if resume == nil, let message = training.warmupNote(for: options) { note(message) }
                if let tokenizer = storedTokenizer(in: anchor), let texts = try? dataTexts(of: data) {
                    tokenizer.warnAboutUnknownPieces(in: texts, what: data)
                }
            }
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        print(result.cost.rendered())
    }

    /// The training job these options describe (also how `calm demo --retrain` runs the KV
    /// suite's recipe file through this command's own parser).
    func makeJob(connectionSpecs specs: [String: String]? = nil) throws -> CompositionJob {
        var job = CompositionJob(anchorPath: anchor, experts: experts, registry: registry.expertRegistry, dataPath: data,
                                 outputPath: output, options: try trainingOptions())
        job.evalPath = evalData
        job.heads = heads
        job.rotaryBridges = rotaryBridges
        job.confidenceGates = confidenceGates
        job.familiarityGates = familiarityGates
        job.vocabularyBridges = vocabularyBridges
        job.trainableBridgeParts = trainOnly?.names
        job.resumePath = resume
        job.cacheFrozenActivations = activationCache
        job.finalWithoutResumeState = noResumeState
        job.connectionSpecs = try specs ?? connectionSpecs()
        job.learningRateFromWidth = resume == nil && training.learningRate == nil
        return job
    }

    /// Arguments from a recipe file: one per line, `#` comments and blank lines skipped.
    static func recipeArguments(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("\(path): cannot read the recipe") }
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// `--connections` per expert name ("*": every expert); an expert named twice, or one that
    /// is not composed, is an error rather than a silent override.
    private func connectionSpecs() throws -> [String: String] {
        var specs: [String: String] = [:]
        for list in connections {
            let key = list.expert ?? "*"
            if let name = list.expert, !experts.contains(name) {
                throw CLIError("--connections: \"\(name)\" is not one of the composed experts (\(experts.joined(separator: ", ")))")
            }
            guard specs[key] == nil else {
                throw CLIError("--connections: given twice for \(list.expert.map { "expert \"\($0)\"" } ?? "every expert")")
            }
            specs[key] = list.spec
        }
        return specs
    }

    /// A new run's options, or a resumed run's saved ones (explicit values must agree).
    private func trainingOptions() throws -> TrainingOptions {
        guard let resume else { return training.newRunOptions() }
        let file = try HDF5File.open(resume)
        let source = "\(resume) (--resume)"
        let options = try training.resumed(from: try Trainer.savedOptions(in: file, steps: nil), source: source)
        let done = try file.intAttribute("optimizer_steps", of: CheckpointFormat.trainingGroup) ?? 0
        guard options.steps > done else {
            throw CLIError("--steps: \(resume) has already trained \(done) steps; give --steps above \(done) to continue")
        }
        return options
    }
}

/// The value of `--train-only`: bridge part names, each known and given once.
struct BridgeParts {
    let names: Set<String>

    init(parsing text: String) throws {
        var names = Set<String>()
        for piece in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard Bridge.partNames.contains(piece) else {
                throw CLIError("--train-only: unknown bridge part '\(piece)' (parts: \(Bridge.partNames.joined(separator: ", ")))")
            }
            guard names.insert(piece).inserted else { throw CLIError("--train-only: '\(piece)' given twice") }
        }
        self.names = names
    }
}
