import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMModels
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a checkpoint: format, configuration, tensors; for a composition also its connections, gate statistics and cost.")

    @Argument(help: "A CALM model or composition checkpoint (.h5).") var file: String

    func run() throws {
        let h5 = try HDF5File.open(file)
        let kind = try h5.stringAttribute("kind") ?? "model"
        print("file:        \(file)")
        print("format:      \(CheckpointFormat.name) v\(CheckpointFormat.version), kind \(kind)")
        print("checksums:   \(try checksums(h5))")
        let parameters: [(name: String, shape: [Int], storage: String)]
        if kind == "composition" {
            parameters = try describeComposition()
        } else {
            parameters = try describeModel()
        }
        if h5.exists(CheckpointFormat.trainingGroup),
           let optimizerSteps = try h5.intAttribute("optimizer_steps", of: CheckpointFormat.trainingGroup) {
            print("training:    resumable state after \(optimizerSteps) steps")
        }
        printTable(parameters)
    }

    /// Opening verified the attributes of a checksummed file; reading every dataset here
    /// verifies the rest, so "verified" covers the whole file.
    private func checksums(_ h5: HDF5File) throws -> String {
        guard h5.isSealed else { return "none (written before checksums were added; damage cannot be detected)" }
        try h5.verifyAllDatasets()
        return "present (\(CheckpointIntegrity.scheme)), all verified"
    }

    /// Any registered architecture, through its runtime.
    private func describeModel() throws -> [(name: String, shape: [Int], storage: String)] {
        let loaded = try ArchitectureRegistry.load(file)
        let model = loaded.model
        let runtime = ArchitectureRegistry.runtime(serving: loaded.architecture)?.name ?? "?"
        print("model type:  \(loaded.architecture) (runtime \(runtime))")
        let bytes = model.weights.reduce(0) { $0 + $1.weight.byteCount }
        let quantized = model.weights.contains { $0.weight.quantized != nil }
        print("parameters:  \(model.parameterCount) (\(String(format: "%.2f", Double(bytes) / 1_048_576)) MiB in memory\(quantized ? ", quantized" : " as float32"))")
        print("tokenizer:   \(type(of: loaded.tokenizer).kind), \(loaded.tokenizer.vocabularySize) tokens, fingerprint \(loaded.tokenizer.fingerprint.prefix(16))")
        print("config:")
        let pretty = try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: Data(model.configurationJSON.utf8)),
                                                options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: pretty, as: UTF8.self).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        return model.weights.map { ($0.name, $0.weight.shape, $0.weight.quantized?.format.rawValue ?? "f32") }
    }

    /// Reads the composition without loading its anchor and experts, so it works anywhere.
    private func describeComposition() throws -> [(name: String, shape: [Int], storage: String)] {
        let (spec, h5) = try CompositionCheckpoint.readSpec(file)
        print("anchor:      \(spec.anchor.path) (\(spec.anchor.architecture), hash \(spec.anchor.contentHash.prefix(12)))")
        print("heads:       \(spec.heads)")
        print("gate:        \(spec.gate)")
        for a in spec.augments {
            print("augment:     \(a.name) (\(a.architecture), hash \(a.contentHash.prefix(12))), connections (anchor:augment) \(a.connections.map(\.description).joined(separator: ", "))")
        }
        if let json = try h5.stringAttribute("gate_statistics"),
           let stats = try? JSONDecoder().decode([GateStatistics].self, from: Data(json.utf8)) {
            print("gate statistics over the composition data:")
            for s in stats {
                print(String(format: "  %@ @ %@: mean %.3f  std %.3f  min %.3f  max %.3f  (%d tokens)",
                             s.augment, s.connection.description, s.mean, s.std, s.min, s.max, s.count))
            }
        }
        if let json = try h5.stringAttribute("cost_report"),
           let cost = try? JSONDecoder().decode(CostReport.self, from: Data(json.utf8)) {
            print(cost.rendered())
        }
        return try h5.children(of: CheckpointFormat.tensorsGroup).map { name in
            (name, try h5.shape(of: "\(CheckpointFormat.tensorsGroup)/\(name)"), "f32")
        }
    }

    private func printTable(_ parameters: [(name: String, shape: [Int], storage: String)]) {
        let rows = parameters.map { ($0.name, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", "\($0.shape.reduce(1, *))", $0.storage) }
        let w0 = max(6, rows.map(\.0.count).max() ?? 0), w1 = max(5, rows.map(\.1.count).max() ?? 0)
        let w2 = max(8, rows.map(\.2.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s.padding(toLength: w, withPad: " ", startingAt: 0) }
        print("\n" + pad("tensor", w0) + "  " + pad("shape", w1) + "  " + pad("elements", w2) + "  type")
        for (name, shape, count, storage) in rows {
            print(pad(name, w0) + "  " + pad(shape, w1) + "  " + pad(count, w2) + "  " + storage)
        }
    }
}
