import AsyncHTTPClient
import CALMSupport
import Foundation
import Testing
@testable import CALMServer

/// Bad requests get one OpenAI-style error naming the problem, and the server keeps serving.
@Suite("calm serve: errors", .serialized)
struct ServerErrorTests {
    /// (path, body, expected status, expected `error.param`).
    static let cases: [(String, String, Int, String?)] = [
        ("/v1/completions", "{not json", 400, nil),
        ("/v1/completions", "[1, 2]", 400, nil),
        ("/v1/completions", #"{"prompt": "ak ="}"#, 400, "model"),
        ("/v1/completions", #"{"model": 3, "prompt": "ak ="}"#, 400, "model"),
        ("/v1/completions", #"{"model": "anchor"}"#, 400, "prompt"),
        ("/v1/completions", #"{"model": "anchor", "prompt": {"a": 1}}"#, 400, "prompt"),
        ("/v1/completions", #"{"model": "anchor", "prompt": [99999]}"#, 400, "prompt"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "max_tokens": "5"}"#, 400, "max_tokens"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "max_tokens": 0}"#, 400, "max_tokens"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "max_tokens": 15}"#, 400, "max_tokens"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak + ak + ak + ak + ak + ak + ak + ak ="}"#, 400, "prompt"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "temperature": -1}"#, 400, "temperature"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "top_p": 0}"#, 400, "top_p"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "stream": "yes"}"#, 400, "stream"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "stop": [1]}"#, 400, "stop"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "n": 2}"#, 400, "n"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "tempreature": 0}"#, 400, "tempreature"),
        ("/v1/completions", #"{"model": "anchor", "prompt": "ak =", "calm": {"gates": true}}"#, 400, "calm"),
        ("/v1/completions", #"{"model": "kv-a-only", "prompt": "ak =", "calm": {"gatez": true}}"#, 400, "calm"),
        ("/v1/completions", #"{"model": "no-such-model", "prompt": "ak ="}"#, 404, "model"),
        ("/v1/chat/completions", #"{"model": "anchor", "messages": [{"role": "user", "content": "ak ="}]}"#, 400, "model"),
        ("/v1/chat/completions", #"{"model": "anchor", "messages": []}"#, 400, "messages"),
        ("/v1/chat/completions", #"{"model": "anchor", "messages": [{"role": "robot", "content": "x"}]}"#, 400, "messages[0]"),
        ("/v1/nothing", "{}", 404, nil),
    ]

    @Test func badRequestsGetOneOpenAIErrorEach() async throws {
        let harness = try await ServerHarness.start()
        for (path, body, status, param) in Self.cases {
            let reply = try await harness.send(path, body: body)
            #expect(reply.status == status, "\(body) -> \(reply.body)")
            let error = reply.json?["error"]
            #expect(error?["message"]?.string?.isEmpty == false, "\(body) -> \(reply.body)")
            #expect(error?["type"]?.string != nil)
            if let param { #expect(error?["param"]?.string == param, "\(body) -> \(reply.body)") }
        }
        let tooBig = try await harness.send("/v1/completions", body: String(repeating: " ", count: (1 << 20) + 10) + "{}")
        #expect(tooBig.status == 413, "\(tooBig.body)")
        #expect(try await harness.get("/health").status == 200)
        try await harness.stop()
    }

    @Test func anAPIKeyIsRequiredOnV1WhenSet() async throws {
        let harness = try await ServerHarness.start { $0.apiKey = "sekrit-key" }
        let body = ServerHarness.completion("anchor", "ak =", maxTokens: 2)
        let missing = try await harness.send("/v1/completions", body: body)
        #expect(missing.status == 401 && missing.json?["error"]?["type"]?.string == "authentication_error")
        let wrong = try await harness.send("/v1/completions", body: body, headers: [("authorization", "Bearer sekrit-kez")])
        #expect(wrong.status == 401)
        let models = try await harness.get("/v1/models", headers: [("authorization", "Bearer wrong")])
        #expect(models.status == 401)
        let right = try await harness.send("/v1/completions", body: body, headers: [("authorization", "Bearer sekrit-key")])
        #expect(right.status == 200, "\(right.body)")
        #expect(try await harness.get("/health").status == 200)
        try await harness.stop()
    }

    /// With the scheduler held, `maxQueue` requests wait and the next one is refused with 429;
    /// released, the waiting ones complete.
    @Test func aFullQueueRefusesWith429() async throws {
        let harness = try await ServerHarness.start { $0.maxQueue = 2; $0.maxBatch = 1 }
        harness.server.setSchedulerPaused(true)
        let body = ServerHarness.completion("kv-b-only", Shipped.prompts[2], maxTokens: 4)
        let waiting = (0..<2).map { _ in Task { try await harness.send("/v1/completions", body: body) } }
        while harness.server.scheduler.queueDepth < 2 { try await Task.sleep(for: .milliseconds(5)) }
        let refused = try await harness.send("/v1/completions", body: body)
        #expect(refused.status == 429)
        #expect(refused.json?["error"]?["code"]?.string == "queue_full")
        harness.server.setSchedulerPaused(false)
        for task in waiting { #expect(try await task.value.status == 200) }
        try await harness.stop()
    }
}
