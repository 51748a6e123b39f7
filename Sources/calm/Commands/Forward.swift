import ArgumentParser
import CALMCheckpoint
import CALMModels
import CALMTensor

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model's logits for given token ids to an HDF5 file (dataset \"logits\", [T, vocab]).")

    @OptionGroup var source: ModelSource
    @Option(help: "Token ids separated by spaces, e.g. \"1 2 3\".") var tokens: String
    @Option(help: "Output HDF5 file.") var output: String
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let ids = try tokens.split(whereSeparator: { $0 == " " || $0 == "," }).map { part -> Int in
            guard let id = Int(part) else { throw ValidationError("--tokens: \"\(part)\" is not an integer") }
            return id
        }
        guard !ids.isEmpty else { throw ValidationError("--tokens is empty") }
        let (_, _, checkpoint) = try source.load()
        let model = checkpoint.model
        if let bad = ids.first(where: { $0 < 0 || $0 >= model.config.vocabSize }) {
            throw ValidationError("--tokens: id \(bad) is outside the vocabulary of \(model.config.vocabSize)")
        }
        guard ids.count <= model.config.maxPositions else {
            throw ValidationError("--tokens: \(ids.count) tokens exceed the context of \(model.config.maxPositions)")
        }
        let logits = withoutGradients { model.forward(TokenBatch(ids)).logits! }  // (1, T, V)
        try writeAtomically(to: output) { temporary in
            let file = try HDF5File.create(temporary)
            try file.writeFloats("logits", shape: [ids.count, model.config.vocabSize], data: logits.data)
            try file.writeInt64s("tokens", shape: [ids.count], data: ids.map(Int64.init))
            try file.close()
        }
    }
}
