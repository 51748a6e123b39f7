import ArgumentParser
import CALMCheckpoint
import CALMModels
import CALMTensor

struct Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write logits for given token ids to an HDF5 file (dataset \"logits\", [T, vocab]).")

    @OptionGroup var source: ModelSource
    @Option(help: "Token ids separated by spaces, e.g. \"1 2 3\".") var tokens: String
    @Option(help: "Output HDF5 file.") var output: String
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        let ids = try tokens.split(whereSeparator: { $0 == " " || $0 == "," }).map { part -> Int in
            guard let id = Int(part) else { throw CLIError("--tokens: \"\(part)\" is not an integer") }
            return id
        }
        guard !ids.isEmpty else { throw CLIError("--tokens is empty") }
        let loaded = try source.load()
        let vocab = loaded.vocabularySize
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocab }) {
            throw CLIError("--tokens: id \(bad) is outside the vocabulary of \(vocab)")
        }
        guard ids.count <= loaded.maxContext else {
            throw CLIError("--tokens: \(ids.count) tokens exceed the context of \(loaded.maxContext)")
        }
        let logits = loaded.logits(ids)
        try writeAtomically(to: output) { temporary in
            let file = try HDF5File.create(temporary)
            try file.writeFloats("logits", shape: [ids.count, vocab], data: logits)
            try file.writeInt64s("tokens", shape: [ids.count], data: ids.map(Int64.init))
            try file.close()
        }
    }
}
