import ArgumentParser
import CALMTensor

/// The `calm` command tree. Its name in help texts is the running tool's (`calm`, or e.g.
/// `calm-mamba` for a package that adds architectures).
struct Calm: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: CommandLineSetup.toolName,
            abstract: "Compose frozen language models with CALM (Composition to Augment Language Models).",
            version: "0.1.0",
            subcommands: [Pretrain.self, Compose.self, Experts.self, Convert.self, Export.self, DataCommand.self, Demo.self, Probe.self, Bench.self, Generate.self, Eval.self, Forward.self, Inspect.self, Upgrade.self, Quantize.self, Serve.self])
    }
}
