import AsyncHTTPClient
import CALMSupport
import Foundation
import Testing
@testable import CALMServer

/// The server over HTTP against the existing generation path, greedy, token for token.
@Suite("calm serve: completions", .serialized)
struct ServerTests {
    @Test func greedyCompletionsEqualGenerateForAModelAndATwoExpertComposition() async throws {
        let harness = try await ServerHarness.start()
        let catalog = try Shipped.catalog.get()
        for name in ["anchor", "kv-two-experts"] {
            let model = try #require(catalog.model(named: name))
            for prompt in Shipped.prompts.prefix(4) {
                let expected = try Shipped.reference(model, prompt, maxTokens: 6)
                let reply = try await harness.send("/v1/completions",
                                                   body: ServerHarness.completion(name, prompt, maxTokens: 6, extra: #", "logprobs": 0"#))
                #expect(reply.status == 200, "\(reply.body)")
                let choice = reply.json?["choices"]?.array?.first
                #expect(choice?["text"]?.string == expected.text, "\(name) \(prompt)")
                // The tokens themselves, through the log-probability listing.
                let tokens = choice?["logprobs"]?["tokens"]?.array?.compactMap(\.string)
                #expect(tokens == expected.tokens.map { model.tokenizer.decode([$0]) })
                #expect(reply.json?["usage"]?["completion_tokens"]?.int == expected.tokens.count)
                #expect(reply.json?["usage"]?["prompt_tokens"]?.int == model.tokenizer.encodeWithBOS(prompt).count)

                let streamed = try await harness.send("/v1/completions", body: ServerHarness.completion(name, prompt, maxTokens: 6, stream: true))
                let (text, done, finish) = ServerHarness.streamedText(streamed.body)
                #expect(text == expected.text)
                #expect(done && finish != nil)
            }
        }
        try await harness.stop()
    }

    /// Requests of different compositions (and the plain anchor) held, then released together,
    /// so they decode in one batch: each equals its output alone.
    @Test func concurrentRequestsOfDifferentCompositionsEqualTheirSoloOutputs() async throws {
        let harness = try await ServerHarness.start { $0.maxBatch = 16 }
        let catalog = try Shipped.catalog.get()
        let jobs = (0..<12).map { i in (catalog.models[i % catalog.models.count], Shipped.prompts[i % Shipped.prompts.count]) }
        harness.server.setSchedulerPaused(true)
        let replies = try await withThrowingTaskGroup(of: (Int, ServerHarness.Reply).self) { group in
            for (i, (model, prompt)) in jobs.enumerated() {
                group.addTask {
                    (i, try await harness.send("/v1/completions", body: ServerHarness.completion(model.name, prompt, maxTokens: 8,
                                                                                                stream: i % 2 == 0)))
                }
            }
            while harness.server.scheduler.queueDepth < jobs.count { try await Task.sleep(for: .milliseconds(5)) }
            harness.server.setSchedulerPaused(false)
            var out: [Int: ServerHarness.Reply] = [:]
            for try await (i, reply) in group { out[i] = reply }
            return out
        }
        for (i, (model, prompt)) in jobs.enumerated() {
            let expected = try Shipped.reference(model, prompt, maxTokens: 8)
            let reply = try #require(replies[i])
            #expect(reply.status == 200)
            let text = i % 2 == 0 ? ServerHarness.streamedText(reply.body).text : reply.json?["choices"]?.array?.first?["text"]?.string
            #expect(text == expected.text, "\(model.name) \(prompt)")
        }
        // They did run together: some decode step held every one of them.
        let metrics = try await harness.get("/metrics").body
        #expect(metrics.contains("calm_decode_batch_size_bucket{le=\"8.0\"}"))
        let atMostEight = metrics.split(separator: "\n").first { $0.hasPrefix("calm_decode_batch_size_bucket{le=\"8.0\"}") }
        let all = metrics.split(separator: "\n").first { $0.hasPrefix("calm_decode_batch_size_count") }
        #expect(atMostEight?.split(separator: " ").last != all?.split(separator: " ").last, "no step batched more than 8")
        try await harness.stop()
    }

    @Test func gatesLogprobsAndStopStrings() async throws {
        let harness = try await ServerHarness.start()
        let model = try #require(try Shipped.catalog.get().model(named: "kv-two-experts"))
        let prompt = Shipped.prompts[0]
        let expected = try Shipped.reference(model, prompt, maxTokens: 6)
        let reply = try await harness.send("/v1/completions", body: ServerHarness.completion(
            "kv-two-experts", prompt, maxTokens: 6, extra: #", "logprobs": 3, "calm": {"gates": true}"#))
        let choice = try #require(reply.json?["choices"]?.array?.first)
        let gates = try #require(choice["calm"]?["gates"]?.array)
        #expect(gates.count == expected.tokens.count)
        #expect(gates.allSatisfy { ($0.array?.count ?? 0) == model.gateLabels.count })
        let values = gates.flatMap { $0.array ?? [] }.map { $0.number ?? -1 }
        #expect(values.allSatisfy { $0 >= 0 && $0 <= 1 })
        let top = try #require(choice["logprobs"]?["top_logprobs"]?.array?.first?.object)
        #expect(top.count <= 3 && !top.isEmpty)
        // A stop string cuts the text before it, streamed or not.
        guard let firstCharacter = expected.text.first else { return }
        let stop = JSONValue.string(String(firstCharacter)).serialized()
        let stopped = try await harness.send("/v1/completions", body: ServerHarness.completion(
            "kv-two-experts", prompt, maxTokens: 6, extra: #", "stop": \#(stop)"#))
        #expect(stopped.json?["choices"]?.array?.first?["text"]?.string == "")
        #expect(stopped.json?["choices"]?.array?.first?["finish_reason"]?.string == "stop")
        try await harness.stop()
    }

    /// Graceful shutdown lets queued and running requests finish.
    @Test func shutdownFinishesInFlightRequests() async throws {
        let harness = try await ServerHarness.start()
        let model = try #require(try Shipped.catalog.get().model(named: "kv-a-only"))
        let expected = try Shipped.reference(model, Shipped.prompts[1], maxTokens: 8)
        harness.server.setSchedulerPaused(true)
        let pending = (0..<2).map { _ in
            Task { try await harness.send("/v1/completions", body: ServerHarness.completion("kv-a-only", Shipped.prompts[1], maxTokens: 8)) }
        }
        while harness.server.scheduler.queueDepth < 2 { try await Task.sleep(for: .milliseconds(5)) }
        await harness.server.shutdown()  // unpauses the scheduler and starts the grace period
        for task in pending {
            let reply = try await task.value
            #expect(reply.status == 200)
            #expect(reply.json?["choices"]?.array?.first?["text"]?.string == expected.text)
        }
        try await harness.runTask.value
        try await harness.client.shutdown()
    }
}
