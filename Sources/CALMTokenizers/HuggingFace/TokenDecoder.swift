import CALMSupport
import Foundation

/// Turns token strings back into text.
indirect enum TokenDecoder {
    case sequence([TokenDecoder])
    case byteLevel
    case replace(TextPattern, String)
    case byteFallback
    case fuse
    case strip(content: Character, start: Int, stop: Int)
    case metaspace(replacement: String, prependScheme: String)

    static let supported = "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace"

    init?(json: JSONValue?) throws {
        guard let json, !json.isNull else { return nil }
        let type = json["type"]?.string ?? "(none)"
        switch type {
        case "Sequence": self = .sequence(try (json["decoders"]?.array ?? []).compactMap { try TokenDecoder(json: $0) })
        case "ByteLevel": self = .byteLevel
        case "Replace":
            self = .replace(try TextPattern(json["pattern"], where: "Replace decoder"), json["content"]?.string ?? "")
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            guard let content = json["content"]?.string, content.count == 1 else { throw tokenizerError("Strip decoder needs a one-character content") }
            self = .strip(content: Character(content), start: json["start"]?.int ?? 0, stop: json["stop"]?.int ?? 0)
        case "Metaspace":
            let scheme = json["prepend_scheme"]?.string ?? ((json["add_prefix_space"]?.bool ?? true) ? "always" : "never")
            self = .metaspace(replacement: json["replacement"]?.string ?? "▁", prependScheme: scheme)
        default: throw tokenizerError("unsupported decoder \(type) (supported: \(Self.supported))")
        }
    }

    func callAsFunction(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps): return steps.reduce(tokens) { $1($0) }
        case .byteLevel:
            return [String(decoding: tokens.flatMap { ByteLevel.decodeBytes($0) }, as: UTF8.self)]
        case .replace(let pattern, let content): return tokens.map { pattern.replacingMatches(in: $0, with: content) }
        case .fuse: return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var s = Substring(token)
                for _ in 0..<start where s.first == content { s = s.dropFirst() }
                for _ in 0..<stop where s.last == content { s = s.dropLast() }
                return String(s)
            }
        case .metaspace(let replacement, let scheme):
            return tokens.enumerated().map { i, token in
                var s = token.replacingOccurrences(of: replacement, with: " ")
                if i == 0, scheme != "never", s.hasPrefix(" ") { s.removeFirst() }
                return s
            }
        case .byteFallback:
            // Runs of <0xXX> tokens become the bytes they spell; invalid UTF-8 becomes U+FFFD per byte.
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) { out.append(s) } else {
                    out += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending = []
            }
            for token in tokens {
                if token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">"),
                   let b = UInt8(token.dropFirst(3).prefix(2), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        }
    }
}
