import CHDF5
import Foundation

/// A failure reading or writing an HDF5 file; the message names the file and the object.
public struct HDF5Error: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    /// The object was read but its bytes do not match the checksum stored with it.
    public var isChecksumMismatch = false
    public var description: String { "\(path): \(message)" }
}

/// A minimal, safe wrapper over the HDF5 C API: float32 and int64 datasets, string and
/// integer attributes, groups. Whether libhdf5 is thread-safe depends on how it was built, so
/// every call holds one process-wide lock.
///
/// Files created here use HDF5 1.8 metadata formats, which HDF5 itself checksums, and every
/// dataset carries an XXH64 of its bytes (attribute `checksum_xxh64`) that each read verifies.
public final class HDF5File {
    public let path: String
    private var id: hid_t
    /// Whether this handle writes dataset checksums (false only for files created in the
    /// pre-checksum layout, which tests use to stand in for older files).
    let writesChecksums: Bool
    /// Set when the file's metadata seal verified on open (see CheckpointIntegrity.swift):
    /// every dataset must then carry a checksum, so one cannot silently go unchecked.
    public internal(set) var isSealed = false

    static let checksumAttribute = "checksum_xxh64"
    /// Attributes stay in their object's header (which HDF5 checksums) up to this many; past
    /// HDF5's default of 8 they would move to a heap whose large entries it does not checksum.
    static let maxCompactAttributes: UInt32 = 64

    private static let lock = NSRecursiveLock()

    static func locked<R>(_ body: () throws -> R) rethrows -> R {
        let lock = Self.lock
        lock.lock()
        defer { lock.unlock() }
        // Debian's libhdf5 is built thread-safe, which makes the error-printing setting
        // per thread: silence it on whichever thread is calling (a cheap call).
        calm_h5_silence_errors()
        return try body()
    }

    private init(path: String, id: hid_t, writesChecksums: Bool) {
        self.path = path
        self.id = id
        self.writesChecksums = writesChecksums
    }

