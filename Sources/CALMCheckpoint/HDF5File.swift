import CHDF5
import Foundation

/// A failure reading or writing an HDF5 file; the message names the file and the object.
public struct HDF5Error: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// A minimal, safe wrapper over the HDF5 C API: float32 and int64 datasets, string and
/// integer attributes, groups. The serial HDF5 library is not thread-safe, so every call
/// holds one process-wide lock.
public final class HDF5File {
    public let path: String
    private var id: hid_t

    private static let lock: NSRecursiveLock = {
        calm_h5_silence_errors()
        return NSRecursiveLock()
    }()

    static func locked<R>(_ body: () throws -> R) rethrows -> R {
        let lock = Self.lock
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    /// Creates (or truncates) a file for writing.
    public static func create(_ path: String) throws -> HDF5File {
        try locked {
            let id = H5Fcreate(path, calm_h5f_acc_trunc(), calm_h5p_default(), calm_h5p_default())
            guard id >= 0 else { throw HDF5Error(path: path, message: "cannot create HDF5 file") }
            return HDF5File(path: path, id: id)
        }
    }

    /// Opens an existing file read-only.
    public static func open(_ path: String) throws -> HDF5File {
        try locked {
            guard FileManager.default.fileExists(atPath: path) else {
                throw HDF5Error(path: path, message: "no such file")
            }
            guard H5Fis_hdf5(path) > 0 else {
                throw HDF5Error(path: path, message: "not an HDF5 file (or its header is damaged)")
            }
            let id = H5Fopen(path, calm_h5f_acc_rdonly(), calm_h5p_default())
            guard id >= 0 else { throw HDF5Error(path: path, message: "cannot open HDF5 file (truncated or corrupt?)") }
            return HDF5File(path: path, id: id)
        }
    }

    deinit {
        if id >= 0 { HDF5File.locked { _ = H5Fclose(id) } }
    }

    /// Closes the file now, reporting a failed final write (deinit cannot). Idempotent.
    public func close() throws {
        try Self.locked {
            guard id >= 0 else { return }
            let status = H5Fclose(id)
            id = -1
            guard status >= 0 else { throw error("cannot finish writing the file") }
        }
    }

    private func error(_ message: String) -> HDF5Error { HDF5Error(path: path, message: message) }

    // MARK: Groups and links

    /// Whether an object exists at `objectPath` (every component is checked).
    public func exists(_ objectPath: String) -> Bool {
        Self.locked {
            var prefix = ""
            for component in objectPath.split(separator: "/") {
                prefix += "/" + component
                guard H5Lexists(id, prefix, calm_h5p_default()) > 0 else { return false }
            }
            return true
        }
    }

    public func createGroup(_ groupPath: String) throws {
        try Self.locked {
            let g = H5Gcreate2(id, groupPath, calm_h5p_default(), calm_h5p_default(), calm_h5p_default())
            guard g >= 0 else { throw error("cannot create group \(groupPath)") }
            H5Gclose(g)
        }
    }

    /// Names of the direct children of a group.
    public func children(of groupPath: String) throws -> [String] {
        try Self.locked {
            let g = H5Gopen2(id, groupPath, calm_h5p_default())
            guard g >= 0 else { throw error("missing group \(groupPath)") }
            defer { H5Gclose(g) }
            var info = H5G_info_t()
            guard H5Gget_info(g, &info) >= 0 else { throw error("cannot read group \(groupPath)") }
            var names: [String] = []
            for i in 0..<info.nlinks {
                let size = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, calm_h5p_default())
                guard size >= 0 else { throw error("cannot read a link name in \(groupPath)") }
                var buffer = [CChar](repeating: 0, count: Int(size) + 1)
                H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, Int(size) + 1, calm_h5p_default())
                names.append(String(decoding: buffer.prefix(Int(size)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return names
        }
    }

    // MARK: Datasets

    public func writeFloats(_ datasetPath: String, shape: [Int], data: [Float]) throws {
        precondition(shape.reduce(1, *) == data.count)
        try write(datasetPath, shape: shape, fileType: calm_h5t_ieee_f32le(), memType: calm_h5t_native_float()) { body in
            data.withUnsafeBytes { body($0.baseAddress) }
        }
    }

    public func writeInt64s(_ datasetPath: String, shape: [Int], data: [Int64]) throws {
        precondition(shape.reduce(1, *) == data.count)
        try write(datasetPath, shape: shape, fileType: calm_h5t_std_i64le(), memType: calm_h5t_native_int64()) { body in
            data.withUnsafeBytes { body($0.baseAddress) }
        }
    }

    /// Writes raw bytes as an unsigned integer dataset of 1- or 2-byte elements (quantized
    /// blocks as uint8, bf16 as uint16; `bytes` holds the elements little-endian).
    public func writeUnsigned(_ datasetPath: String, shape: [Int], elementSize: Int, bytes: [UInt8]) throws {
        precondition((elementSize == 1 || elementSize == 2) && shape.reduce(1, *) * elementSize == bytes.count)
        let (fileType, memType) = elementSize == 1
            ? (calm_h5t_std_u8le(), calm_h5t_native_uint8()) : (calm_h5t_std_u16le(), calm_h5t_native_uint16())
        try write(datasetPath, shape: shape, fileType: fileType, memType: memType) { body in
            bytes.withUnsafeBytes { body($0.baseAddress) }
        }
    }

    private func write(_ datasetPath: String, shape: [Int], fileType: hid_t, memType: hid_t,
                       withBytes: ((UnsafeRawPointer?) -> herr_t) -> herr_t) throws {
        try Self.locked {
            var dims = shape.map { hsize_t($0) }
            let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
            guard space >= 0 else { throw error("cannot create dataspace for \(datasetPath)") }
            defer { H5Sclose(space) }
            let ds = H5Dcreate2(id, datasetPath, fileType, space, calm_h5p_default(), calm_h5p_default(), calm_h5p_default())
            guard ds >= 0 else { throw error("cannot create dataset \(datasetPath)") }
            defer { H5Dclose(ds) }
            let status = withBytes { ptr in
                H5Dwrite(ds, memType, calm_h5s_all(), calm_h5s_all(), calm_h5p_default(), ptr)
            }
            guard status >= 0 else { throw error("cannot write dataset \(datasetPath)") }
        }
    }

    /// Shape of a dataset.
    public func shape(of datasetPath: String) throws -> [Int] {
        try Self.locked {
            let ds = H5Dopen2(id, datasetPath, calm_h5p_default())
            guard ds >= 0 else { throw error("missing dataset \(datasetPath)") }
            defer { H5Dclose(ds) }
            return try shape(ofOpen: ds, datasetPath)
        }
    }

    private func shape(ofOpen ds: hid_t, _ datasetPath: String) throws -> [Int] {
        let space = H5Dget_space(ds)
        guard space >= 0 else { throw error("cannot read the shape of \(datasetPath)") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw error("cannot read the shape of \(datasetPath)") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    /// Reads a float dataset (converted to float32) with its shape.
    public func readFloats(_ datasetPath: String) throws -> (shape: [Int], data: [Float]) {
        try read(datasetPath, expect: H5T_FLOAT, memType: calm_h5t_native_float(), zero: Float(0))
    }

    /// Reads an integer dataset as int64.
    public func readInt64s(_ datasetPath: String) throws -> (shape: [Int], data: [Int64]) {
        try read(datasetPath, expect: H5T_INTEGER, memType: calm_h5t_native_int64(), zero: Int64(0))
    }

    /// Reads an unsigned integer dataset of `elementSize`-byte elements as raw bytes (elements
    /// little-endian), refusing any other element type.
    public func readUnsigned(_ datasetPath: String, elementSize: Int) throws -> (shape: [Int], bytes: [UInt8]) {
        precondition(elementSize == 1 || elementSize == 2)
        return try Self.locked {
            let ds = H5Dopen2(id, datasetPath, calm_h5p_default())
            guard ds >= 0 else { throw error("missing dataset \(datasetPath)") }
            defer { H5Dclose(ds) }
            let type = H5Dget_type(ds)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_INTEGER, H5Tget_size(type) == elementSize, H5Tget_sign(type) == H5T_SGN_NONE else {
                throw error("dataset \(datasetPath) has the wrong element type (expected uint\(8 * elementSize))")
            }
            let shape = try shape(ofOpen: ds, datasetPath)
            let memType = elementSize == 1 ? calm_h5t_native_uint8() : calm_h5t_native_uint16()
            var status: herr_t = 0
            let bytes = [UInt8](unsafeUninitializedCapacity: shape.reduce(1, *) * elementSize) { buffer, initialized in
                status = buffer.isEmpty ? 0 : H5Dread(ds, memType, calm_h5s_all(), calm_h5s_all(), calm_h5p_default(), buffer.baseAddress)
                initialized = status >= 0 ? buffer.count : 0
            }
            guard status >= 0 else { throw error("cannot read dataset \(datasetPath) (file truncated or corrupt?)") }
            return (shape, bytes)
        }
    }

    private func read<T>(_ datasetPath: String, expect cls: H5T_class_t, memType: hid_t, zero: T) throws -> (shape: [Int], data: [T]) {
        try Self.locked {
            let ds = H5Dopen2(id, datasetPath, calm_h5p_default())
            guard ds >= 0 else { throw error("missing dataset \(datasetPath)") }
            defer { H5Dclose(ds) }
            let type = H5Dget_type(ds)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == cls else {
                throw error("dataset \(datasetPath) has the wrong element type (expected \(cls == H5T_FLOAT ? "float" : "integer"))")
            }
            let shape = try shape(ofOpen: ds, datasetPath)
            // Read straight into the array's storage: no zero fill of memory about to be overwritten.
            var status: herr_t = 0
            let data = [T](unsafeUninitializedCapacity: shape.reduce(1, *)) { buffer, initialized in
                status = H5Dread(ds, memType, calm_h5s_all(), calm_h5s_all(), calm_h5p_default(), buffer.baseAddress)
                initialized = status >= 0 ? buffer.count : 0
            }
            guard status >= 0 else { throw error("cannot read dataset \(datasetPath) (file truncated or corrupt?)") }
            return (shape, data)
        }
    }

    // MARK: Attributes

    private func withObject<R>(_ objectPath: String, _ body: (hid_t) throws -> R) throws -> R {
        let obj = H5Oopen(id, objectPath, calm_h5p_default())
        guard obj >= 0 else { throw error("missing object \(objectPath)") }
        defer { H5Oclose(obj) }
        return try body(obj)
    }

    /// Writes a UTF-8 variable-length string attribute (what h5py reads as `str`).
    public func setAttribute(_ name: String, _ value: String, on objectPath: String = "/") throws {
        try Self.locked {
            try withObject(objectPath) { obj in
                let type = H5Tcopy(calm_h5t_c_s1())
                defer { H5Tclose(type) }
                H5Tset_size(type, calm_h5t_variable())
                H5Tset_cset(type, H5T_CSET_UTF8)
                let space = H5Screate(H5S_SCALAR)
                defer { H5Sclose(space) }
                if H5Aexists(obj, name) > 0 { H5Adelete(obj, name) }
                let attr = H5Acreate2(obj, name, type, space, calm_h5p_default(), calm_h5p_default())
                guard attr >= 0 else { throw error("cannot create attribute \(name)") }
                defer { H5Aclose(attr) }
                let status = value.withCString { cstr -> herr_t in
                    var pointer: UnsafePointer<CChar>? = cstr
                    return H5Awrite(attr, type, &pointer)
                }
                guard status >= 0 else { throw error("cannot write attribute \(name)") }
            }
        }
    }

    /// Writes an int64 scalar attribute.
    public func setAttribute(_ name: String, _ value: Int, on objectPath: String = "/") throws {
        try Self.locked {
            try withObject(objectPath) { obj in
                let space = H5Screate(H5S_SCALAR)
                defer { H5Sclose(space) }
                if H5Aexists(obj, name) > 0 { H5Adelete(obj, name) }
                let attr = H5Acreate2(obj, name, calm_h5t_std_i64le(), space, calm_h5p_default(), calm_h5p_default())
                guard attr >= 0 else { throw error("cannot create attribute \(name)") }
                defer { H5Aclose(attr) }
                var v = Int64(value)
                guard H5Awrite(attr, calm_h5t_native_int64(), &v) >= 0 else { throw error("cannot write attribute \(name)") }
            }
        }
    }

    /// Writes a one-dimensional int64 array attribute (h5py reads it as a numpy array).
    public func setAttribute(_ name: String, _ values: [Int], on objectPath: String = "/") throws {
        try Self.locked {
            try withObject(objectPath) { obj in
                var dims = [hsize_t(values.count)]
                let space = H5Screate_simple(1, &dims, nil)
                guard space >= 0 else { throw error("cannot create attribute \(name)") }
                defer { H5Sclose(space) }
                if H5Aexists(obj, name) > 0 { H5Adelete(obj, name) }
                let attr = H5Acreate2(obj, name, calm_h5t_std_i64le(), space, calm_h5p_default(), calm_h5p_default())
                guard attr >= 0 else { throw error("cannot create attribute \(name)") }
                defer { H5Aclose(attr) }
                let v = values.map(Int64.init)
                guard H5Awrite(attr, calm_h5t_native_int64(), v) >= 0 else { throw error("cannot write attribute \(name)") }
            }
        }
    }

    /// An integer array attribute (a scalar reads as one element), or nil when absent.
    public func intArrayAttribute(_ name: String, of objectPath: String = "/") throws -> [Int]? {
        try readAttribute(name, of: objectPath, expect: H5T_INTEGER, what: "an integer array") { attr, _ in
            let space = H5Aget_space(attr)
            guard space >= 0 else { throw error("cannot read attribute \(name)") }
            defer { H5Sclose(space) }
            let count = H5Sget_simple_extent_npoints(space)
            guard count >= 0, count <= 64 else { throw error("attribute \(name) has \(count) elements") }
            var v = [Int64](repeating: 0, count: Int(count))
            guard count == 0 || H5Aread(attr, calm_h5t_native_int64(), &v) >= 0 else { throw error("cannot read attribute \(name)") }
            return v.map { Int($0) }
        }
    }

    /// Opens attribute `name` of `objectPath` (nil when absent), checks its type class and
    /// hands it with its file type to `body`.
    private func readAttribute<R>(_ name: String, of objectPath: String, expect cls: H5T_class_t, what: String,
                                  _ body: (_ attr: hid_t, _ fileType: hid_t) throws -> R) throws -> R? {
        try Self.locked {
            try withObject(objectPath) { obj -> R? in
                guard H5Aexists(obj, name) > 0 else { return nil }
                let attr = H5Aopen(obj, name, calm_h5p_default())
                guard attr >= 0 else { throw error("cannot open attribute \(name)") }
                defer { H5Aclose(attr) }
                let fileType = H5Aget_type(attr)
                defer { H5Tclose(fileType) }
                guard H5Tget_class(fileType) == cls else { throw error("attribute \(name) is not \(what)") }
                return try body(attr, fileType)
            }
        }
    }

    /// A string attribute (variable or fixed length), or nil when absent.
    public func stringAttribute(_ name: String, of objectPath: String = "/") throws -> String? {
        try readAttribute(name, of: objectPath, expect: H5T_STRING, what: "a string") { attr, fileType in
            let memType = H5Tcopy(calm_h5t_c_s1())
            defer { H5Tclose(memType) }
            H5Tset_cset(memType, H5T_CSET_UTF8)
            if H5Tis_variable_str(fileType) > 0 {
                H5Tset_size(memType, calm_h5t_variable())
                var pointer: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(attr, memType, &pointer) >= 0, let pointer else {
                    throw error("cannot read attribute \(name)")
                }
                defer { H5free_memory(pointer) }
                return String(cString: pointer)
            }
            let size = H5Tget_size(fileType)
            H5Tset_size(memType, size)
            var buffer = [UInt8](repeating: 0, count: size + 1)
            guard H5Aread(attr, memType, &buffer) >= 0 else { throw error("cannot read attribute \(name)") }
            return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// An integer attribute, or nil when absent.
    public func intAttribute(_ name: String, of objectPath: String = "/") throws -> Int? {
        try readAttribute(name, of: objectPath, expect: H5T_INTEGER, what: "an integer") { attr, _ in
            var v: Int64 = 0
            guard H5Aread(attr, calm_h5t_native_int64(), &v) >= 0 else { throw error("cannot read attribute \(name)") }
            return Int(v)
        }
    }
}
