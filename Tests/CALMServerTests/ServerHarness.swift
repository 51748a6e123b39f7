import AsyncHTTPClient
import CALMComposition
import CALMModels
import CALMSupport
import Foundation
import NIOCore
@testable import CALMServer

/// Shared fixtures: the shipped anchor and compositions, loaded once (resident once).
enum Shipped {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let anchor = "\(root)/checkpoints/anchor.h5"
    static let twoExperts = "\(root)/checkpoints/compositions/kv-two-experts.h5"
    static let aOnly = "\(root)/checkpoints/compositions/kv-a-only.h5"
    static let bOnly = "\(root)/checkpoints/compositions/kv-b-only.h5"
    static let registry = "\(root)/checkpoints/experts"
    static let prompts = ["aaix + aazbc - adtb =", "ak + alrejv =", "aei - agkqu + aiub =", "anze + ak =", "adtb - aaix =",
                          "alelz + anprpa - ak ="]

    static let catalog: Result<ModelCatalog, any Error> = Result {
        try ModelCatalog(modelPaths: [anchor], compositionPaths: [twoExperts, aOnly, bOnly], registry: registry)
    }

    /// What the existing generation path (`calm generate`) produces for `prompt`, greedy.
    static func reference(_ model: ServedModel, _ prompt: String, maxTokens: Int) throws -> (text: String, tokens: [Int]) {
        let ids = model.tokenizer.encodeWithBOS(prompt)
        let decoder: AnyIncrementalDecoder = model.composed.map(AnyIncrementalDecoder.init) ?? AnyIncrementalDecoder(model.anchor)
        let tokens = try decoder.generate(prompt: ids, maxTokens: maxTokens, stopToken: model.tokenizer.eosID)
        return (model.tokenizer.decode(tokens), tokens)
    }
}

/// A server on an ephemeral loopback port and an HTTP client talking to it.
struct ServerHarness {
    let server: InferenceServer
    let port: Int
    let client: HTTPClient
    let runTask: Task<Void, any Error>

    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> ServerHarness {
        var config = ServerConfiguration()
        config.port = 0
        configure(&config)
        let server = try InferenceServer(catalog: try Shipped.catalog.get(), configuration: config)
        let runTask = Task { try await server.run(signals: []) }
        let port = await server.boundPort()
        // More connections than AsyncHTTPClient's default 8, for the concurrent tests.
        var clientConfig = HTTPClient.Configuration()
        clientConfig.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        return ServerHarness(server: server, port: port,
                             client: HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfig), runTask: runTask)
    }

    func stop() async throws {
        try await client.shutdown()
        await server.shutdown()
        try await runTask.value
    }

    struct Reply {
        let status: Int
        let body: String
        var json: JSONValue? { JSONValue.parse(Data(body.utf8)) }
    }

    func get(_ path: String, headers: [(String, String)] = []) async throws -> Reply {
        try await request(path, body: nil, headers: headers)
    }

    func send(_ path: String, body: String, headers: [(String, String)] = []) async throws -> Reply {
        try await request(path, body: body, headers: headers)
    }

    private func request(_ path: String, body: String?, headers: [(String, String)]) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = body == nil ? .GET : .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), body: String(buffer: bytes))
    }

    /// A completion request body as a JSON string.
    static func completion(_ model: String, _ prompt: String, maxTokens: Int, stream: Bool = false, extra: String = "") -> String {
        let quoted = JSONValue.string(prompt).serialized()
        return #"{"model": "\#(model)", "prompt": \#(quoted), "max_tokens": \#(maxTokens), "temperature": 0, "stream": \#(stream)\#(extra)}"#
    }

    /// The concatenated text of a server-sent event stream, checking it ends in `data: [DONE]`.
    static func streamedText(_ body: String) -> (text: String, done: Bool, finish: String?) {
        var text = "", finish: String?
        var done = false
        for line in body.split(separator: "\n") where line.hasPrefix("data: ") {
            let payload = line.dropFirst(6)
            if payload == "[DONE]" { done = true; continue }
            guard let choice = JSONValue.parse(Data(payload.utf8))?["choices"]?.array?.first else { continue }
            text += choice["text"]?.string ?? choice["delta"]?["content"]?.string ?? ""
            if let reason = choice["finish_reason"]?.string { finish = reason }
        }
        return (text, done, finish)
    }
}
