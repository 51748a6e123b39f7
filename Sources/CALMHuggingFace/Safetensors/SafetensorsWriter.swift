import CALMSupport
import Foundation

/// Writes float32 tensors as a safetensors file, atomically: the header lists tensors in the
/// given order with contiguous data offsets and is padded with spaces to a multiple of 8 bytes
/// (so every tensor's data is aligned, as the reference implementation does).
public enum SafetensorsWriter {
    public static func write(_ tensors: [(name: String, shape: [Int], data: [Float])], metadata: [String: String] = [:],
                             to path: String) throws {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        var seen = Set<String>()
        for t in tensors {
            guard seen.insert(t.name).inserted, t.name != "__metadata__" else {
                throw SafetensorsError(path: path, message: "tensor name \(t.name) is repeated or reserved")
            }
            guard t.shape.reduce(1, *) == t.data.count else {
                throw SafetensorsError(path: path, message: "tensor \(t.name): shape \(t.shape) does not hold \(t.data.count) values")
            }
            let end = offset + 4 * t.data.count
            parts.append("\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var out = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in tensors {
            t.data.withUnsafeBufferPointer { p in
                let littleEndian = p.map { $0.bitPattern.littleEndian }
                littleEndian.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        try writeAtomically(out, to: path)
    }

    /// A JSON string literal.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
