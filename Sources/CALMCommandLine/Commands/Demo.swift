import ArgumentParser
import CALMCheckpoint
import CALMComposition
import CALMModels
import CALMSuites
import CALMSupport
import CALMTensor
import CALMTokenizers
import CALMTraining
import Foundation

/// The paper's key-value arithmetic experiment (§4.1) on the shipped models.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate the shipped key-value arithmetic models and print the results beside the paper's.",
        discussion: """
            Regenerates the data sets from the recorded seed (checking them against checkpoints/kv/*.json), \
            evaluates anchor, augment and CALM on KV-Substitution, Numeric-Arithmetic and KV-Arithmetic \
            (held-out keys only), then the two-expert composition on mixed expressions, with gate routing. \
            --retrain first retrains every composition from D_C into --work.
            """)

    @Option(help: "Directory with anchor.h5, experts/, compositions/ and kv/.") var checkpoints = "checkpoints"
    @Option(help: "Working directory for data (and retrained compositions).") var work = "runs/demo-kv"
    @Flag(help: "Retrain every composition from D_C before evaluating.") var retrain = false
    @Option(parsing: .unconditional, help: "Examples per cell (the data sets hold 1000).") var limit = 1000
    @Option(parsing: .unconditional, help: "Evaluation threads.") var workers = 2
    @Option(help: "Also write the results as an SVG bar chart to this file.") var plot: String?
    @OptionGroup var runtime: RuntimeOptions

    /// Settings that produced the shipped data; see scripts/train_kv_models.sh.
    static var settings: KVSuiteSettings { KVSuiteSettings() }
    static let experts = ["kv", "kv-a", "kv-b"]

    /// The shipped compositions: file name, experts, D_C, explicit connections.
    static let compositions: [(file: String, experts: [String], data: String)] = [
        ("kv-arithmetic", ["kv"], "kv-dc.jsonl"),
        ("kv-two-experts", ["kv-a", "kv-b"], "mixed-dc.jsonl"),
        ("kv-a-only", ["kv-a"], "mixed-dc.jsonl"),
        ("kv-b-only", ["kv-b"], "mixed-dc.jsonl"),
    ]
    /// The composition recipe shared with scripts/train_kv_models.sh and scripts/kv_ablations.sh.
    static let recipe = "kv/compose.args"

    func run() throws {
        try OptionCheck.atLeast(limit, 1, "--limit")
        try OptionCheck.atLeast(workers, 1, "--workers")
        try OutputPath.validate(work, option: "--work", kind: .directory)
        if let plot { try OutputPath.validate(plot, option: "--plot", kind: .fileInNewDirectory) }
        BLAS.setThreads(1)  // evaluation spreads records over threads instead
        try runtime.apply()
        let started = Date()
        let data = "\(work)/data"
        let suite = KVSuiteFiles.build(experts: Self.experts, settings: Self.settings, sizes: KVSuiteSizes())
        try suite.write(dataDirectory: data, mapDirectory: nil)  // the maps are compared below, not written
        for (name, map) in suite.maps {
            let shipped = "\(checkpoints)/kv/\(name).json"
            guard let bytes = FileManager.default.contents(atPath: shipped) else { throw CLIError("\(shipped): missing key map") }
            guard bytes == (try KVSuiteFiles.mapJSON(map)) else {
                throw CLIError("\(shipped): differs from the regenerated key map (generator settings changed?)")
            }
        }
        let registry = ExpertRegistry(directory: "\(checkpoints)/experts")
        let anchorPath = "\(checkpoints)/anchor.h5"
        var compositionDir = "\(checkpoints)/compositions"
        if retrain {
            compositionDir = "\(work)/compositions"
            try FileManager.default.createDirectory(atPath: compositionDir, withIntermediateDirectories: true)
            // Two compositions at a time, one BLAS thread each (tiny models scale better this way).
            let recipe = try Compose.recipeArguments("\(checkpoints)/\(Self.recipe)")
            nonisolated(unsafe) let jobs = try Self.compositions.map { c -> CompositionJob in
                let arguments = ["--anchor", anchorPath, "--data", "\(data)/\(c.data)", "--output", "\(compositionDir)/\(c.file).h5",
                                 "--registry", registry.directory] + c.experts.flatMap { ["--expert", $0] } + recipe
                do { return try Compose.parse(arguments).makeJob() } catch {
                    throw CLIError("\(checkpoints)/\(Self.recipe): \(Compose.message(for: error))")
                }
            }
            let failures = FailureCollector()
            DispatchQueue.concurrentPerform(iterations: 2) { lane in
                for (i, job) in jobs.enumerated() where i % 2 == lane {
                    let name = Self.compositions[i].file
                    do {
                        _ = try job.run(reporter: ProgressReporter(totalSteps: job.options.steps, logEvery: 500, label: name))
                    } catch {
                        failures.add(CLIError("\(name): \(error)"))
                    }
                }
            }
            if let first = failures.first { throw first }
        }

        func records(_ name: String) -> [TrainingData.PromptCompletion] { Array(suite.files[name]!.prefix(limit)) }
        func score<D: IncrementalDecoder>(_ d: D, tokenizer: any Tokenizer, _ set: String) throws -> Double {
            100 * (try ExactMatch.evaluate(d, tokenizer: tokenizer, records: records(set), workers: workers).accuracy)
        }
        let anchor = try ModelCheckpoint.load(anchorPath)
        let kv = try ModelCheckpoint.load(registry.path(of: try registry.entry(named: "kv")))
        let kvLM = kv.model
        func composition(_ file: String) throws -> LoadedComposition {
            try CompositionCheckpoint.load("\(compositionDir)/\(file).h5", resolver: ModelResolver(registryOverride: registry.directory))
        }
        let calm = try composition("kv-arithmetic")
        let sets = [("KV-Substitution", "kv-subst-eval.jsonl", (98.1, 0.0, 92.9)),
                    ("Numeric-Arithmetic", "numeric-eval.jsonl", (4.2, 73.7, 72.0)),
                    ("KV-Arithmetic", "kv-arith-eval.jsonl", (0.7, 0.0, 84.3))]
        print("\nTable 1: accuracy (%) on held-out data, \(limit) expressions per cell (paper's numbers in brackets)")
        print("dataset              m_A (augment kv)   m_B (anchor)     CALM")
        var table: [[Double]] = []
        for (name, file, paper) in sets {
            let a = try score(kvLM, tokenizer: kv.tokenizer, file)
            let b = try score(anchor.model, tokenizer: anchor.tokenizer, file)
            let c = try score(calm.model, tokenizer: calm.tokenizer, file)
            table.append([a, b, c])
            print(name.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: " %5.1f [%5.1f]     %5.1f [%5.1f]   %5.1f [%5.1f]", a, paper.0, b, paper.1, c, paper.2))
        }

        print("\nTwo experts: KV-Arithmetic over keys of both kv-a and kv-b (held-out keys)")
        let two = try composition("kv-two-experts")
        var mixed: [Double] = []
        for (label, file) in [("CALM(anchor + kv-a)", "kv-a-only"), ("CALM(anchor + kv-b)", "kv-b-only"),
                              ("CALM(anchor + kv-a + kv-b)", "kv-two-experts")] {
            let c = file == "kv-two-experts" ? two : try composition(file)
            mixed.append(try score(c.model, tokenizer: c.tokenizer, "mixed-eval.jsonl"))
            print(label.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: " %5.1f", mixed.last!))
        }
        if let plot {
            let chart = BarChart(
                title: "CALM on key-value arithmetic (held-out keys, \(limit) expressions per bar)",
                groups: sets.map(\.0) + ["Mixed KV (2 experts)"],
                series: [("augment kv / CALM(+kv-a)", table.map { $0[0] } + [mixed[0]]),
                         ("anchor / CALM(+kv-b)", table.map { $0[1] } + [mixed[1]]),
                         ("CALM / CALM(+kv-a+kv-b)", table.map { $0[2] } + [mixed[2]])])
            let directory = URL(fileURLWithPath: plot).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try writeAtomically(Data(chart.svg().utf8), to: plot)
        }
        try printRouting(two, suite: suite)
        print(String(format: "\n(%.0f s)", Date().timeIntervalSince(started)))
        if let plot { print("wrote the plot to \(plot)") }
    }

    /// Mean gate of each expert, per connection, on the tokens of its own keys versus the other
    /// expert's keys.
    private func printRouting(_ c: LoadedComposition, suite: KVSuiteFiles) throws {
        let owner: [Int: Int] = Dictionary(suite.maps.enumerated().flatMap { index, entry in
            entry.map.keys.keys.flatMap { key in [key, " " + key].map { (c.tokenizer.encode($0)[0], index) } }
        }, uniquingKeysWith: { a, _ in a })
        let expertIndex = c.model.augments.map { slot in Self.experts.firstIndex(of: slot.name) ?? -1 }
        var sums: [GateKey: [Double]] = [:]
        var counts: [GateKey: [Int]] = [:]
        for record in (suite.files["mixed-eval.jsonl"] ?? []).prefix(200) {
            let ids = c.tokenizer.promptIDs(record.prompt)
            let recorder = GateRecorder()
            _ = withoutGradients { c.model.forward(TokenBatch(ids), gates: recorder) }
            for (key, values) in recorder.values {
                for (t, id) in ids.enumerated() {
                    guard let o = owner[id] else { continue }
                    let own = o == expertIndex[key.augment] ? 0 : 1
                    sums[key, default: [0, 0]][own] += Double(values[t])
                    counts[key, default: [0, 0]][own] += 1
                }
            }
        }
        print("gate routing (mean gate on key tokens, 200 expressions): own keys / the other expert's keys")
        for key in sums.keys.sorted(by: { ($0.augment, $0.connection) < ($1.augment, $1.connection) }) {
            let slot = c.model.augments[key.augment]
            let (s, n) = (sums[key] ?? [0, 0], counts[key] ?? [1, 1])
            print(String(format: "  %@ @ %@: %.3f / %.3f", slot.name, slot.bridges[key.connection].connection.description,
                         s[0] / Double(max(n[0], 1)), s[1] / Double(max(n[1], 1))))
        }
    }
}
