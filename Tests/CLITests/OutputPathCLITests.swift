import Foundation
import Testing

/// Every command checks where it will write before doing any work: a missing directory or a
/// directory given as a file is a one-line error naming the option, and nothing is written.
@Suite("output paths are checked first")
struct OutputPathCLITests {
    @Test func everyWriterRefusesABadOutputBeforeWorking() throws {
        let (dir, model) = try CLITests.trained.get()
        let missing = "\(dir)/no-such-dir/out.h5"
        let cases: [(command: [String], option: String)] = [
            (["pretrain", "--data", "\(dir)/train.jsonl", "--output", missing, "--steps", "500", "--seq-len", "16"], "--output"),
            (["pretrain", "--data", "\(dir)/train.jsonl", "--output", dir, "--steps", "500", "--seq-len", "16"], "--output"),
            (["compose", "--anchor", model, "--expert", "kv", "--data", "\(dir)/train.jsonl", "--output", missing], "--output"),
            (["convert", "\(dir)/anywhere", missing], "<output>"),
            (["export", model, "\(dir)/train.jsonl/sub"], "<output-directory>"),
            (["forward", "--model", model, "--tokens", "1 2", "--output", missing], "--output"),
            // Checked before the (here missing) composition is even looked at.
            (["eval", "--composition", "\(dir)/none.h5", "--data", "\(dir)/train.jsonl", "--gates", missing], "--gates"),
            (["data", "kv", "--out", "\(dir)/train.jsonl"], "--out"),
            (["demo", "--plot", dir, "--work", "\(dir)/demo-work"], "--plot"),
        ]
        for (command, option) in cases {
            let result = try CLI.run(command)
            #expect(result.status != 0, "\(command) succeeded")
            // Refused up front: stderr is the error line alone, so no model was loaded and no
            // training step ran (progress and notes would be logged there).
            #expect(result.stderr.hasPrefix("Error: \(option) ") && result.stderr.split(separator: "\n").count == 1,
                    "\(command): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/no-such-dir"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/demo-work"))
    }
}
