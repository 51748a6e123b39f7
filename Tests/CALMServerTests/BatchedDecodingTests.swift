import CALMComposition
import CALMModels
import Testing
@testable import CALMServer

/// The batched decoding step against the single-sequence path it must reproduce.
@Suite("Batched decoding", .serialized)
struct BatchedDecodingTests {
    @Test func compositionsAndTheirAnchorShareOneModelInMemory() throws {
        let catalog = try Shipped.catalog.get()
        let models = catalog.models
        #expect(models.count == 4)
        #expect(models.allSatisfy { $0.anchor === models[0].anchor })
        // anchor, kv-a and kv-b: three files held, however many compositions name them.
        #expect(catalog.resident.count == 3)
        let aOnly = try #require(catalog.model(named: "kv-a-only")?.composed)
        let two = try #require(catalog.model(named: "kv-two-experts")?.composed)
        #expect(aOnly.augments[0].model === two.augments[0].model)
    }

    /// Rows of the plain anchor and of three compositions, at different lengths, decoded
    /// together: every step's logits equal feeding each sequence alone.
    @Test func batchedStepsEqualSingleSequenceFeeds() throws {
        let catalog = try Shipped.catalog.get()
        let rows = catalog.models + catalog.models  // 8 rows, two of each model
        let prompts = rows.indices.map { Shipped.prompts[$0 % Shipped.prompts.count] }
        let anchor = rows[0].anchor
        // Batched: prefill alone (as the scheduler does), then batched steps.
        var sequences: [AnchorSequence] = []
        var solo: [(feed: ([Int]) -> [Float], first: [Float])] = []
        var batchedLogits: [[Float]] = []
        for (model, prompt) in zip(rows, prompts) {
            let ids = model.tokenizer.encodeWithBOS(prompt)
            if let composed = model.composed {
                let state = composed.startDecoding(capacity: 16)
                batchedLogits.append(composed.feed(ids, state: state))
                sequences.append(.composed(composed, state, gates: nil))
                let reference = composed.startDecoding(capacity: 16)
                solo.append(({ composed.feed($0, state: reference) }, composed.feed(ids, state: reference)))
            } else {
                let cache = model.anchor.startDecoding(capacity: 16)
                batchedLogits.append(model.anchor.feed(ids, state: cache))
                sequences.append(.plain(cache))
                let reference = model.anchor.startDecoding(capacity: 16)
                solo.append(({ model.anchor.feed($0, state: reference) }, model.anchor.feed(ids, state: reference)))
            }
        }
        var soloLogits = solo.map(\.first)
        var worst: Float = 0
        for _ in 0..<5 {
            let next = batchedLogits.map(Sampler.argmax)
            #expect(next == soloLogits.map(Sampler.argmax))
            batchedLogits = BatchedDecoding.step(anchor: anchor, tokens: next, sequences: sequences)
            soloLogits = zip(solo, next).map { $0.feed([$1]) }
            for (a, b) in zip(batchedLogits, soloLogits) { worst = max(worst, zip(a, b).map { abs($0 - $1) }.max() ?? 0) }
        }
        #expect(worst < 1e-4, "largest logit difference \(worst)")
    }

    /// Prompts fed together in one packed step, then more prompts joining while the first
    /// sequences decode (prompts and single tokens in one step), as the scheduler admits
    /// requests: every sequence's logits equal feeding it alone, step by step.
    @Test func promptsPackedWithDecodingRowsEqualSingleSequenceFeeds() throws {
        let catalog = try Shipped.catalog.get()
        let rows = catalog.models + catalog.models.reversed()  // 8 sequences, two of each model
        let prompts = rows.indices.map { Shipped.prompts[$0 % Shipped.prompts.count] }
        let anchor = rows[0].anchor
        var sequences: [AnchorSequence] = []
        var solo: [([Int]) -> [Float]] = []
        for model in rows {
            if let composed = model.composed {
                sequences.append(.composed(composed, composed.startDecoding(capacity: 16), gates: nil))
                let reference = composed.startDecoding(capacity: 16)
                solo.append { composed.feed($0, state: reference) }
            } else {
                sequences.append(.plain(model.anchor.startDecoding(capacity: 16)))
                let reference = model.anchor.startDecoding(capacity: 16)
                solo.append { model.anchor.feed($0, state: reference) }
            }
        }
        // Step 0: sequences 0-4 feed their prompts; step 1: 5-7 join; then everyone decodes.
        var pending: [Int: [Int]] = [:]
        for i in rows.indices { pending[i] = rows[i].tokenizer.encodeWithBOS(prompts[i]) }
        var worst: Float = 0
        var live = Array(0..<5)
        for step in 0..<5 {
            if step == 1 { live += [5, 6, 7] }
            let feeding = live.map { pending[$0]! }
            let packed = BatchedDecoding.step(anchor: anchor, feeding: feeding, sequences: live.map { sequences[$0] })
            #expect(feeding.contains { $0.count > 1 } == (step < 2))
            for (n, i) in live.enumerated() {
                let alone = solo[i](pending[i]!)
                #expect(Sampler.argmax(packed[n]) == Sampler.argmax(alone), "sequence \(i), step \(step)")
                worst = max(worst, zip(packed[n], alone).map { abs($0 - $1) }.max() ?? 0)
                pending[i] = [Sampler.argmax(alone)]
            }
        }
        #expect(worst < 1e-4, "largest logit difference \(worst)")
    }
}
