import Crypto
import Foundation

/// SHA-256 (swift-crypto) for content hashes and tokenizer fingerprints.
public struct ContentDigest {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }
    public mutating func update(_ buffer: UnsafeRawBufferPointer) { hasher.update(bufferPointer: buffer) }
    public mutating func update(_ text: String) { hasher.update(data: Array(text.utf8)) }

    /// Lower-case hexadecimal digest.
    public func finalize() -> String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }

    public static func hex(of bytes: [UInt8]) -> String {
        var digest = ContentDigest()
        digest.update(bytes)
        return digest.finalize()
    }
}
