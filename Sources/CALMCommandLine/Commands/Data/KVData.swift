import ArgumentParser
import CALMCheckpoint
import CALMModels
import CALMSuites
import CALMSupport
import CALMTraining
import Foundation

struct KVData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Generate the key-value arithmetic suite (paper §4.1): key maps, model corpora, D_C and evaluation sets.",
        discussion: """
            Writes to --out: vocab.json (one word tokenizer shared by every model), numeric-train.jsonl and \
            numeric-eval.jsonl (anchor), and per expert E: E-train.jsonl (KV-Substitution over all its keys plus \
            definition lines), E-dc.jsonl (D_C: KV-Arithmetic over held-in keys, 10% Numeric-Arithmetic, 10% \
            held-in KV-Substitution), E-subst-eval.jsonl and E-arith-eval.jsonl (held-out keys only). With two or \
            more experts, the last two also get mixed-dc.jsonl and mixed-eval.jsonl (each expression uses keys of \
            both). Key maps go to --map-dir/E.json (default: --out). An existing key map with other keys \
            is never replaced without --force (the shipped maps in checkpoints/kv describe the shipped \
            models); an identical one is left as it is.
            """)

    @Option(help: "Output directory for the data files.") var out: String
    @Option(help: "Expert names, comma-separated; each gets its own keys and values.") var experts = "kv"
    @Option(help: "Directory for the key maps (default: --out; the shipped ones are in checkpoints/kv).") var mapDir: String?
    @Flag(help: "Replace key maps that exist with other keys (e.g. --map-dir checkpoints/kv after changing the settings).")
    var force = false
    @Option(parsing: .unconditional, help: "Keys per expert.") var keys = 500
    @Option(parsing: .unconditional, help: "Smallest value.") var minValue = 1
    @Option(parsing: .unconditional, help: "Largest value.") var maxValue = 9
    @Option(help: "Operators, comma-separated, from + - *.") var operators = "+,-"
    @Option(parsing: .unconditional, help: "Fewest terms per expression.") var minTerms = 3
    @Option(parsing: .unconditional, help: "Most terms per expression.") var maxTerms = 3
    @Option(parsing: .unconditional, help: "Numeric-Arithmetic training examples.") var numericExamples = 40000
    @Option(parsing: .unconditional, help: "KV-Substitution training examples per expert.") var substitutionExamples = 30000
    @Option(parsing: .unconditional, help: "Definition passes over all keys per expert (lines like \"abc 7 de 3\").") var definitionPasses = 20
    @Option(parsing: .unconditional, help: "KV-Arithmetic examples in D_C.") var dcExamples = 4000
    @Option(parsing: .unconditional, help: "Held-in KV-Substitution examples in each single-expert D_C.") var dcSubstitutionExamples = 1200
    @Option(parsing: .unconditional, help: "Examples per evaluation set.") var evalExamples = 1000
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        let names = experts.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, Set(names).count == names.count, !names.contains("") else {
            throw CLIError("--experts must list distinct names")
        }
        let ops = operators.split(separator: ",").map(String.init)
        guard !ops.isEmpty, ops.allSatisfy({ ["+", "-", "*"].contains($0) }) else { throw CLIError("--operators must come from + - *") }
        guard minTerms >= 2, maxTerms >= minTerms else { throw CLIError("need 2 <= --min-terms <= --max-terms") }
        guard minValue <= maxValue, minValue >= 0 else { throw CLIError("need 0 <= --min-value <= --max-value") }
        try OptionCheck.atLeast(keys, 10, "--keys")
        for (value, option) in [(numericExamples, "--numeric-examples"), (substitutionExamples, "--substitution-examples"),
                                (definitionPasses, "--definition-passes"), (dcExamples, "--dc-examples"),
                                (dcSubstitutionExamples, "--dc-substitution-examples"), (evalExamples, "--eval-examples")] {
            try OptionCheck.atLeast(value, 0, option)
        }
        let mapDir = self.mapDir ?? out
        try OutputPath.validate(out, option: "--out", kind: .directory)
        try OutputPath.validate(mapDir, option: "--map-dir", kind: .directory)
        if names.contains("vocab") && URL(fileURLWithPath: mapDir).standardized == URL(fileURLWithPath: out).standardized {
            throw CLIError("--experts: \"vocab\" would write its key map over vocab.json in \(out); rename it or give --map-dir")
        }
        var settings = KVSuiteSettings()
        settings.keysPerExpert = keys
        settings.minValue = minValue
        settings.maxValue = maxValue
        settings.operators = ops
        settings.minTerms = minTerms
        settings.maxTerms = maxTerms
        settings.seed = seed
        var sizes = KVSuiteSizes()
        sizes.numericExamples = numericExamples
        sizes.substitutionExamples = substitutionExamples
        sizes.definitionPasses = definitionPasses
        sizes.dcExamples = dcExamples
        sizes.dcSubstitutionExamples = dcSubstitutionExamples
        sizes.evalExamples = evalExamples
        let suite = KVSuiteFiles.build(experts: names, settings: settings, sizes: sizes)
        // Decide about every key map before writing anything.
        let changedMaps = try ProtectedFiles.changed(
            suite.maps.map { ("\(mapDir)/\($0.name).json", try KVSuiteFiles.mapJSON($0.map)) }, force: force,
            what: "a key map with other keys")
        try suite.write(dataDirectory: out, mapDirectory: nil)
        try FileManager.default.createDirectory(atPath: mapDir, withIntermediateDirectories: true)
        for (path, bytes) in changedMaps { try writeAtomically(bytes, to: path) }
        let kept = suite.maps.count - changedMaps.count
        print("wrote \(suite.files.count + 1) files to \(out) (vocabulary \(suite.tokenizer.vocabularySize) tokens) and "
              + "\(changedMaps.count) key maps to \(mapDir)" + (kept > 0 ? " (\(kept) identical ones left as they were)" : ""))
    }
}
