import ArgumentParser
import CALMCheckpoint
import CALMComposition
import Foundation

/// Rewrites checkpoints written by earlier versions in the current layout, so their loads are
/// verified and need no hashing: every tensor and attribute keeps its value.
struct Upgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite older checkpoints in the current layout (stored content hash, checksums); tensors stay bit-identical.",
        discussion: """
            A composition also records the registry its experts were found in (relative to the \
            composition), so it finds them from any working directory. A file with resumable training \
            state is copied as it is, training state included, with checksums added. Each file is \
            replaced atomically.
            """)

    @Argument(help: "Model or composition checkpoints (.h5).") var files: [String]
    @OptionGroup var lookup: LookupOptions

    func run() throws {
        for file in files {
            if try HDF5File.open(file).exists(CheckpointFormat.trainingGroup) {
                try upgradeCheckpoint(file)
                print("upgraded \(file) (checksums added; training state kept)")
            } else if try checkpointKind(file) == "composition" {
                try upgradeComposition(file)
            } else {
                let checkpoint = try ModelCheckpoint.load(file)
                let before = try checkpoint.contentHash()
                let after = try ModelCheckpoint.save(model: checkpoint.model, tokenizer: checkpoint.tokenizer, to: file)
                guard before == after else { throw CLIError("\(file): content hash changed while upgrading (\(before) ≠ \(after))") }
                print("upgraded \(file) (model, content hash \(after.prefix(12)))")
            }
        }
    }

    private func upgradeComposition(_ file: String) throws {
        let loaded = try CompositionCheckpoint.load(file, resolver: lookup.resolver)
        var spec = loaded.spec
        if spec.registry == nil, let expert = loaded.expertPaths.first {
            let registry = URL(fileURLWithPath: expert).deletingLastPathComponent().path
            spec.registry = CompositionCheckpoint.reference(to: registry, from: file)
        }
        try CompositionCheckpoint.save(loaded.model, spec: spec, tokenizer: loaded.tokenizer, to: file,
                                       gateStatistics: loaded.gateStatistics, costReport: loaded.costReport)
        print("upgraded \(file) (composition, experts in \(spec.registry ?? "?"))")
    }
}
