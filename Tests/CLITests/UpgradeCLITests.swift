import CALMCheckpoint
import CALMModels
import CALMTokenizers
import Foundation
import Testing

/// Older checkpoints load with a note, `calm upgrade` brings them to the current layout without
/// changing a tensor, and `calm experts verify` recomputes content hashes.
@Suite("calm upgrade and experts verify", .serialized)
struct UpgradeCLITests {
    @Test func upgradeKeepsEveryTensorAndAddsChecksums() throws {
        let (dir, model) = try CLITests.trained.get()
        // The same model in the layout written before checksums and stored content hashes.
        let source = try ModelCheckpoint.load(model)
        let legacy = "\(dir)/upgrade-legacy.h5"
        try writeLegacyCopy(of: model, to: legacy)

        let prompt = ["--prompt", "3 +", "--max-tokens", "2"]
        let before = try CLI.run(["generate", "--model", legacy] + prompt)
        #expect(before.status == 0 && before.stderr.contains("carries no checksums"), "\(before.stderr)")
        let upgraded = try CLI.run(["upgrade", legacy])
        #expect(upgraded.status == 0 && upgraded.stdout.contains("upgraded"), "\(upgraded.stderr)")
        let after = try CLI.run(["generate", "--model", legacy] + prompt)
        #expect(after.status == 0 && !after.stderr.contains("checksums") && after.stdout == before.stdout, "\(after.stderr)")
        #expect(try CLI.run(["inspect", legacy]).stdout.contains("checksums:   present"))
        let reloaded = try ModelCheckpoint.load(legacy)
        #expect(reloaded.model.parameters.map(\.tensor.data) == source.model.parameters.map(\.tensor.data))
        #expect(reloaded.storedContentHash == (try source.contentHash()))
    }

    @Test func verifyRecomputesContentHashes() throws {
        let (dir, model) = try CLITests.trained.get()
        let registry = ["--registry", "\(dir)/verify-registry"]
        #expect(try CLI.run(["experts", "register", model, "--name", "m", "--domain", "d"] + registry).status == 0)
        let ok = try CLI.run(["experts", "verify"] + registry)
        #expect(ok.status == 0 && ok.stdout.contains("m: ok"), "\(ok.stdout)\(ok.stderr)")
        // A manifest whose recorded hash no longer matches the model is reported.
        let manifest = "\(dir)/verify-registry/experts.json"
        let text = try String(contentsOfFile: manifest, encoding: .utf8)
        let hash = try ModelCheckpoint.load(model).contentHash()
        try text.replacingOccurrences(of: hash, with: String(repeating: "0", count: 64))
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["experts", "verify", "m"] + registry)
        #expect(bad.status != 0 && bad.stderr.split(separator: "\n").count == 1, "\(bad.stdout)\(bad.stderr)")
    }
}
