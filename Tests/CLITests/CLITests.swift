import CALMCheckpoint
import CALMModels
import CALMTensor
import Foundation
import Testing

/// Runs the built `calm` executable, as a user would.
struct CLI {
    static let executable: String = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("calm").path
        if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        return root.appendingPathComponent(".build/debug/calm").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The package root (for the shipped checkpoints).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    /// Runs `calm`; `directory` is its working directory (default: this process's).
    static func run(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
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
}

func makeTemporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-cli-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("calm command line", .serialized)
struct CLITests {
    /// A tiny model trained by `calm pretrain` (shared by the tests below).
    static let trained: Result<(dir: String, model: String), any Error> = Result {
        let dir = try makeTemporaryDirectory()
        let lines = (0..<300).map { i in "{\"prompt\": \"\(i % 7) +\", \"completion\": \" \(i % 7 + 1)\"}" }
        try lines.joined(separator: "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        let result = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/model.h5",
                                  "--steps", "120", "--batch-size", "16", "--seq-len", "16", "--layers", "1",
                                  "--hidden", "32", "--heads", "2", "--lr", "1e-2", "--warmup", "10"])
        guard result.status == 0 else { throw CLIFailure(result.stderr) }
        return (dir, "\(dir)/model.h5")
    }

    struct CLIFailure: Error { let message: String; init(_ m: String) { message = m } }

