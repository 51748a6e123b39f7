import ArgumentParser
import CALMComposition
import Foundation

struct Experts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the registry of domain experts (augment models).",
        subcommands: [List.self, Show.self, Register.self, Remove.self, Verify.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered experts.")
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let entries = try registry.expertRegistry.list()
            guard !entries.isEmpty else {
                print("no experts registered in \(registry.expertRegistry.directory)")
                return
            }
            let rows = [["NAME", "DOMAIN", "ARCH", "PARAMS", "TOKENIZER", "HASH"]] + entries.map {
                [$0.name, $0.domain, $0.architecture, "\($0.parameterCount)", String($0.tokenizerFingerprint.prefix(12)),
                 String($0.contentHash.prefix(12))]
            }
            let widths = (0..<6).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one expert's metadata.")
        @Argument(help: "Expert name.") var name: String
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let r = registry.expertRegistry
            let e = try r.entry(named: name)
            for (key, value) in [("name", e.name), ("domain", e.domain), ("description", e.description),
                                 ("architecture", e.architecture), ("parameters", "\(e.parameterCount)"),
                                 ("tokenizer", e.tokenizerFingerprint), ("content hash", e.contentHash),
                                 ("file", r.path(of: e)), ("registered", e.registeredAt)] {
                print("\((key + ":").padding(toLength: 14, withPad: " ", startingAt: 0))\(value)")
            }
        }
    }

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a model checkpoint and add it to the registry under a name.",
            discussion: """
                Warns when the expert's tokenizer matches no model checkpoint beside the registry directory \
                (its parent's *.h5) or in ./checkpoints, and no other registered expert: calm compose needs the \
                expert and its anchor to share one tokenizer.
                """)
        @Argument(help: "A model checkpoint (.h5).") var file: String
        @Option(help: "Name to register it under.") var name: String
        @Option(help: "Its domain, e.g. code or kv-arithmetic.") var domain: String
        @Option(help: "A one-line description.") var description = ""
        @Flag(help: "Replace an expert already registered under this name.") var replace = false
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            let entry = try registry.expertRegistry.register(file: file, name: name, domain: domain,
                                                             description: description, replace: replace)
            print("registered \(entry.name) (\(entry.architecture), \(entry.parameterCount) parameters, hash \(entry.contentHash.prefix(12)))")
            AnchorCheck.warnIfUnmatched(entry, registeredFrom: file, registry: registry.expertRegistry)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an expert from the registry and delete its file.")
        @Argument(help: "Expert name.") var name: String
        @OptionGroup var registry: RegistryOptions

        func run() throws {
            try registry.expertRegistry.remove(name)
            print("removed \(name)")
        }
    }
}
