import ArgumentParser
import CALMComposition
import CALMModels
import CALMTensor
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark composition training and composed decoding at fixed shapes (random weights), or a checkpoint's load, prefill and decoding.",
        discussion: """
            S: vocab 64, sequence 128, batch 16; anchor 256 wide, 8 blocks, 8 heads, FFN 1024; two augments \
            128 wide, 8 blocks, 4 heads, FFN 512; connections (3,3) and (7,7). M: vocab 512, sequence 256, \
            batch 8; anchor 512 wide, 12 blocks, 8 heads, FFN 2048; two augments 256 wide, 8 blocks, 8 heads, \
            FFN 1024; connections (5,3) and (11,7). SmolLM2: SmolLM2-135M's shape (vocab 49,152, 30 blocks, \
            576 wide, 9 heads, 3 key/value heads, FFN 1536, tied embeddings) as anchor and as one augment, \
            sequence 256, batch 4, a bridge every 4 blocks ((3,3), (7,7) ... (27,27)). Benchmarks/reference.py \
            measures the same in PyTorch.
            """)

    enum Size: String, ExpressibleByArgument { case S, M, SmolLM2 }

    @Option(help: "Shape set: S, M or SmolLM2.") var config: Size = .S
    @OptionGroup var checkpoint: CheckpointBenchOptions
    @Option(parsing: .unconditional, help: "Timed training steps (after one warm-up step); 0 measures decoding only.") var steps = 5
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Also print where one training step's time goes, per op family (after the timed steps; to standard error with --json).")
    var profile = false
    @OptionGroup var runtime: RuntimeOptions

    struct Shapes {
        struct Model { var width: Int, layers: Int, heads: Int, ffn: Int, kvHeads: Int? = nil, tied = false }
        var vocab: Int, sequence: Int, batch: Int
        var anchor: Model, augments: [Model]
        var connections: [Connection]
        var newTokens: Int
        var bridgeHeads = 8
    }

    var shapes: Shapes {
        switch config {
        case .S:
            let augment = Shapes.Model(width: 128, layers: 8, heads: 4, ffn: 512)
            return Shapes(vocab: 64, sequence: 128, batch: 16, anchor: .init(width: 256, layers: 8, heads: 8, ffn: 1024),
                          augments: [augment, augment],
                          connections: [Connection(anchorLayer: 3, augmentLayer: 3), Connection(anchorLayer: 7, augmentLayer: 7)],
                          newTokens: 112)
        case .M:
            let augment = Shapes.Model(width: 256, layers: 8, heads: 8, ffn: 1024)
            return Shapes(vocab: 512, sequence: 256, batch: 8, anchor: .init(width: 512, layers: 12, heads: 8, ffn: 2048),
                          augments: [augment, augment],
                          connections: [Connection(anchorLayer: 5, augmentLayer: 3), Connection(anchorLayer: 11, augmentLayer: 7)],
                          newTokens: 64)
        case .SmolLM2:
            let smol = Shapes.Model(width: 576, layers: 30, heads: 9, ffn: 1536, kvHeads: 3, tied: true)
            return Shapes(vocab: 49_152, sequence: 256, batch: 4, anchor: smol, augments: [smol],
                          connections: stride(from: 3, to: 30, by: 4).map { Connection(anchorLayer: $0, augmentLayer: $0) },
                          newTokens: 32, bridgeHeads: 9)
        }
    }

    func run() throws {
        try OptionCheck.atLeast(steps, 0, "--steps")
        try runtime.apply()
        if checkpoint.isRequested { return try checkpoint.run(json: json) }
        let s = shapes
        func lm(_ p: Shapes.Model, seed: UInt64) throws -> TransformerLM {
            try TransformerLM(config: .llama(vocabSize: s.vocab, hiddenSize: p.width, numLayers: p.layers, numHeads: p.heads,
                                             numKVHeads: p.kvHeads, intermediateSize: p.ffn, maxPositions: s.sequence,
                                             tiedEmbeddings: p.tied), seed: seed)
        }
        let augments = try s.augments.enumerated().map { i, shape in
            (["a", "b", "c", "d"][i], try lm(shape, seed: UInt64(2 + i)), s.connections)
        }
        let model = try ComposedModel(anchor: try lm(s.anchor, seed: 1), augments: augments, heads: s.bridgeHeads, seed: 4)
        // Bridges start with zero output weights; give them values so every path does real work.
        var g = SeededGenerator(seed: 5)
        for (name, t) in model.parameters where name.hasSuffix("o_proj.weight") || name.hasSuffix("gate.weight") {
            for i in 0..<t.count { t.data[i] = g.nextNormal() * 0.02 }
        }
        let ids = (0..<(s.batch * s.sequence)).map { _ in Int(g.next() % UInt64(s.vocab)) }
        let tokens = TokenBatch(ids: ids, batch: s.batch, length: s.sequence)
        let mask = [Bool](repeating: true, count: ids.count)
        let optimizer = AdamW(parameters: model.parameters)
        let tokensPerStep = Double(s.batch * s.sequence)

        // Memory the last recomputed and the last cached step took from the kernel (steady state).
        var traffic = MemoryTraffic(pageFaults: 0, heapGrowthBytes: 0)
        func timeSteps(_ loss: () -> Tensor) -> Double {
            guard steps > 0 else { return .nan }
            var best = Double.infinity
            for step in 0...steps {
                let start = DispatchTime.now()
                let used = MemoryTraffic.measure {
                    optimizer.zeroGradients()
                    let l = loss()
                    l.backward()
                    optimizer.step(learningRate: 1e-4)
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if step > 0 { best = min(best, seconds) }  // step 0 warms up
                if step == steps {
                    traffic.pageFaults += used.pageFaults
                    traffic.heapGrowthBytes += used.heapGrowthBytes
                }
            }
            return best
        }
        // Public implementations recompute the frozen models every step.
        let recomputed = timeSteps { model.loss(tokens, lossMask: mask) }
        // This framework's savings: frozen activations computed once and reused.
        let states = model.augmentStates(tokens)
        let prefix = model.frozenAnchorPrefix(tokens)
        let cached = timeSteps { model.loss(tokens, lossMask: mask, augmentStates: states, anchorPrefix: prefix) }
        if profile {
            func profiled(_ loss: () -> Tensor) -> StepProfile {
                StepProfile.measure(steps: max(steps, 1), zeroGradients: optimizer.zeroGradients, loss: loss,
                                    update: { optimizer.step(learningRate: 1e-4) })
            }
            let table = StepProfile.table(
                [("recomputed", profiled { model.loss(tokens, lossMask: mask) }),
                 ("cached", profiled { model.loss(tokens, lossMask: mask, augmentStates: states, anchorPrefix: prefix) })],
                title: "calm bench --config \(config.rawValue) --profile: one training step, ms (mean of \(max(steps, 1)))")
            if json { FileHandle.standardError.write(Data(table.utf8)) } else { print(table, terminator: "") }
        }

        // Decoding: batch 1, 16-token prompt, greedy.
        let prompt = Array(ids.prefix(16))
        let decodeStart = DispatchTime.now()
        let generated = try model.generate(prompt: prompt, maxTokens: s.newTokens)
        let decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - decodeStart.uptimeNanoseconds) / 1e9

        let cost = CostReport(model: model, contextLength: s.sequence)
        let gflops = cost.trainingFLOPsPerToken * tokensPerStep / recomputed / 1e9
        let report: [(String, Double)] = [
            ("train_tokens_per_s", tokensPerStep / recomputed),
            ("train_cached_tokens_per_s", tokensPerStep / cached),
            ("decode_tokens_per_s", Double(generated.count) / decodeSeconds),
            ("gflops", gflops),
            ("cached_gflops", cost.trainingFLOPsPerTokenCached * tokensPerStep / cached / 1e9),
            ("train_mflop_per_token", cost.trainingFLOPsPerToken / 1e6),
            ("train_cached_mflop_per_token", cost.trainingFLOPsPerTokenCached / 1e6),
            ("sgemm_gflops", Self.sgemmRate(m: s.batch * s.sequence, n: s.anchor.ffn, k: s.anchor.width)),
            ("peak_rss_mb", Self.peakResidentMegabytes()),
            // Last recomputed and last cached step together.
            ("last_steps_page_faults", Double(traffic.pageFaults)),
            ("last_steps_heap_growth_mb", Double(traffic.heapGrowthBytes) / 1_048_576),
        ]
        if json {
            print("{" + report.map { "\"\($0.0)\": \(String(format: "%.2f", $0.1))" }.joined(separator: ", ")
                  + ", \"config\": \"\(config.rawValue)\", \"threads\": \(BLAS.threads)}")
        } else {
            print("calm bench --config \(config.rawValue) (\(BLAS.threads) BLAS threads)")
            for (k, v) in report { print("  \(k.padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(format: "%.1f", v))") }
        }
    }

    /// Best-of-several cblas_sgemm rate at one shape, in GFLOP/s.
    static func sgemmRate(m: Int, n: Int, k: Int) -> Double {
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        var best = Double.infinity
        for _ in 0..<5 {
            let start = DispatchTime.now()
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, a: ap.baseAddress!, lda: k,
                                  b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
        return 2 * Double(m * n * k) / best / 1e9
    }

    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
    }
}
