extension ByteCursor {
    /// Arrays may nest; deeper than this is refused rather than recursed into, so a hostile
    /// file of nested array headers cannot exhaust the stack.
    static let maximumArrayDepth = 8

    /// One metadata value of type `type`; `what` names it in errors ("value of key X").
    mutating func value(_ type: GGUFValueType, _ what: @autoclosure () -> String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what()))
        case .int8: return .int8(Int8(bitPattern: try read(UInt8.self, what())))
        case .uint16: return .uint16(try read(UInt16.self, what()))
        case .int16: return .int16(try read(Int16.self, what()))
        case .uint32: return .uint32(try read(UInt32.self, what()))
        case .int32: return .int32(try read(Int32.self, what()))
        case .uint64: return .uint64(try read(UInt64.self, what()))
        case .int64: return .int64(try read(Int64.self, what()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what())))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what())))
        case .bool:
            let byte = try read(UInt8.self, what())
            guard byte <= 1 else { throw fail("\(what()) is a bool stored as \(byte) (only 0 and 1 are valid)") }
            return .bool(byte == 1)
        case .string: return .string(try string(what()))
        case .array:
            guard depth < Self.maximumArrayDepth else {
                throw fail("\(what()) nests arrays more than \(Self.maximumArrayDepth) deep")
            }
            let tag = try read(UInt32.self, "the element type of \(what())")
            guard let elementType = GGUFValueType(rawValue: tag) else {
                throw fail("\(what()) is an array of unknown value type \(tag)")
            }
            let n = try count("the element count of \(what())", minimumBytes: elementType.minimumBytes)
            var elements: [GGUFValue] = []
            elements.reserveCapacity(n)  // bounded by the bytes left, see count(_:minimumBytes:)
            for i in 0..<n {
                elements.append(try value(elementType, "element \(i) of \(what())", depth: depth + 1))
            }
            return .array(elementType, elements)
        }
    }
}
