import CALMCheckpoint
import Foundation
import Testing

/// `calm compose` and `calm experts register` output and options: the cost report once, the
/// chosen connections, `--connections` with negative layers, and tokenizer mismatches that
/// say how to fix them.
@Suite("calm compose options and expert tokenizers", .serialized)
struct ComposeOptionsCLITests {
    func compose(_ dir: String, _ extra: [String], output: String) throws -> CLI.Result {
        try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--data", "\(dir)/dc.jsonl", "--output", output,
                     "--steps", "3", "--registry", "\(dir)/experts"] + extra)
    }

    @Test func theReportPrintsOnceAndTheConnectionsAreShown() throws {
        let dir = try CompositionCLITests.setup.get()
        let run = try compose(dir, [], output: "\(dir)/once.h5")
        #expect(run.status == 0, "\(run.stderr)")
        let all = run.stdout + run.stderr
        #expect(all.components(separatedBy: "trainable parameters").count == 2, "\(all)")
        #expect(run.stdout.contains("trainable parameters"))
        // Two-block models get the paper's rule: the last augment block into the last anchor block.
        #expect(run.stderr.contains("kv: anchor 1 <- augment 1"), "\(run.stderr)")
    }

    @Test func connectionsTakeNegativeLayersWithASpaceOrAnEqualsSign() throws {
        let dir = try CompositionCLITests.setup.get()
        let spaced = try compose(dir, ["--connections", "-1:0,1:1"], output: "\(dir)/spaced.h5")
        #expect(spaced.status == 0, "\(spaced.stderr)")
        #expect(spaced.stderr.contains("kv: anchor -1 <- augment 0, anchor 1 <- augment 1"), "\(spaced.stderr)")
        let equals = try compose(dir, ["--connections=kv=-1:0"], output: "\(dir)/equals.h5")
        #expect(equals.status == 0 && equals.stderr.contains("kv: anchor -1 <- augment 0"), "\(equals.stderr)")

        let malformed = try compose(dir, ["--connections", "1:x"], output: "\(dir)/never.h5")
        #expect(malformed.status != 0 && malformed.stderr.contains("--connections") && malformed.stderr.contains("\"1:x\""),
                "\(malformed.stderr)")
        let unknown = try compose(dir, ["--connections", "ghost=0:0"], output: "\(dir)/never.h5")
        #expect(unknown.stderr == "Error: --connections: \"ghost\" is not one of the composed experts (kv)\n", "\(unknown.stderr)")
        let twice = try compose(dir, ["--connections", "0:0", "--connections", "1:1"], output: "\(dir)/never.h5")
        #expect(twice.status != 0 && twice.stderr.contains("given twice"), "\(twice.stderr)")
        let steps = try compose(dir, ["--steps", "0"], output: "\(dir)/never.h5")
        #expect(steps.stderr == "Error: --steps must be >= 1, got 0\n", "\(steps.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.h5"))
    }

    /// --train-only gate,gate_augment: the fitted relay (--vocabulary-bridges) stays as it was; only gates move.
    @Test func gatesOnlyTrainingLeavesTheRelayAsFitted() throws {
        let dir = try CompositionCLITests.setup.get()
        let flags = ["--connections", "1:1", "--vocabulary-bridges", "--train-only", "gate,gate_augment", "--lr", "1e-2", "--warmup", "0"]
        let short = try compose(dir, flags + ["--steps", "1"], output: "\(dir)/gates-1.h5")
        #expect(short.status == 0 && short.stderr.contains("training only gate, gate_augment: "), "\(short.stderr)")
        // The cost report counts what trains (two gate vectors and a bias) and what the bridges hold.
        let trained = short.stderr.split(separator: "\n").first { $0.hasPrefix("training only") }?.split(separator: " ")
        let count = trained.flatMap { words in words.firstIndex(of: "of").map { words[$0 - 1] } }
        #expect(count.map { short.stdout.contains("trainable parameters      \($0) (") } == true, "\(short.stdout)")
        #expect(short.stdout.contains("; the bridges hold "), "\(short.stdout)")
        let long = try compose(dir, flags + ["--steps", "6"], output: "\(dir)/gates-6.h5")
        #expect(long.status == 0, "\(long.stderr)")
        func tensor(_ file: String, _ name: String) throws -> [Float] {
            try HDF5File.open(file).readFloats("tensors/augments.0.connections.0.\(name)").data
        }
        for name in ["proj.weight", "q_proj.weight", "k_proj.bias", "v_proj.weight", "o_proj.weight", "query_norm.weight"] {
            #expect(try tensor("\(dir)/gates-1.h5", name) == tensor("\(dir)/gates-6.h5", name), "\(name)")
        }
        #expect(try tensor("\(dir)/gates-1.h5", "gate.weight") != tensor("\(dir)/gates-6.h5", "gate.weight"))
        #expect(try tensor("\(dir)/gates-1.h5", "o_proj.weight").contains { $0 != 0 })
        let alone = try compose(dir, ["--train-only", "gate"], output: "\(dir)/never.h5")
        #expect(alone.status != 0 && alone.stderr.contains("needs --vocabulary-bridges"), "\(alone.stderr)")
        let unknown = try compose(dir, ["--train-only", "gate,o_prj"], output: "\(dir)/never.h5")
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown bridge part 'o_prj'"), "\(unknown.stderr)")
        let withOutput = try compose(dir, flags.filter { $0 != "gate,gate_augment" && $0 != "--train-only" } + ["--train-only", "gate,o_proj", "--steps", "2"],
                                     output: "\(dir)/gates-o.h5")
        #expect(withOutput.status == 0, "\(withOutput.stderr)")
        #expect(try tensor("\(dir)/gates-1.h5", "o_proj.weight") != tensor("\(dir)/gates-o.h5", "o_proj.weight"))
        #expect(try tensor("\(dir)/gates-1.h5", "v_proj.weight") == tensor("\(dir)/gates-o.h5", "v_proj.weight"))
    }

    /// --confidence-gates: each gate gets a (1, 2) weight on its expert's entropy that trains and
    /// is stored, the spec records the gates, and the part is refused without the flag.
    @Test func confidenceGatesTrainAndAreStored() throws {
        let dir = try CompositionCLITests.setup.get()
        let flags = ["--connections", "1:1", "--vocabulary-bridges", "--confidence-gates", "--train-only", "gate,gate_augment,gate_confidence",
                     "--lr", "1e-2", "--warmup", "0"]
        let run = try compose(dir, flags + ["--steps", "4"], output: "\(dir)/confidence.h5")
        #expect(run.status == 0 && run.stderr.contains("training only gate, gate_augment, gate_confidence: "), "\(run.stderr)")
        let file = try HDF5File.open("\(dir)/confidence.h5")
        let weight = try file.readFloats("tensors/augments.0.connections.0.gate_confidence.weight")
        #expect(weight.shape == [1, 2])
        #expect(weight.data != [-2, -8] && weight.data.allSatisfy { $0 < 0 }, "\(weight.data)")  // moved from where it starts
        #expect(try file.stringAttribute("composition")?.contains("\"confidence_gates\":true") == true)
        let eval = try CLI.run(["eval", "--composition", "\(dir)/confidence.h5", "--data", "\(dir)/dc.jsonl", "--limit", "2",
                                "--registry", "\(dir)/experts"])
        #expect(eval.status == 0 && eval.stdout.hasPrefix("accuracy "), "\(eval.stderr)")
        let without = try compose(dir, ["--vocabulary-bridges", "--train-only", "gate_confidence"], output: "\(dir)/never.h5")
        #expect(without.status != 0 && without.stderr.contains("--train-only gate_confidence needs --confidence-gates"), "\(without.stderr)")
    }

    /// --familiarity-gates: each gate gets a (1, 2) weight on its expert's surprisal that trains
    /// and is stored beside the confidence weight, and the part is refused without the flag.
    @Test func familiarityGatesTrainAndAreStored() throws {
        let dir = try CompositionCLITests.setup.get()
        let flags = ["--connections", "1:1", "--vocabulary-bridges", "--confidence-gates", "--familiarity-gates",
                     "--train-only", "gate,gate_familiarity", "--lr", "1e-2", "--warmup", "0", "--steps", "4"]
        let run = try compose(dir, flags, output: "\(dir)/familiarity.h5")
        #expect(run.status == 0 && run.stderr.contains("training only gate, gate_familiarity: "), "\(run.stderr)")
        let file = try HDF5File.open("\(dir)/familiarity.h5")
        let weight = try file.readFloats("tensors/augments.0.connections.0.gate_familiarity.weight")
        #expect(weight.shape == [1, 2] && weight.data != [-1, -1], "\(weight.data)")  // moved from where it starts
        #expect(try file.readFloats("tensors/augments.0.connections.0.gate_confidence.weight").data == [-2, -8])  // not trained
        let spec = try file.stringAttribute("composition") ?? ""
        #expect(spec.contains("\"familiarity_gates\":true") && spec.contains("\"confidence_gates\":true"), "\(spec)")
        let eval = try CLI.run(["eval", "--composition", "\(dir)/familiarity.h5", "--data", "\(dir)/dc.jsonl", "--limit", "2",
                                "--registry", "\(dir)/experts"])
        #expect(eval.status == 0 && eval.stdout.hasPrefix("accuracy "), "\(eval.stderr)")
        let without = try compose(dir, ["--vocabulary-bridges", "--train-only", "gate_familiarity"], output: "\(dir)/never.h5")
        #expect(without.status != 0 && without.stderr.contains("--train-only gate_familiarity needs --familiarity-gates"), "\(without.stderr)")
    }

    @Test func gateTokensShowSpecialTokensByName() throws {
        let dir = try CompositionCLITests.setup.get()
        #expect(try compose(dir, ["--connections", "0:1"], output: "\(dir)/gates-comp.h5").status == 0)
        let eval = try CLI.run(["eval", "--composition", "\(dir)/gates-comp.h5", "--data", "\(dir)/dc.jsonl", "--limit", "1",
                                "--gates", "\(dir)/g.jsonl", "--registry", "\(dir)/experts"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let line = try String(contentsOfFile: "\(dir)/g.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        let tokens = object?["tokens"] as? [String]
        #expect(tokens?.first == "<bos>", "\(line)")
        // The summary is the mean gate over the positions that predict the answer: a run of
        // positions that ends one before the last token.
        let gates = ((object?["gates"] as? [String: Any])?.values.first as? [Double]) ?? []
        let summary = eval.stdout.split(separator: "\n").first { $0.hasPrefix("mean gate over the answer tokens: ") }
        let mean = summary.flatMap { Double($0.split(separator: " ").last ?? "") }
        let suffixMeans = (1..<max(1, gates.count)).map { k in gates[(gates.count - 1 - k)..<(gates.count - 1)].reduce(0, +) / Double(k) }
        #expect(mean.map { m in suffixMeans.contains { abs($0 - m) < 5e-4 } } == true, "\(eval.stdout)")
    }

    @Test func tokenizerMismatchesSayHowToFixThem() throws {
        let dir = try CompositionCLITests.setup.get()
        let registry = ["--registry", "\(dir)/experts-tokenizers"]
        // Pretrained with the default tokenizer (its data's characters, here unlike any other
        // model's): no anchor shares it.
        try (0..<20).map { "{\"prompt\": \"q\($0 % 3) =\", \"completion\": \" r\"}" }.joined(separator: "\n")
            .write(toFile: "\(dir)/own.jsonl", atomically: true, encoding: .utf8)
        let own = try CLI.run(["pretrain", "--data", "\(dir)/own.jsonl", "--output", "\(dir)/own.h5", "--steps", "2",
                               "--seq-len", "12", "--layers", "1", "--hidden", "16", "--heads", "2"])
        #expect(own.status == 0, "\(own.stderr)")
        let lonely = try CLI.run(["experts", "register", "\(dir)/own.h5", "--name", "own", "--domain", "x"] + registry)
        #expect(lonely.status == 0, "\(lonely.stderr)")
        #expect(lonely.stderr.hasPrefix("warning:") && lonely.stderr.contains("--tokenizer-from"), "\(lonely.stderr)")
        // The expert trained with --tokenizer-from anchor.h5 matches anchor.h5 beside the registry.
        let matched = try CLI.run(["experts", "register", "\(dir)/expert.h5", "--name", "kv", "--domain", "kv"] + registry)
        #expect(matched.status == 0 && matched.stderr.isEmpty, "\(matched.stderr)")

        // A short run (its warm-up note waits until training starts): the refusal is the only line.
        let refused = try CLI.run(["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "own", "--data", "\(dir)/dc.jsonl",
                                   "--output", "\(dir)/never.h5", "--steps", "5"] + registry)
        #expect(refused.status != 0 && refused.stderr.contains("different tokenizer"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("--tokenizer-from \(dir)/anchor.h5"), "\(refused.stderr)")
    }
}