    @Test func pretrainGenerateEvalForwardInspect() throws {
        let (dir, model) = try Self.trained.get()
        // The learned task: "n +" is followed by " n+1".
        let generated = try CLI.run(["generate", "--model", model, "--prompt", "3 +", "--max-tokens", "4"])
        #expect(generated.status == 0)
        #expect(generated.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "4")

        try (0..<7).map { "{\"prompt\": \"\($0) +\", \"completion\": \" \($0 + 1)\"}" }.joined(separator: "\n")
            .write(toFile: "\(dir)/eval.jsonl", atomically: true, encoding: .utf8)
        let eval = try CLI.run(["eval", "--model", model, "--data", "\(dir)/eval.jsonl", "--json"])
        #expect(eval.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        #expect(report["count"] as? Int == 7)
        #expect((report["accuracy"] as? Double ?? 0) >= 0.85)
        // Teacher forcing reaches greedy decoding's verdict on right and wrong references alike.
        try (0..<7).flatMap { ["{\"prompt\": \"\($0) +\", \"completion\": \" \($0 + 1)\"}", "{\"prompt\": \"\($0) +\", \"completion\": \" \($0 + 2)\"}"] }
            .joined(separator: "\n").write(toFile: "\(dir)/mixed.jsonl", atomically: true, encoding: .utf8)
        let greedy = try CLI.run(["eval", "--model", model, "--data", "\(dir)/mixed.jsonl"])
        let forced = try CLI.run(["eval", "--model", model, "--data", "\(dir)/mixed.jsonl", "--teacher-forced"])
        #expect(greedy.status == 0 && forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout == greedy.stdout && greedy.stdout.contains("/14)"), "\(greedy.stdout) vs \(forced.stdout)")
        // Without end-of-sequence, " n+1" followed by anything counts; a wrong digit still does not.
        let prefix = try CLI.run(["eval", "--model", model, "--data", "\(dir)/mixed.jsonl", "--teacher-forced", "--prefix"])
        #expect(prefix.stdout.contains("accuracy 0.5000 (7/14)") || prefix.stdout.contains("(6/14)"), "\(prefix.stdout)")

        let forward = try CLI.run(["forward", "--model", model, "--tokens", "1 5 4 6", "--output", "\(dir)/logits.h5"])
        #expect(forward.status == 0)
        let (shape, logits) = try HDF5File.open("\(dir)/logits.h5").readFloats("logits")
        let lm = try ModelCheckpoint.load(model).model
        #expect(shape == [4, lm.config.vocabSize])
        #expect(logits == lm.forward(TokenBatch([1, 5, 4, 6])).logits!.data)

        let inspect = try CLI.run(["inspect", model])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("layers.0.attn.q_proj.weight"))
        #expect(inspect.stdout.contains("resumable state after 120 steps"))
    }

    @Test func unseenTokensCanStartAndStayAtZero() throws {
        let dir = try makeTemporaryDirectory()
        let lines = (0..<50).map { i in "{\"prompt\": \"\(i % 5) +\", \"completion\": \" \(i % 5 + 1)\"}" }
        try lines.joined(separator: "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        // The tokenizer also knows letters the data never uses.
        try "0123456789 +abcxyz".write(toFile: "\(dir)/chars.txt", atomically: true, encoding: .utf8)
        let run = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/z.h5", "--tokenizer-from",
                               "\(dir)/chars.txt", "--steps", "5", "--seq-len", "8", "--layers", "1", "--hidden", "16",
                               "--heads", "2", "--zero-unseen-embeddings"])
        #expect(run.status == 0, "\(run.stderr)")
        let checkpoint = try ModelCheckpoint.load("\(dir)/z.h5")
        let width = checkpoint.model.config.hiddenSize
        let rows = checkpoint.model.tokenEmbedding.data
        for c in ["a", "b", "c", "x", "y", "z"] {
            let id = checkpoint.tokenizer.encode(c)[0]
            #expect(rows[(id * width)..<((id + 1) * width)].allSatisfy { $0 == 0 }, "\(c)")
        }
        let seen = checkpoint.tokenizer.encode("3")[0]
        #expect(rows[(seen * width)..<((seen + 1) * width)].contains { $0 != 0 })
    }

    @Test func pretrainResumesFromItsCheckpoint() throws {
        let (dir, model) = try Self.trained.get()
        let resumed = try CLI.run(["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/more.h5", "--resume", model,
                                   "--steps", "130", "--seq-len", "16"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let file = try HDF5File.open("\(dir)/more.h5")
        #expect(try file.intAttribute("optimizer_steps", of: "training") == 130)
    }

    @Test func everyReaderRejectsDamagedCheckpointsWithOneLine() throws {
        let (dir, model) = try Self.trained.get()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        let truncated = "\(dir)/truncated.h5", corrupt = "\(dir)/corrupt.h5", missing = "\(dir)/missing.h5"
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: truncated))
        var flipped = bytes
        for i in stride(from: 0, to: bytes.count, by: 61) { flipped[i] ^= 0x5A }
        try flipped.write(to: URL(fileURLWithPath: corrupt))
        for bad in [truncated, corrupt, missing] {
            let commands: [[String]] = [
                ["generate", "--model", bad, "--prompt", "1 +"],
                ["eval", "--model", bad, "--data", "\(dir)/train.jsonl"],
                ["forward", "--model", bad, "--tokens", "1 2", "--output", "\(dir)/never.h5"],
                ["inspect", bad],
                ["pretrain", "--data", "\(dir)/train.jsonl", "--output", "\(dir)/never.h5", "--resume", bad, "--seq-len", "16"],
            ]
            for command in commands {
                let result = try CLI.run(command)
                let lines = result.stderr.split(separator: "\n")
                #expect(result.status != 0, "\(command) succeeded on \(bad)")
                #expect(lines.count == 1, "\(command): \(result.stderr)")
                #expect(result.stderr.contains(bad), "\(command): \(result.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.h5"))
    }

    @Test func badUserInputGetsClearErrors() throws {
        let (dir, model) = try Self.trained.get()
        try "{\"prompt\": \"1 +\", \"completion\": \" 2\"}\nnot json\n".write(toFile: "\(dir)/bad.jsonl", atomically: true, encoding: .utf8)
        let eval = try CLI.run(["eval", "--model", model, "--data", "\(dir)/bad.jsonl"])
        #expect(eval.status != 0)
        #expect(eval.stderr.contains("bad.jsonl:2: malformed JSON line"))
        let tokens = try CLI.run(["forward", "--model", model, "--tokens", "1 x", "--output", "\(dir)/o.h5"])
        #expect(tokens.status != 0 && tokens.stderr.contains("\"x\" is not an integer"))
        let range = try CLI.run(["forward", "--model", model, "--tokens", "1 99999", "--output", "\(dir)/o.h5"])
        #expect(range.status != 0 && range.stderr.contains("outside the vocabulary"))
        let sampling = try CLI.run(["generate", "--model", model, "--prompt", "1", "--top-p", "1.5"])
        #expect(sampling.status != 0 && sampling.stderr.contains("top-p"))
        let missingData = try CLI.run(["pretrain", "--data", "\(dir)/nope.txt", "--output", "\(dir)/o.h5"])
        #expect(missingData.status != 0 && missingData.stderr.contains("nope.txt"))
    }

    @Test func everyCommandHasHelp() throws {
        for command in ["pretrain", "generate", "eval", "forward", "inspect"] {
            let result = try CLI.run([command, "--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("USAGE"))
        }
    }
}
