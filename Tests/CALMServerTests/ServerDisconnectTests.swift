import CALMSupport
import Foundation
import Testing
@testable import CALMServer

/// Clients that go away free their slot at once: noticed from the connection itself, not
/// from a write failing later (a queued or non-streamed request writes nothing until the end).
@Suite("calm serve: disconnected clients", .serialized)
struct ServerDisconnectTests {
    /// One slot; after its first tokens the streamed request's decode steps are held by the
    /// test, so nothing is written to the closed connection before the server has noticed it
    /// is closed.
    @Test func aClientThatDisconnectsMidStreamFreesItsSlotAtOnce() async throws {
        let harness = try await ServerHarness.start { $0.maxBatch = 1 }
        let model = try #require(try Shipped.catalog.get().model(named: "anchor"))
        let prompt = Shipped.prompts[3]
        let room = model.maxContext - model.tokenizer.encodeWithBOS(prompt).count
        try #require(room >= 6)
        let gate = StepGate(letThrough: 1)
        harness.server.scheduler.setBeforeStep { gate.pass() }

        let client = try RawConnection(port: harness.port)
        client.post("/v1/completions", body: ServerHarness.completion(
            "anchor", prompt, maxTokens: room, stream: true, extra: #", "calm": {"ignore_eos": true}"#))
        let head = client.read(until: "data: ")  // the first token comes from the prefill
        #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
        client.close()
        #expect(try await harness.waitFor("calm_clients_gone_total", 1), "the disconnect went unnoticed")
        harness.server.scheduler.setBeforeStep(nil)
        gate.open()
        #expect(try await harness.waitFor("calm_requests_dropped_total", 1))
        #expect(try await harness.waitFor("calm_batch_size", 0))

        // The slot serves the next request, and the first one was cut short.
        let expected = try Shipped.reference(model, prompt, maxTokens: 3)
        let reply = try await harness.send("/v1/completions", body: ServerHarness.completion("anchor", prompt, maxTokens: 3))
        #expect(reply.status == 200)
        #expect(reply.json?["choices"]?.array?.first?["text"]?.string == expected.text)
        let generated = try #require(try await harness.metric("calm_generated_tokens_total"))
        #expect(Int(generated) <= 3 + expected.tokens.count, "the disconnected request ran on")
        try await harness.stop()
    }

    /// A queued request whose client leaves gives its queue place back while the queue is held:
    /// with `--max-queue 1`, the next request is queued instead of refused with 429.
    @Test func aQueuedRequestWhoseClientLeavesLeavesTheQueue() async throws {
        let harness = try await ServerHarness.start {
            $0.maxBatch = 1
            $0.maxQueue = 1
        }
        harness.server.setSchedulerPaused(true)
        let client = try RawConnection(port: harness.port)
        client.post("/v1/completions", body: ServerHarness.completion("anchor", Shipped.prompts[1], maxTokens: 4))
        while harness.server.scheduler.queueDepth < 1 { try await Task.sleep(for: .milliseconds(5)) }
        client.close()
        #expect(try await harness.waitFor("calm_requests_dropped_total", 1), "the request stayed queued")
        #expect(try await harness.waitFor("calm_queue_depth", 0))
        #expect(try await harness.metric("calm_clients_gone_total") == 1)

        let next = Task { try await harness.send("/v1/completions", body: ServerHarness.completion("anchor", Shipped.prompts[1], maxTokens: 4)) }
        while harness.server.scheduler.queueDepth < 1 { try await Task.sleep(for: .milliseconds(5)) }
        harness.server.setSchedulerPaused(false)
        #expect(try await next.value.status == 200)
        try await harness.stop()
    }
}

extension ServerHarness {
    /// A sample of `/metrics` without labels.
    func metric(_ name: String) async throws -> Double? {
        let body = try await get("/metrics").body
        let line = body.split(separator: "\n").first { $0.hasPrefix("\(name) ") }
        return line?.split(separator: " ").last.flatMap { Double($0) }
    }

    /// Polls `/metrics` until `name` reads `value`; false after a minute (a bound against
    /// hanging, not a timing requirement).
    func waitFor(_ name: String, _ value: Double) async throws -> Bool {
        for _ in 0..<6000 {
            if try await metric(name) == value { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}

/// Lets the first steps of the scheduler through, then holds each until `open`.
final class StepGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var remaining: Int
    private var isOpen = false

    init(letThrough: Int) { remaining = letThrough }

    func pass() {
        condition.lock()
        defer { condition.unlock() }
        if remaining > 0 {
            remaining -= 1
            return
        }
        while !isOpen { condition.wait() }
    }

    func open() { condition.withLock { isOpen = true; condition.broadcast() } }
}

/// A bare loopback TCP client, so the test decides exactly when the connection closes.
final class RawConnection: @unchecked Sendable {
    struct Failure: Error {}
    private let fd: Int32

    init(port: Int) throws {
        #if os(Linux)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // Reads give up after 30 s rather than hang the test.
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connected == 0 else {
            close()
            throw Failure()
        }
    }

    func post(_ path: String, body: String) {
        let bytes = Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }
            sent += n
        }
    }

    /// What arrives until `marker` has (or the connection ends, or 30 s pass).
    func read(until marker: String) -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += chunk[..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    func close() {
        #if os(Linux)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }
}
