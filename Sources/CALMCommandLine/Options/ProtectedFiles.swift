import Foundation

/// Files a data generator must not silently replace (key maps, facts files: they describe
/// models trained from them).
enum ProtectedFiles {
    /// The files among `files` that need writing: identical ones are left as they are, and a
    /// different existing one is an error naming it unless `force`. Called before anything is
    /// written, so a refusal leaves every file untouched.
    static func changed(_ files: [(path: String, bytes: Data)], force: Bool, what: String) throws -> [(path: String, bytes: Data)] {
        try files.filter { path, bytes in
            guard let existing = FileManager.default.contents(atPath: path) else { return true }
            if existing == bytes { return false }
            guard force else {
                throw CLIError("\(path): \(what) exists; pass --force to replace it, or choose another --map-dir")
            }
            return true
        }
    }
}
