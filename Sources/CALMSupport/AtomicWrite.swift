import Foundation

/// Writes a file so that readers see either the old version or the complete new one:
/// `body` writes to a temporary file in the same directory, which is renamed into place
/// only when `body` succeeds, and removed when it fails.
public func writeAtomically(to path: String, _ body: (_ temporaryPath: String) throws -> Void) throws {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw FileWriteError(path: path, message: "directory \(directory) does not exist")
    }
    let temporary = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
        .path
    do {
        try body(temporary)
        guard rename(temporary, path) == 0 else {
            throw FileWriteError(path: path, message: "cannot move the finished file into place: \(String(cString: strerror(errno)))")
        }
    } catch {
        try? FileManager.default.removeItem(atPath: temporary)
        throw error
    }
}

/// Writes `data` to `path` atomically.
public func writeAtomically(_ data: Data, to path: String) throws {
    try writeAtomically(to: path) { temporary in
        try data.write(to: URL(fileURLWithPath: temporary))
    }
}

/// A problem with a file (it cannot be written, or its content is wrong); the one-line
/// description names the file first.
public struct FileError: Error, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

/// A file that could not be written.
public typealias FileWriteError = FileError
