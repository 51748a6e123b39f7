import CALMGGUF
import Foundation

/// Writes GGUF bytes field by field, so tests can break each rule of the format on purpose.
struct GGUFBuilder {
    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    /// Declared counts; nil writes the real ones.
    var tensorCount: UInt64?
    var keyCount: UInt64?
    /// Each key's bytes after the key string: value type, then the value.
    var keys: [(name: String, body: [UInt8])] = []
    var tensors: [(name: String, dims: [UInt64], type: UInt32, offset: UInt64)] = []
    var alignment = 32
    var data: [UInt8] = []

    static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func string(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }

    mutating func key(_ name: String, uint32 v: UInt32) { keys.append((name, Self.u32(4) + Self.u32(v))) }
    mutating func key(_ name: String, string v: String) { keys.append((name, Self.u32(8) + Self.string(v))) }
    mutating func key(_ name: String, float32 v: Float) { keys.append((name, Self.u32(6) + Self.u32(v.bitPattern))) }
    mutating func key(_ name: String, strings: [String]) {
        keys.append((name, Self.u32(9) + Self.u32(8) + Self.u64(UInt64(strings.count)) + strings.flatMap(Self.string)))
    }

    /// An F32 tensor of `count` elements at the next aligned offset, its values appended.
    mutating func f32Tensor(_ name: String, dims: [UInt64], values: [Float]) {
        while data.count % alignment != 0 { data.append(0) }
        tensors.append((name, dims, 0, UInt64(data.count)))
        data += values.flatMap { Self.u32($0.bitPattern) }
    }

    var bytes: Data {
        var out = magic + Self.u32(version)
        out += Self.u64(tensorCount ?? UInt64(tensors.count)) + Self.u64(keyCount ?? UInt64(keys.count))
        for k in keys { out += Self.string(k.name) + k.body }
        for t in tensors {
            out += Self.string(t.name) + Self.u32(UInt32(t.dims.count)) + t.dims.flatMap(Self.u64) + Self.u32(t.type) + Self.u64(t.offset)
        }
        while out.count % alignment != 0 { out.append(0) }
        return Data(out + data)
    }

    /// A valid little file: a string key and two small F32 tensors.
    static var valid: GGUFBuilder {
        var b = GGUFBuilder()
        b.key("general.architecture", string: "test")
        b.f32Tensor("a", dims: [4, 2], values: (0..<8).map(Float.init))
        b.f32Tensor("b", dims: [3], values: [1, 2, 3])
        return b
    }
}
