import CALMCheckpoint
import CALMComposition
import Foundation
import Testing

@Suite("calm compose and the expert registry", .serialized)
struct CompositionCLITests {
    /// Anchor and expert trained by `calm pretrain` sharing one tokenizer, the expert registered.
    static let setup: Result<String, any Error> = Result {
        let dir = try makeTemporaryDirectory()
        func write(_ name: String, _ lines: [String]) throws {
            try lines.joined(separator: "\n").write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        }
        let keys = Array("abcdefgh").map(String.init), values = ["3", "7", "1", "9", "0", "4", "8", "2"]
        try write("vocab.txt", ["abcdefgh0123456789 +=>"])
        try write("anchor.jsonl", (0..<200).map { "{\"prompt\": \"\($0 % 10) +\", \"completion\": \" \($0 % 10)\"}" })
        try write("expert.jsonl", (0..<200).map { "{\"prompt\": \"\(keys[$0 % 8]) =\", \"completion\": \" \(values[$0 % 8])\"}" })
        try write("dc.jsonl", (0..<8).map { "{\"prompt\": \"\(keys[$0]) +\", \"completion\": \" \(values[$0])\"}" })
        let common = ["--steps", "80", "--batch-size", "16", "--seq-len", "12", "--lr", "1e-2", "--warmup", "5", "--heads", "2"]
        // The anchor's characters come from vocab.txt; the expert reuses the anchor's tokenizer.
        for (name, data, tokenizer) in [("anchor", "anchor.jsonl", "vocab.txt"), ("expert", "expert.jsonl", "anchor.h5")] {
            let r = try CLI.run(["pretrain", "--data", "\(dir)/\(data)", "--output", "\(dir)/\(name).h5", "--layers", "2",
                                 "--hidden", "32", "--tokenizer-from", "\(dir)/\(tokenizer)"] + common)
            guard r.status == 0 else { throw CLITests.CLIFailure(r.stderr) }
        }
        let reg = try CLI.run(["experts", "register", "\(dir)/expert.h5", "--name", "kv", "--domain", "kv", "--registry", "\(dir)/experts"])
        guard reg.status == 0 else { throw CLITests.CLIFailure(reg.stderr) }
        return dir
    }

