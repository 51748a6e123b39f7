import CALMCheckpoint
import Foundation
import MambaExpert
import Testing

/// Runs the built `calm-mamba`, as a user would.
enum CalmMamba {
    static let executable: String = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("calm-mamba").path
        if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
        return "\(Fixtures.example)/.build/debug/calm-mamba"
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Runs and expects success.
    @discardableResult
    static func succeed(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        #expect(result.status == 0, "calm-mamba \(arguments.joined(separator: " ")): \(result.stderr)")
        return result.stdout
    }
}

@Suite("calm-mamba command line", .serialized)
struct CommandLineTests {
    /// Every subcommand a user needs, with a Mamba expert: convert (+ register), inspect,
    /// experts list/verify, forward, generate, eval, compose, generate and inspect a composition.
    @Test func everySubcommandWorksWithMamba() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let experts = "\(dir)/experts"
        let converted = try CalmMamba.succeed(["convert", Fixtures.mamba("mamba-tied"), "\(dir)/mamba.h5",
                                               "--register", "mamba", "--domain", "test", "--registry", experts])
        #expect(converted.contains("MambaForCausalLM: 3 layers, width 32"))
        #expect(converted.contains("registered mamba (mamba, hash"))
        try CalmMamba.succeed(["convert", Fixtures.llama, "\(dir)/anchor.h5"])  // built-in families still convert

        let inspected = try CalmMamba.succeed(["inspect", "\(dir)/mamba.h5"])
        #expect(inspected.contains("model type:  mamba (runtime mamba)"))
        #expect(inspected.contains("layers.2.mixer.A_log"))
        #expect(try CalmMamba.succeed(["experts", "register", "\(dir)/mamba.h5", "--name", "mamba-again", "--domain", "test",
                                       "--registry", experts]).contains("registered mamba-again"))
        #expect(try CalmMamba.succeed(["experts", "list", "--registry", experts]).contains("mamba-again"))
        #expect(try CalmMamba.succeed(["experts", "verify", "--registry", experts]).contains("matches"))

        // forward writes the model's logits.
        let ids = [0, 53, 283, 362]
        try CalmMamba.succeed(["forward", "--model", "\(dir)/mamba.h5", "--tokens", ids.map(String.init).joined(separator: " "),
                               "--output", "\(dir)/logits.h5"])
        let file = try HDF5File.open("\(dir)/logits.h5")
        let (shape, logits) = try file.readFloats("logits")
        try file.close()
        let model = try MambaHuggingFace.load(directory: Fixtures.mamba("mamba-tied")).model
        #expect(shape == [ids.count, model.config.vocabSize])
        #expect(maxDifference(logits, model.logits(.init(ids)).data) <= 1e-6)

        try CalmMamba.succeed(["generate", "--model", "\(dir)/mamba.h5", "--prompt", "The model", "--max-tokens", "4"])
        let data = "\(dir)/dc.jsonl"
        let lines = (0..<8).map { i in "{\"prompt\": \"The model reads \(i % 4)\", \"completion\": \" facts\"}" }
        try lines.joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)
        #expect(try CalmMamba.succeed(["eval", "--model", "\(dir)/mamba.h5", "--data", data, "--limit", "2"]).contains("accuracy"))

        try CalmMamba.succeed(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "mamba", "--registry", experts,
                               "--data", data, "--connections", "1:2", "--steps", "2", "--batch-size", "2",
                               "--output", "\(dir)/composition.h5"])
        try CalmMamba.succeed(["generate", "--composition", "\(dir)/composition.h5", "--registry", experts,
                               "--prompt", "The model", "--max-tokens", "3"])
        #expect(try CalmMamba.succeed(["eval", "--composition", "\(dir)/composition.h5", "--registry", experts,
                                       "--data", data, "--limit", "2"]).contains("accuracy"))
        let composition = try CalmMamba.succeed(["inspect", "\(dir)/composition.h5"])
        #expect(composition.contains("augment:     mamba (mamba, hash"))
        #expect(composition.contains("augment mamba decoding state"))
    }

    /// Commands that only handle transformers (quantize, export, pretrain) name the architecture
    /// in one line instead of misreading the configuration.
    @Test func transformerOnlyCommandsRefuseMambaByName() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try CalmMamba.succeed(["convert", Fixtures.mamba("mamba-untied"), "\(dir)/mamba.h5"])
        for arguments in [["quantize", "\(dir)/mamba.h5", "\(dir)/q.h5", "--type", "q8_0"], ["export", "\(dir)/mamba.h5", "\(dir)/hf"]] {
            let result = try CalmMamba.run(arguments)
            #expect(result.status != 0)
            #expect(result.stderr.contains("mamba.h5: model_type \"mamba\" is not a transformer"), "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/q.h5"))
    }

    /// A broken Mamba directory is one error line naming the file and the field; nothing is written.
    @Test func aBadDirectoryIsOneErrorLine() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = "\(dir)/hf"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for file in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: "\(Fixtures.mamba("mamba-tied"))/\(file)", toPath: "\(source)/\(file)")
        }
        try #"{"model_type": "mamba", "hidden_size": 32, "num_hidden_layers": 3, "vocab_size": 422, "state_size": 8, "hidden_act": "relu"}"#
            .write(toFile: "\(source)/config.json", atomically: true, encoding: .utf8)
        let result = try CalmMamba.run(["convert", source, "\(dir)/out.h5"])
        #expect(result.status != 0)
        #expect(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("config.json: hidden_act \"relu\" is not supported"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.h5"))
    }
}
