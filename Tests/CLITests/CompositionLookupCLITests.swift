import CALMComposition
import Foundation
import Testing

/// A composition finds its anchor and experts from any working directory, and says where it
/// looked when it cannot.
@Suite("finding a composition's models", .serialized)
struct CompositionLookupCLITests {
    /// Runs `calm` from `directory` (not the repository root), with no registry in the environment.
    func run(_ arguments: [String], in directory: String) throws -> CLI.Result {
        try CLI.run(arguments, environment: ["CALM_EXPERTS": ""], directory: directory)
    }

    @Test func aCompositionFindsItsModelsFromAnyDirectory() throws {
        let dir = try CompositionCLITests.setup.get()
        let elsewhere = try makeTemporaryDirectory()
        let compose = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--data", "\(dir)/dc.jsonl",
                                   "--output", "\(dir)/lookup.h5", "--steps", "2", "--registry", "\(dir)/experts"])
        #expect(compose.status == 0, "\(compose.stderr)")
        // No --lr: the width-scaled default, said once.
        #expect(compose.stderr.contains("learning rate 0.003 (the default for an anchor of width 32"), "\(compose.stderr)")
        #expect(CompositionJob.defaultLearningRate(anchorWidth: 576) == 3e-3 * 128 / 576)
        let prompt = ["--prompt", "c +", "--max-tokens", "2"]
        let reference = try CLI.run(["generate", "--composition", "\(dir)/lookup.h5", "--registry", "\(dir)/experts"] + prompt)
        #expect(reference.status == 0, "\(reference.stderr)")

        // In place, run from another directory with no flags: the stored anchor path and the
        // recorded registry are relative to the composition, not to the working directory.
        let inPlace = try run(["generate", "--composition", "\(dir)/lookup.h5"] + prompt, in: elsewhere)
        #expect(inPlace.status == 0, "\(inPlace.stderr)")
        #expect(inPlace.stdout == reference.stdout)

        // Moved away from its models: one line naming the composition, the role and where it looked.
        try FileManager.default.createDirectory(atPath: "\(elsewhere)/moved", withIntermediateDirectories: true)
        let moved = "\(elsewhere)/moved/lookup.h5"
        try FileManager.default.copyItem(atPath: "\(dir)/lookup.h5", toPath: moved)
        let lost = try run(["generate", "--composition", moved] + prompt, in: elsewhere)
        #expect(lost.status != 0)
        #expect(lost.stderr.split(separator: "\n").count == 1, "\(lost.stderr)")
        #expect(lost.stderr.contains(moved) && lost.stderr.contains("anchor not found") && lost.stderr.contains("\(elsewhere)/moved/anchor.h5: no such file")
                && lost.stderr.contains("--anchor"), "\(lost.stderr)")

        // --anchor finds the anchor; the expert is then the missing piece, named with its role.
        let noExpert = try run(["generate", "--composition", moved, "--anchor", "\(dir)/anchor.h5"] + prompt, in: elsewhere)
        #expect(noExpert.status != 0 && noExpert.stderr.contains("expert kv not found") && noExpert.stderr.contains("registry"),
                "\(noExpert.stderr)")
        let found = try run(["generate", "--composition", moved, "--anchor", "\(dir)/anchor.h5", "--registry", "\(dir)/experts"] + prompt,
                            in: elsewhere)
        #expect(found.status == 0 && found.stdout == reference.stdout, "\(found.stderr)")

        // A wrong --anchor is refused by content hash.
        let wrong = try run(["generate", "--composition", moved, "--anchor", "\(dir)/expert.h5", "--registry", "\(dir)/experts"] + prompt,
                            in: elsewhere)
        #expect(wrong.status != 0 && wrong.stderr.contains("has changed"), "\(wrong.stderr)")

        // An anchor registered in the registry is found by its content hash.
        let registry = "\(elsewhere)/registry"
        for (file, name) in [("anchor.h5", "base"), ("expert.h5", "kv")] {
            let r = try CLI.run(["experts", "register", "\(dir)/\(file)", "--name", name, "--domain", "d", "--registry", registry])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let byHash = try run(["generate", "--composition", moved, "--registry", registry] + prompt, in: elsewhere)
        #expect(byHash.status == 0 && byHash.stdout == reference.stdout, "\(byHash.stderr)")
    }
}
