import CALMCheckpoint
import CALMComposition
import CALMHuggingFace
import Foundation
import Testing

/// `calm convert` / `calm export` / composing converted models, through the executable.
@Suite("calm convert and export", .serialized)
struct ConversionCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/hf").standardized.path

    @Test func convertRegisterComposeAndExport() throws {
        let dir = try makeTemporaryDirectory()
        let registry = ["--registry", "\(dir)/experts"]
        // Two models of different widths (32 and 48) sharing one SentencePiece-style tokenizer.
        let expert = try CLI.run(["convert", "\(Self.fixtures)/llama2", "\(dir)/llama2.h5", "--register", "small",
                                  "--domain", "text", "--description", "tiny llama 2"] + registry)
        #expect(expert.status == 0, "\(expert.stderr)")
        #expect(expert.stdout.contains("5 safetensors file(s)") && expert.stdout.contains("registered small"))
        let anchor = try CLI.run(["convert", "\(Self.fixtures)/tinyllama", "\(dir)/anchor.h5"])
        #expect(anchor.status == 0, "\(anchor.stderr)")
        let gpt2 = try CLI.run(["convert", "\(Self.fixtures)/gpt2", "\(dir)/gpt2.h5", "--register", "other-tokenizer",
                                "--domain", "text"] + registry)
        #expect(gpt2.status == 0, "\(gpt2.stderr)")

        let lines = (0..<40).map { i in "{\"prompt\": \"Der Fuchs \(i % 5) springt\", \"completion\": \" über den Hund.\"}" }
        try lines.joined(separator: "\n").write(toFile: "\(dir)/dc.jsonl", atomically: true, encoding: .utf8)
        let compose = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "small", "--data", "\(dir)/dc.jsonl",
                                   "--output", "\(dir)/comp.h5", "--steps", "30", "--batch-size", "8", "--lr", "1e-2",
                                   "--warmup", "5", "--no-resume-state"] + registry)
        #expect(compose.status == 0, "\(compose.stderr)")
        #expect(try !HDF5File.open("\(dir)/comp.h5").exists("training"))
        let loss = try CLI.run(["eval", "--composition", "\(dir)/comp.h5", "--data", "\(dir)/dc.jsonl", "--json"] + registry)
        #expect(loss.status == 0, "\(loss.stderr)")
        let generated = try CLI.run(["generate", "--composition", "\(dir)/comp.h5", "--prompt", "Der Fuchs", "--max-tokens", "4"] + registry)
        #expect(generated.status == 0, "\(generated.stderr)")

        // A different tokenizer registers, but composing with it is refused.
        let refused = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "other-tokenizer", "--data",
                                   "\(dir)/dc.jsonl", "--output", "\(dir)/bad.h5", "--steps", "1"] + registry)
        #expect(refused.status != 0 && refused.stderr.contains("different tokenizer") && refused.stderr.contains("token by token"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/bad.h5"))

        let exported = try CLI.run(["export", "\(dir)/comp.h5", "\(dir)/comp-out"] + registry)
        #expect(exported.status == 0, "\(exported.stderr)")
        let weights = try SafetensorsFile.open("\(dir)/comp-out/composition.safetensors")
        let composition = try CompositionCheckpoint.load("\(dir)/comp.h5", resolver: ModelResolver(registryOverride: "\(dir)/experts"))
        #expect(weights.names == composition.model.parameters.map(\.name).sorted())
        for (name, tensor) in composition.model.parameters { #expect(try weights.floats(name).data == tensor.data) }
        let description = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/comp-out/composition.json"))) as? [String: Any]
        let spec = description?["spec"] as? [String: Any]
        #expect((spec?["augments"] as? [[String: Any]])?.first?["name"] as? String == "small")
    }

    @Test func forwardOnTextMatchesTheGoldenLogits() throws {
        let dir = try makeTemporaryDirectory()
        #expect(try CLI.run(["convert", "\(Self.fixtures)/gemma", "\(dir)/gemma.h5"]).status == 0)
        let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/gemma/golden.json"))) as? [String: Any]
        let text = golden?["text"] as? String ?? ""
        let run = try CLI.run(["forward", "--model", "\(dir)/gemma.h5", "--text", text, "--output", "\(dir)/logits.h5"])
        #expect(run.status == 0, "\(run.stderr)")
        let file = try HDF5File.open("\(dir)/logits.h5")
        let (_, tokens) = try file.readInt64s("tokens")
        #expect(tokens.map(Int.init) == golden?["input_ids"] as? [Int])
        let (_, logits) = try file.readFloats("logits")
        let expected = try SafetensorsFile.open("\(Self.fixtures)/gemma/golden.safetensors").floats("logits").data
        #expect(logits.count == expected.count)
        #expect((zip(logits, expected).map { abs($0 - $1) }.max() ?? 1) < 1e-4)
    }

    @Test func badSourcesGiveOneLineErrors() throws {
        let dir = try makeTemporaryDirectory()
        let missing = try CLI.run(["convert", "\(dir)/nowhere", "\(dir)/out.h5"])
        #expect(missing.status != 0 && missing.stderr.contains("\(dir)/nowhere") && missing.stderr.contains("not a directory"))
        try FileManager.default.createDirectory(atPath: "\(dir)/model", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/qwen2/config.json", toPath: "\(dir)/model/config.json")
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/qwen2/tokenizer.json", toPath: "\(dir)/model/tokenizer.json")
        var weights = try Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/qwen2/model.safetensors"))
        weights = weights.prefix(weights.count - 100)  // truncated download
        try weights.write(to: URL(fileURLWithPath: "\(dir)/model/model.safetensors"))
        let truncated = try CLI.run(["convert", "\(dir)/model", "\(dir)/out.h5"])
        #expect(truncated.status != 0 && truncated.stderr.contains("model.safetensors") && truncated.stderr.contains("data section"))
        #expect(truncated.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.h5"))
        let noDomain = try CLI.run(["convert", "\(Self.fixtures)/qwen2", "\(dir)/out.h5", "--register", "x"])
        #expect(noDomain.status != 0 && noDomain.stderr.contains("--domain"))
    }
}
