import CALMCheckpoint
import CALMHuggingFace
import Foundation
import Testing

/// `calm convert MODEL.gguf`, through the executable.
@Suite("calm convert GGUF", .serialized)
struct GGUFCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/gguf").standardized.path

    @Test func convertRegisterAndForwardAGGUFModel() throws {
        let dir = try makeTemporaryDirectory()
        let run = try CLI.run(["convert", "\(Self.fixtures)/llama-q.gguf", "\(dir)/llama.h5", "--register", "tiny-gguf",
                               "--domain", "text", "--registry", "\(dir)/experts"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("GGUF llama: 2 layers") && run.stdout.contains("1 Q2_K") && run.stdout.contains("chat template"))
        #expect(run.stdout.contains("registered tiny-gguf"))
        let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/golden.json"))) as? [String: Any]
        let ids = try #require((golden?["llama-q"] as? [String: Any])?["input_ids"] as? [Int])
        let forward = try CLI.run(["forward", "--model", "\(dir)/llama.h5", "--tokens", ids.map(String.init).joined(separator: " "),
                                   "--output", "\(dir)/logits.h5"])
        #expect(forward.status == 0, "\(forward.stderr)")
        let (_, logits) = try HDF5File.open("\(dir)/logits.h5").readFloats("logits")
        let expected = try SafetensorsFile.open("\(Self.fixtures)/golden.safetensors").floats("llama-q").data
        #expect(logits.count == expected.count && (zip(logits, expected).map { abs($0 - $1) }.max() ?? 1) < 1e-4)

        // Recognised by its magic under another name.
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/gpt2.gguf", toPath: "\(dir)/model.bin")
        let byMagic = try CLI.run(["convert", "\(dir)/model.bin", "\(dir)/gpt2.h5"])
        #expect(byMagic.status == 0 && byMagic.stdout.contains("GGUF gpt2"), "\(byMagic.stderr)")
    }

    @Test func damagedGGUFFilesGiveOneLineErrors() throws {
        let dir = try makeTemporaryDirectory()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/qwen2.gguf"))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: "\(dir)/cut.gguf"))
        let truncated = try CLI.run(["convert", "\(dir)/cut.gguf", "\(dir)/out.h5"])
        #expect(truncated.status != 0 && truncated.stderr.contains("\(dir)/cut.gguf: tensor") && truncated.stderr.contains("file truncated?"))
        #expect(truncated.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.h5"))
        let missing = try CLI.run(["convert", "\(dir)/absent.gguf", "\(dir)/out.h5"])
        #expect(missing.status != 0 && missing.stderr.contains("\(dir)/absent.gguf: GGUF file does not exist"))
    }
}
