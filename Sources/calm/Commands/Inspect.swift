import ArgumentParser
import CALMCheckpoint
import CALMModels
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a checkpoint: format, configuration, tensors.")

    @Argument(help: "A CALM checkpoint (.h5).") var file: String

    func run() throws {
        let checkpoint = try ModelCheckpoint.load(file)
        let h5 = try HDF5File.open(file)
        let model = checkpoint.model
        print("file:        \(file)")
        print("format:      \(CheckpointFormat.name) v\(CheckpointFormat.version), kind model")
        print("model type:  \(model.config.architecture)")
        print("parameters:  \(model.parameterCount) (\(String(format: "%.2f", Double(model.parameterCount * 4) / 1_048_576)) MiB as float32)")
        print("tokenizer:   \(type(of: checkpoint.tokenizer).kind), \(checkpoint.tokenizer.vocabularySize) tokens, fingerprint \(checkpoint.tokenizer.fingerprint.prefix(16))")
        if h5.exists(CheckpointFormat.trainingGroup),
           let optimizerSteps = try h5.intAttribute("optimizer_steps", of: CheckpointFormat.trainingGroup) {
            print("training:    resumable state after \(optimizerSteps) steps")
        }
        print("config:")
        let pretty = try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: Data(model.config.jsonString().utf8)),
                                                options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: pretty, as: UTF8.self).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        let rows = model.parameters.map { ($0.name, "[" + $0.tensor.shape.map(String.init).joined(separator: ", ") + "]", "\($0.tensor.count)") }
        let w0 = max(6, rows.map(\.0.count).max() ?? 0), w1 = max(5, rows.map(\.1.count).max() ?? 0)
        print("\n" + "tensor".padding(toLength: w0, withPad: " ", startingAt: 0) + "  " + "shape".padding(toLength: w1, withPad: " ", startingAt: 0) + "  elements")
        for (name, shape, count) in rows {
            print(name.padding(toLength: w0, withPad: " ", startingAt: 0) + "  " + shape.padding(toLength: w1, withPad: " ", startingAt: 0) + "  " + count)
        }
    }
}
