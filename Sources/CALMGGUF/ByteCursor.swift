/// Reads little-endian values from a byte buffer, front to back. Every read is checked against
/// the bytes left, and every length or count read from the buffer is checked against them
/// before anything is allocated, so a corrupt count cannot ask for more memory than the file
/// holds.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    private(set) var position = 0
    let fail: (String) -> GGUFError

    init(_ bytes: UnsafeRawBufferPointer, fail: @escaping (String) -> GGUFError) {
        self.bytes = bytes
        self.fail = fail
    }

    var remaining: Int { bytes.count - position }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw fail("file ends at byte \(bytes.count), inside \(what()) at byte \(position)")
        }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: value)
    }

    /// A count of things at least `minimumBytes` each, which must fit in the bytes left.
    mutating func count(_ what: @autoclosure () -> String, minimumBytes: Int) throws -> Int {
        let n = try read(UInt64.self, what())
        guard n <= UInt64(remaining / max(minimumBytes, 1)) else {
            throw fail("\(what()) is \(n), more than the \(remaining) bytes left in the file can hold")
        }
        return Int(n)
    }

    /// A GGUF string: a 64-bit byte length, then that many bytes of UTF-8 (no terminator).
    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let start = position
        let length = try count("the byte length of \(what())", minimumBytes: 1)
        let body = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)])
        guard let s = String(validating: body, as: UTF8.self) else {
            throw fail("\(what()) at byte \(start) is not valid UTF-8")
        }
        position += length
        return s
    }
}
