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
    @Flag(inversion: .prefixedNo, help: "Rotary position embeddings on bridge queries and keys.") var rotaryBridges = true
    @Option(help: "Resume from a composition checkpoint written by compose.") var resume: String?
    @OptionGroup var registry: RegistryOptions
    @OptionGroup var training: TrainingFlags
    @OptionGroup var runtime: RuntimeOptions

    @Flag(inversion: .prefixedNo, help: "Cache frozen activations across epochs (default: when it pays and fits in 2 GiB).")
    var activationCache: Bool?
    @Flag(help: "Write the final checkpoint without optimizer state (a quarter of the size; it cannot be resumed).")
    var noResumeState = false

    func run() throws {
        try runtime.apply()
        guard !experts.isEmpty else { throw CLIError("give at least one --expert NAME") }
        try training.checkRanges(minimumSteps: 1)
        let registry = self.registry.expertRegistry
        let options = training.newRunOptions()
        var job = CompositionJob(anchorPath: anchor, experts: experts, registry: registry, dataPath: data,
                                 outputPath: output, options: options)
        job.evalPath = evalData
        job.heads = heads
        job.rotaryBridges = rotaryBridges
        job.resumePath = resume
        job.cacheFrozenActivations = activationCache
        job.finalWithoutResumeState = noResumeState
        for entry in connections {
            if let eq = entry.firstIndex(of: "=") {
                job.connectionSpecs[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
            } else {
                job.connectionSpecs["*"] = entry
            }
        }
        let result = try job.run(reporter: ProgressReporter(totalSteps: options.steps, logEvery: options.logEvery)) {
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        print(result.cost.rendered())
    }
}
