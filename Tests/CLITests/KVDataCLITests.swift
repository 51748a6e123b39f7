import Foundation
import Testing

/// `calm data kv` must never replace a key map (the shipped ones describe the shipped models)
/// unless asked to.
@Suite("calm data kv and key maps", .serialized)
struct KVDataCLITests {
    /// Small sets, so each run takes a moment.
    static let small = ["--numeric-examples", "20", "--substitution-examples", "20", "--definition-passes", "1",
                        "--dc-examples", "20", "--dc-substitution-examples", "5", "--eval-examples", "10"]

    func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test func keyMapsGoBesideTheDataAndShippedMapsStayUntouched() throws {
        // A working directory that looks like the repository: checkpoints/kv/kv.json is "shipped".
        let dir = try makeTemporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(dir)/checkpoints/kv", withIntermediateDirectories: true)
        try "shipped".write(toFile: "\(dir)/checkpoints/kv/kv.json", atomically: true, encoding: .utf8)

        let run = try CLI.run(["data", "kv", "--out", "scratch/kv", "--keys", "50"] + Self.small, directory: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(read("\(dir)/checkpoints/kv/kv.json") == "shipped")
        #expect(read("\(dir)/scratch/kv/kv.json")?.contains("held_in") == true)
        #expect(run.stdout.contains("key maps to scratch/kv"))

        // The same settings again: the identical map is left alone, so no --force is needed.
        let again = try CLI.run(["data", "kv", "--out", "scratch/kv", "--keys", "50"] + Self.small, directory: dir)
        #expect(again.status == 0, "\(again.stderr)")

        // Asking for the shipped directory explicitly with other keys is refused without --force,
        // with one line naming the file, and nothing is written.
        let explicit = try CLI.run(["data", "kv", "--out", "scratch/other", "--map-dir", "checkpoints/kv", "--keys", "50"] + Self.small,
                                   directory: dir)
        #expect(explicit.status != 0)
        #expect(explicit.stderr.split(separator: "\n").count == 1 && explicit.stderr.contains("checkpoints/kv/kv.json")
                && explicit.stderr.contains("--force"), "\(explicit.stderr)")
        #expect(read("\(dir)/checkpoints/kv/kv.json") == "shipped")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/scratch/other"))

        let forced = try CLI.run(["data", "kv", "--out", "scratch/other", "--map-dir", "checkpoints/kv", "--keys", "50", "--force"]
                                 + Self.small, directory: dir)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(read("\(dir)/checkpoints/kv/kv.json")?.contains("held_in") == true)
    }

    @Test func otherKeysIntoAnExistingMapAreRefused() throws {
        let dir = try makeTemporaryDirectory()
        #expect(try CLI.run(["data", "kv", "--out", "\(dir)/d", "--keys", "40"] + Self.small).status == 0)
        let before = read("\(dir)/d/kv.json"), vocabulary = read("\(dir)/d/vocab.json")
        let refused = try CLI.run(["data", "kv", "--out", "\(dir)/d", "--keys", "60"] + Self.small)
        #expect(refused.status != 0 && refused.stderr.contains("\(dir)/d/kv.json"), "\(refused.stderr)")
        #expect(read("\(dir)/d/kv.json") == before && read("\(dir)/d/vocab.json") == vocabulary)
    }

    @Test func theDemoScriptsNameTheShippedMapDirectoryExplicitly() throws {
        // Scripts that regenerate the shipped data must say where the shipped maps are.
        let script = try String(contentsOfFile: "\(CLI.root)/scripts/train_kv_models.sh", encoding: .utf8)
        for line in script.split(separator: "\n") where line.contains("data kv") {
            #expect(line.contains("--map-dir checkpoints/kv"), "\(line)")
        }
    }
}
