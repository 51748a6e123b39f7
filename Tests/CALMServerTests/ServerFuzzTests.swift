import AsyncHTTPClient
import CALMSupport
import Foundation
import Testing
@testable import CALMServer

/// A bounded, seeded fuzz of the generation endpoints: random bytes, random JSON, and bodies
/// derived from the served OpenAPI document's request schemas, then broken one field at a
/// time. Every answer must be a valid response or a 4xx error, and the server must stay up.
@Suite("calm serve: fuzz", .serialized)
struct ServerFuzzTests {
    /// SplitMix64: a fixed seed gives the same bodies on every run.
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1e6 < p }
    }

    static let words = ["ak", "aaix", "+", "-", "=", "adtb", "zz", "", "\u{0}", "é", "\"", "{"]

    static func randomJSON(_ r: inout Random, depth: Int = 0) -> JSONValue {
        switch r.below(depth > 2 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(r.chance(0.5))
        case 2: return .int([0, 1, -1, 3, 17, 1 << 40, Int.min].randomElement(using: &r)!)
        case 3: return .double([0.5, -2.5, 1e300, 3.0].randomElement(using: &r)!)
        case 4: return .string((0..<r.below(4)).map { _ in words[r.below(words.count)] }.joined(separator: " "))
        case 5: return .array((0..<r.below(4)).map { _ in randomJSON(&r, depth: depth + 1) })
        default:
            return .object(Dictionary((0..<r.below(4)).map { _ in (words[r.below(words.count)], randomJSON(&r, depth: depth + 1)) },
                                      uniquingKeysWith: { a, _ in a }))
        }
    }

    /// A valid value for a schema property (small generation budgets keep the run short).
    static func valid(_ name: String, _ schema: JSONValue, model: String, r: inout Random) -> JSONValue {
        switch name {
        case "model": return .string(model)
        case "prompt": return .string(Shipped.prompts[r.below(Shipped.prompts.count)])
        case "messages": return .array([.object(["role": .string("user"), "content": .string("ak =")])])
        case "max_tokens", "max_completion_tokens": return .int(1 + r.below(3))
        case "calm": return .object(["gates": .bool(model != "anchor" && r.chance(0.5)), "ignore_eos": .bool(r.chance(0.5))])
        case "stop": return .array([.string("1")])
        case "stream_options": return .object(["include_usage": .bool(r.chance(0.5))])
        default: break
        }
        if let values = schema["enum"]?.array { return values[r.below(values.count)] }
        switch schema["type"]?.string {
        case "boolean": return .bool(r.chance(0.5))
        case "integer":
            let low = schema["minimum"]?.int ?? 0, high = schema["maximum"]?.int ?? low + 5
            return .int(low + r.below(high - low + 1))
        case "number":
            let high = schema["maximum"]?.number ?? 1
            return .double(high * Double(1 + r.below(9)) / 10)
        case "string": return .string("u")
        default: return .null
        }
    }

    /// One body for `schema`: valid, then perhaps broken in one way.
    static func schemaBody(_ schema: JSONValue, model: String, r: inout Random) -> JSONValue {
        let properties = schema["properties"]?.object ?? [:]
        let required = Set(schema["required"]?.array?.compactMap(\.string) ?? [])
        var body: [String: JSONValue] = [:]
        // Sorted: dictionary and set order changes from run to run, and the draws must not.
        for name in properties.keys.sorted() where required.contains(name) || r.chance(0.3) {
            body[name] = valid(name, properties[name]!, model: model, r: &r)
        }
        switch r.below(7) {
        case 0, 5, 6: break  // valid as generated
        case 1: if let victim = required.sorted().randomElement(using: &r) { body[victim] = nil }
        case 2: if let victim = properties.keys.sorted().randomElement(using: &r) { body[victim] = randomJSON(&r) }
        case 3: body["unexpected_\(r.below(100))"] = randomJSON(&r)
        default: body["max_tokens"] = .int([-1, 0, 1 << 30, 12].randomElement(using: &r)!)
        }
        return .object(body)
    }

    @Test func everyAnswerIsAResponseOrA4xxAndTheServerStaysUp() async throws {
        let harness = try await ServerHarness.start()
        let document = try #require(try await harness.get("/openapi.json").json)
        let schemas = try #require(document["components"]?["schemas"])
        var r = Random(state: 20_261_128)
        let targets: [(path: String, schema: JSONValue)] = [
            ("/v1/completions", try #require(schemas["CompletionRequest"])),
            ("/v1/chat/completions", try #require(schemas["ChatRequest"])),
        ]
        var answered: [Int: Int] = [:]
        for i in 0..<240 {
            let target = targets[r.below(targets.count)]
            let body: String
            switch i % 3 {
            case 0: body = String(decoding: (0..<r.below(120)).map { _ in UInt8(truncatingIfNeeded: r.next()) }, as: UTF8.self)
            case 1: body = Self.randomJSON(&r).serialized()
            default:
                let model = ["anchor", "kv-two-experts", "kv-a-only", "missing"][r.below(4)]
                body = Self.schemaBody(target.schema, model: model, r: &r).serialized()
            }
            let reply = try await harness.send(target.path, body: body)
            answered[reply.status, default: 0] += 1
            #expect(reply.status == 200 || (400..<500).contains(reply.status), "\(body) -> \(reply.status) \(reply.body)")
            if reply.status == 200 {
                let streamed = ServerHarness.streamedText(reply.body)
                #expect(reply.json?["choices"]?.array?.count == 1 || streamed.done, "\(body) -> \(reply.body)")
            } else {
                #expect(reply.json?["error"]?["message"]?.string != nil, "\(body) -> \(reply.body)")
            }
        }
        #expect((answered[200] ?? 0) >= 8, "the schema-derived bodies should often be valid: \(answered)")
        #expect(try await harness.get("/health").status == 200)
        try await harness.stop()
    }
}