    @Test func composeThenUseTheComposition() throws {
        let dir = try Self.setup.get()
        let registry = ["--registry", "\(dir)/experts"]
        let list = try CLI.run(["experts", "list"] + registry)
        #expect(list.status == 0 && list.stdout.contains("kv") && list.stdout.contains("llama"))
        let show = try CLI.run(["experts", "show", "kv"] + registry)
        #expect(show.status == 0 && show.stdout.contains("content hash:"))

        let anchorHash = try ArchitectureRegistry.recomputedHash(try ArchitectureRegistry.load("\(dir)/anchor.h5"))
        let expertHash = try ArchitectureRegistry.recomputedHash(try ExpertRegistry(directory: "\(dir)/experts").load("kv").model)
        let compose = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--data", "\(dir)/dc.jsonl",
                                   "--output", "\(dir)/comp.h5", "--steps", "150", "--batch-size", "8", "--lr", "1e-2",
                                   "--warmup", "10", "--connections", "0:1"] + registry)
        #expect(compose.status == 0, "\(compose.stderr)")
        // The frozen models are untouched by composition training.
        #expect(try ArchitectureRegistry.recomputedHash(try ArchitectureRegistry.load("\(dir)/anchor.h5")) == anchorHash)
        #expect(try ArchitectureRegistry.recomputedHash(try ExpertRegistry(directory: "\(dir)/experts").load("kv").model) == expertHash)
        #expect(compose.stdout.contains("trainable parameters") && compose.stdout.contains("resident memory"))

        let inspect = try CLI.run(["inspect", "\(dir)/comp.h5"])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("kind composition"))
        #expect(inspect.stdout.contains("connections (anchor:augment) 0:1"))
        #expect(inspect.stdout.contains("gate statistics"))
        #expect(inspect.stdout.contains("augments.0.connections.0.o_proj.weight"))

        let eval = try CLI.run(["eval", "--composition", "\(dir)/comp.h5", "--data", "\(dir)/dc.jsonl", "--json",
                                "--gates", "\(dir)/gates.jsonl"] + registry)
        #expect(eval.status == 0, "\(eval.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as! [String: Any]
        #expect((report["accuracy"] as? Double ?? 0) >= 0.75)
        let gateLines = try String(contentsOfFile: "\(dir)/gates.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(gateLines.count == 8)
        let first = try JSONSerialization.jsonObject(with: Data(gateLines[0].utf8)) as! [String: Any]
        let gates = first["gates"] as! [String: [Double]]
        let tokens = first["tokens"] as! [String]
        #expect(gates["kv@0:1"]?.count == tokens.count)

        let generate = try CLI.run(["generate", "--composition", "\(dir)/comp.h5", "--prompt", "c +", "--max-tokens", "3"] + registry)
        #expect(generate.status == 0 && generate.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        // The environment variable names the registry too.
        let viaEnv = try CLI.run(["forward", "--composition", "\(dir)/comp.h5", "--tokens", "1 5 6", "--output", "\(dir)/l.h5"],
                                 environment: ["CALM_EXPERTS": "\(dir)/experts"])
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")
        #expect(try HDF5File.open("\(dir)/l.h5").shape(of: "logits").first == 3)
    }

    @Test func registryAndCompositionErrors() throws {
        let dir = try Self.setup.get()
        let registry = ["--registry", "\(dir)/experts"]
        func oneLineError(_ args: [String], contains text: String) throws {
            let r = try CLI.run(args)
            #expect(r.status != 0, "\(args) succeeded")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(text), "\(args): \(r.stderr)")
        }
        try oneLineError(["experts", "register", "\(dir)/expert.h5", "--name", "kv", "--domain", "kv"] + registry, contains: "already registered")
        try oneLineError(["experts", "register", "\(dir)/nope.h5", "--name", "x", "--domain", "kv"] + registry, contains: "no such file")
        try oneLineError(["experts", "show", "ghost"] + registry, contains: "no expert named \"ghost\"")
        try oneLineError(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "ghost", "--data", "\(dir)/dc.jsonl",
                          "--output", "\(dir)/x.h5"] + registry, contains: "no expert named")
        try oneLineError(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--data", "\(dir)/dc.jsonl",
                          "--output", "\(dir)/x.h5", "--connections", "9:0"] + registry, contains: "anchor layer 9")

        // An expert with another tokenizer registers, but does not compose.
        let other = try CLI.run(["pretrain", "--data", "\(dir)/expert.jsonl", "--output", "\(dir)/foreign.h5", "--steps", "2",
                                 "--seq-len", "12", "--layers", "1", "--hidden", "16", "--heads", "2"])
        #expect(other.status == 0)
        let reg = try CLI.run(["experts", "register", "\(dir)/foreign.h5", "--name", "foreign", "--domain", "x"] + registry)
        #expect(reg.status == 0)
        try oneLineError(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "foreign", "--data", "\(dir)/dc.jsonl",
                          "--output", "\(dir)/x.h5"] + registry, contains: "different tokenizer")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.h5"))
        let removed = try CLI.run(["experts", "remove", "foreign"] + registry)
        #expect(removed.status == 0)
    }

    @Test func aCompositionWhoseExpertChangedIsRefused() throws {
        let dir = try Self.setup.get()
        let registry = ["--registry", "\(dir)/experts2"]
        #expect(try CLI.run(["experts", "register", "\(dir)/expert.h5", "--name", "kv", "--domain", "kv"] + registry).status == 0)
        let compose = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--data", "\(dir)/dc.jsonl",
                                   "--output", "\(dir)/comp2.h5", "--steps", "2"] + registry)
        #expect(compose.status == 0, "\(compose.stderr)")
        // Replace the registered expert with different weights (the anchor is as good as any model here).
        #expect(try CLI.run(["experts", "register", "\(dir)/anchor.h5", "--name", "kv", "--domain", "kv", "--replace"] + registry).status == 0)
        let eval = try CLI.run(["eval", "--composition", "\(dir)/comp2.h5", "--data", "\(dir)/dc.jsonl"] + registry)
        #expect(eval.status != 0)
        #expect(eval.stderr.contains("has changed") && eval.stderr.split(separator: "\n").count == 1, "\(eval.stderr)")
    }
}