    /// Creates (or truncates) a file for writing. `checksums: false` writes the layout of
    /// files made before checksums were added (HDF5's oldest formats, no dataset checksums),
    /// so tests can check that such files still load.
    public static func create(_ path: String, checksums: Bool = true) throws -> HDF5File {
        try locked {
            let access = H5Pcreate(calm_h5p_file_access())
            guard access >= 0 else { throw HDF5Error(path: path, message: "cannot create HDF5 file") }
            defer { H5Pclose(access) }
            // The 1.8 formats checksum superblock, object headers, B-trees and heaps; files stay
            // readable by HDF5 1.8 and later (h5py included).
            if checksums, H5Pset_libver_bounds(access, calm_h5f_libver_v18(), calm_h5f_libver_latest()) < 0 {
                throw HDF5Error(path: path, message: "cannot select the checksummed HDF5 file format")
            }
            let creation = H5Pcreate(calm_h5p_file_create())
            guard creation >= 0 else { throw HDF5Error(path: path, message: "cannot create HDF5 file") }
            defer { H5Pclose(creation) }
            if checksums, H5Pset_attr_phase_change(creation, maxCompactAttributes, maxCompactAttributes - 16) < 0 {
                throw HDF5Error(path: path, message: "cannot select compact attribute storage")
            }
            let id = H5Fcreate(path, calm_h5f_acc_trunc(), creation, access)
            guard id >= 0 else { throw HDF5Error(path: path, message: "cannot create HDF5 file") }
            return HDF5File(path: path, id: id, writesChecksums: checksums)
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
            let file = HDF5File(path: path, id: id, writesChecksums: false)
            try file.verifySeal()
            return file
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

    /// Why an object could not be opened: absent, or present but unreadable, which in a
    /// checksummed file means its header failed HDF5's checksum.
    private func openFailure(_ what: String, _ objectPath: String) -> HDF5Error {
        exists(objectPath) ? error("\(what) \(objectPath) is damaged (its header cannot be read)") : error("missing \(what) \(objectPath)")
    }

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
            let creation = H5Pcreate(calm_h5p_group_create())
            guard creation >= 0 else { throw error("cannot create group \(groupPath)") }
            defer { H5Pclose(creation) }
            if writesChecksums {
                H5Pset_attr_phase_change(creation, Self.maxCompactAttributes, Self.maxCompactAttributes - 16)
            }
            let g = H5Gcreate2(id, groupPath, calm_h5p_default(), creation, calm_h5p_default())
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

    /// Whether `objectPath` names a group (rather than a dataset).
    func isGroup(_ objectPath: String) throws -> Bool {
        try Self.locked { try withObject(objectPath) { H5Iget_type($0) == H5I_GROUP } }
    }

    /// Names of the attributes of an object, sorted.
    func attributeNames(of objectPath: String) throws -> [String] {
        try Self.locked {
            try withObject(objectPath) { obj in
                var info = H5O_info_t()
                guard H5Oget_info2(obj, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else {
                    throw error("cannot list the attributes of \(objectPath)")
                }
                var names: [String] = []
                for i in 0..<info.num_attrs {
                    let size = H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, calm_h5p_default())
                    guard size >= 0 else { throw error("cannot read an attribute name of \(objectPath)") }
                    var buffer = [CChar](repeating: 0, count: Int(size) + 1)
                    H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, Int(size) + 1, calm_h5p_default())
                    names.append(String(decoding: buffer.prefix(Int(size)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
                }
                return names.sorted()
            }
        }
    }

    /// The type class (string, integer, ...) of an attribute.
    func attributeClass(_ name: String, of objectPath: String) throws -> H5T_class_t {
        try Self.locked {
            try withObject(objectPath) { obj in
                let attr = H5Aopen(obj, name, calm_h5p_default())
                guard attr >= 0 else { throw error("cannot open attribute \(name) of \(objectPath)") }
                defer { H5Aclose(attr) }
                let type = H5Aget_type(attr)
                guard type >= 0 else { throw error("cannot read the type of attribute \(name) of \(objectPath)") }
                defer { H5Tclose(type) }
                return H5Tget_class(type)
            }
        }
    }

    /// The element types this wrapper reads without changing a bit.
    enum ElementType { case float32, int64, unsigned(bytes: Int), other }

    func elementType(of datasetPath: String) throws -> ElementType {
        try Self.locked {
            let ds = H5Dopen2(id, datasetPath, calm_h5p_default())
            guard ds >= 0 else { throw openFailure("dataset", datasetPath) }
            defer { H5Dclose(ds) }
            let type = H5Dget_type(ds)
            guard type >= 0 else { throw error("cannot read the type of dataset \(datasetPath)") }
            defer { H5Tclose(type) }
            switch (H5Tget_class(type), H5Tget_size(type)) {
            case (H5T_FLOAT, 4): return .float32
            case (H5T_INTEGER, 8) where H5Tget_sign(type) == H5T_SGN_2: return .int64
            case (H5T_INTEGER, let size) where (size == 1 || size == 2) && H5Tget_sign(type) == H5T_SGN_NONE:
                return .unsigned(bytes: size)
            default: return .other
            }
        }
    }

    // MARK: Datasets

    public func writeFloats(_ datasetPath: String, shape: [Int], data: [Float]) throws {
        precondition(shape.reduce(1, *) == data.count)
        try write(datasetPath, shape: shape, fileType: calm_h5t_ieee_f32le(), memType: calm_h5t_native_float()) { body in
            try data.withUnsafeBytes { try body($0) }
        }
    }

    public func writeInt64s(_ datasetPath: String, shape: [Int], data: [Int64]) throws {
        precondition(shape.reduce(1, *) == data.count)
        try write(datasetPath, shape: shape, fileType: calm_h5t_std_i64le(), memType: calm_h5t_native_int64()) { body in
            try data.withUnsafeBytes { try body($0) }
        }
    }

    /// Writes raw bytes as an unsigned integer dataset of 1- or 2-byte elements (quantized
    /// blocks as uint8, bf16 as uint16; `bytes` holds the elements little-endian).
    public func writeUnsigned(_ datasetPath: String, shape: [Int], elementSize: Int, bytes: [UInt8]) throws {
        precondition((elementSize == 1 || elementSize == 2) && shape.reduce(1, *) * elementSize == bytes.count)
        let (fileType, memType) = elementSize == 1
            ? (calm_h5t_std_u8le(), calm_h5t_native_uint8()) : (calm_h5t_std_u16le(), calm_h5t_native_uint16())
        try write(datasetPath, shape: shape, fileType: fileType, memType: memType) { body in
            try bytes.withUnsafeBytes { try body($0) }
        }
    }

    private func write(_ datasetPath: String, shape: [Int], fileType: hid_t, memType: hid_t,
                       withBytes: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        try Self.locked {
            var dims = shape.map { hsize_t($0) }
            let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
            guard space >= 0 else { throw error("cannot create dataspace for \(datasetPath)") }
            defer { H5Sclose(space) }
            let ds = H5Dcreate2(id, datasetPath, fileType, space, calm_h5p_default(), calm_h5p_default(), calm_h5p_default())
            guard ds >= 0 else { throw error("cannot create dataset \(datasetPath)") }
            defer { H5Dclose(ds) }
            try withBytes { bytes in
                guard H5Dwrite(ds, memType, calm_h5s_all(), calm_h5s_all(), calm_h5p_default(), bytes.baseAddress) >= 0 else {
                    throw error("cannot write dataset \(datasetPath)")
                }
                if writesChecksums {
                    try setAttribute(Self.checksumAttribute, Int(Int64(bitPattern: calm_xxh64(bytes.baseAddress, bytes.count))),
                                     onOpen: ds, datasetPath)
                }
            }
        }
    }

    /// Compares the XXH64 of `bytes`, just read from `ds`, with the one stored beside them.
    /// A file without the attribute predates checksums, unless it is sealed.
    private func verifyChecksum(of bytes: UnsafeRawBufferPointer, in ds: hid_t, _ datasetPath: String) throws {
        let exists = H5Aexists(ds, Self.checksumAttribute)
        guard exists >= 0 else { throw error("cannot read the checksum of dataset \(datasetPath)") }
        guard exists > 0 else {
            if isSealed { throw error("dataset \(datasetPath) carries no checksum in a checksummed file") }
            return
        }
        let attr = H5Aopen(ds, Self.checksumAttribute, calm_h5p_default())
        guard attr >= 0 else { throw error("cannot read the checksum of dataset \(datasetPath)") }
        defer { H5Aclose(attr) }
        var stored: Int64 = 0
        guard H5Aread(attr, calm_h5t_native_int64(), &stored) >= 0 else {
            throw error("cannot read the checksum of dataset \(datasetPath)")
        }
        guard UInt64(bitPattern: stored) == calm_xxh64(bytes.baseAddress, bytes.count) else {
            throw HDF5Error(path: path, message: "dataset \(datasetPath) is damaged (checksum mismatch)", isChecksumMismatch: true)
        }
    }

    /// Shape of a dataset.
    public func shape(of datasetPath: String) throws -> [Int] {
        try Self.locked {
            let ds = H5Dopen2(id, datasetPath, calm_h5p_default())
            guard ds >= 0 else { throw openFailure("dataset", datasetPath) }
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
            var failure: Error?
            let bytes = [UInt8](unsafeUninitializedCapacity: shape.reduce(1, *) * elementSize) { buffer, initialized in
                initialized = 0
                let status = buffer.isEmpty ? 0 : H5Dread(ds, memType, calm_h5s_all(), calm_h5s_all(), calm_h5p_default(), buffer.baseAddress)
                guard status >= 0 else {
                    failure = error("cannot read dataset \(datasetPath) (file truncated or corrupt?)")
                    return
                }
                initialized = buffer.count
                do { try verifyChecksum(of: UnsafeRawBufferPointer(buffer), in: ds, datasetPath) } catch { failure = error }
            }
            if let failure { throw failure }
            return (shape, bytes)
        }
    }

    private func read<T>(_ datasetPath: String, expect cls: H5T_class_t, memType: hid_t, zero: T) throws -> (shape: [Int], data: [T]) {
        try Self.locked {
            let ds = H5Dopen2(id, datasetPath, calm_h5p_default())
            guard ds >= 0 else { throw openFailure("dataset", datasetPath) }
            defer { H5Dclose(ds) }
            let type = H5Dget_type(ds)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == cls else {
                throw error("dataset \(datasetPath) has the wrong element type (expected \(cls == H5T_FLOAT ? "float" : "integer"))")
            }
            let shape = try shape(ofOpen: ds, datasetPath)
            // Read straight into the array's storage: no zero fill of memory about to be overwritten.
            var failure: Error?
            let data = [T](unsafeUninitializedCapacity: shape.reduce(1, *)) { buffer, initialized in
                initialized = 0
                guard H5Dread(ds, memType, calm_h5s_all(), calm_h5s_all(), calm_h5p_default(), buffer.baseAddress) >= 0 else {
                    failure = error("cannot read dataset \(datasetPath) (file truncated or corrupt?)")
                    return
                }
                initialized = buffer.count
                do { try verifyChecksum(of: UnsafeRawBufferPointer(buffer), in: ds, datasetPath) } catch { failure = error }
            }
            if let failure { throw failure }
            return (shape, data)
        }
    }

    // MARK: Attributes

    private func withObject<R>(_ objectPath: String, _ body: (hid_t) throws -> R) throws -> R {
        let obj = H5Oopen(id, objectPath, calm_h5p_default())
        guard obj >= 0 else { throw openFailure("object", objectPath) }
        defer { H5Oclose(obj) }
        return try body(obj)
    }

    /// Writes a UTF-8 string attribute. Checksummed files store it fixed-length, inside the
    /// object header that HDF5 checksums; the pre-checksum layout used variable-length strings,
    /// whose bytes live in HDF5's global heap: unchecksummed, and HDF5 1.10 trusts the lengths
    /// stored there, so a damaged one can make it copy past its buffers. (h5py reads the
    /// fixed-length form as `bytes`, the variable-length one as `str`.)
    public func setAttribute(_ name: String, _ value: String, on objectPath: String = "/") throws {
        try Self.locked {
            try withObject(objectPath) { obj in
                let bytes = Array(value.utf8)
                let type = H5Tcopy(calm_h5t_c_s1())
                defer { H5Tclose(type) }
                // HDF5 has no zero-length fixed strings: "" is stored as one NUL pad byte.
                H5Tset_size(type, writesChecksums ? max(1, bytes.count) : calm_h5t_variable())
                if writesChecksums { H5Tset_strpad(type, H5T_STR_NULLPAD) }
                H5Tset_cset(type, H5T_CSET_UTF8)
                let space = H5Screate(H5S_SCALAR)
                defer { H5Sclose(space) }
                if H5Aexists(obj, name) > 0 { H5Adelete(obj, name) }
                let attr = H5Acreate2(obj, name, type, space, calm_h5p_default(), calm_h5p_default())
                guard attr >= 0 else { throw error("cannot create attribute \(name)") }
                defer { H5Aclose(attr) }
                let status: herr_t
                if writesChecksums {
                    status = (bytes.isEmpty ? [0] : bytes).withUnsafeBytes { H5Awrite(attr, type, $0.baseAddress) }
                } else {
                    status = value.withCString { cstr -> herr_t in
                        var pointer: UnsafePointer<CChar>? = cstr
                        return H5Awrite(attr, type, &pointer)
                    }
                }
                guard status >= 0 else { throw error("cannot write attribute \(name)") }
            }
        }
    }

    /// Writes an int64 scalar attribute.
    public func setAttribute(_ name: String, _ value: Int, on objectPath: String = "/") throws {
        try Self.locked {
            try withObject(objectPath) { obj in try setAttribute(name, value, onOpen: obj, objectPath) }
        }
    }

    private func setAttribute(_ name: String, _ value: Int, onOpen obj: hid_t, _ objectPath: String) throws {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        if H5Aexists(obj, name) > 0 { H5Adelete(obj, name) }
        let attr = H5Acreate2(obj, name, calm_h5t_std_i64le(), space, calm_h5p_default(), calm_h5p_default())
        guard attr >= 0 else { throw error("cannot create attribute \(name) on \(objectPath)") }
        defer { H5Aclose(attr) }
        var v = Int64(value)
        guard H5Awrite(attr, calm_h5t_native_int64(), &v) >= 0 else { throw error("cannot write attribute \(name) on \(objectPath)") }
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
            // One byte more than stored, so converting to C's NUL-terminated form keeps the last
            // character of a NUL-padded string.
            let size = H5Tget_size(fileType)
            H5Tset_size(memType, size + 1)
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
