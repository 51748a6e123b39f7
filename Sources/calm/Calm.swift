import ArgumentParser
import CALMTensor

@main
struct Calm: ParsableCommand {
    static func main() {
        Allocator.keepFreedMemory()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "calm",
        abstract: "Compose frozen language models with CALM (Composition to Augment Language Models).",
        version: "0.1.0",
        subcommands: [Pretrain.self, Compose.self, Experts.self, Convert.self, Export.self, DataCommand.self, Demo.self, Probe.self, Bench.self, Generate.self, Eval.self, Forward.self, Inspect.self, Upgrade.self, Quantize.self, Serve.self])
}
