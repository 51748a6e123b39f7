import ArgumentParser
import CALMComposition

extension Experts {
    /// Loads read the content hash stored at registration; this recomputes it from every tensor.
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute registered experts' content hashes from their tensors and compare them with the registry.")
        @Argument(help: "Expert names (default: every registered expert).") var names: [String] = []
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let results = try registry.expertRegistry.verify(names)
            for result in results { print("\(result.name): \(result.ok ? "ok" : "FAILED"), \(result.detail)") }
            if let bad = results.first(where: { !$0.ok }) {
                throw CLIError("\(registry.expertRegistry.directory): expert \"\(bad.name)\" does not match its registered content hash")
            }
        }
    }
}
