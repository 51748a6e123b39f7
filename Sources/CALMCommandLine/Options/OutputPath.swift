import Foundation

/// Checks where a command will write before it does any work, so a long run cannot end in
/// "cannot create file" after hours of training. Every command that writes calls this for
/// each output at the start of `run()`; errors are one line naming the option.
enum OutputPath {
    enum Kind {
        /// A file, written atomically (temporary file in the same directory, then renamed):
        /// its directory must exist and be writable, and the path must not be a directory.
        case file
        /// A directory created if needed (with its parents): it must be a writable
        /// directory if it exists, else its nearest existing ancestor must be.
        case directory
        /// A file whose directory is created if needed (e.g. `calm demo --plot`).
        case fileInNewDirectory
    }

    static func validate(_ path: String, option: String, kind: Kind = .file) throws {
        guard !path.isEmpty else { throw CLIError("\(option): the path is empty") }
        let url = URL(fileURLWithPath: path).standardizedFileURL
        switch kind {
        case .file:
            if isDirectory(url.path) { throw CLIError("\(option) \(path): is a directory, expected a file path") }
            let parent = url.deletingLastPathComponent().path
            guard exists(parent) else { throw CLIError("\(option) \(path): the directory \(parent) does not exist") }
            try requireWritableDirectory(parent, option: option, path: path)
        case .fileInNewDirectory:
            if isDirectory(url.path) { throw CLIError("\(option) \(path): is a directory, expected a file path") }
            try validate(url.deletingLastPathComponent().path, option: option, kind: .directory)
        case .directory:
            if exists(url.path) {
                guard isDirectory(url.path) else { throw CLIError("\(option) \(path): exists and is not a directory") }
                try requireWritableDirectory(url.path, option: option, path: path)
                return
            }
            // Created on demand: the first existing ancestor decides.
            var ancestor = url.deletingLastPathComponent()
            while !exists(ancestor.path) && ancestor.path != "/" { ancestor = ancestor.deletingLastPathComponent() }
            try requireWritableDirectory(ancestor.path, option: option, path: path)
        }
    }

    private static func requireWritableDirectory(_ directory: String, option: String, path: String) throws {
        guard isDirectory(directory) else { throw CLIError("\(option) \(path): \(directory) is not a directory") }
        // Creating and renaming files needs write and search permission on the directory.
        guard access(directory, W_OK | X_OK) == 0 else {
            throw CLIError("\(option) \(path): the directory \(directory) is not writable")
        }
    }

    private static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    private static func isDirectory(_ path: String) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &flag) && flag.boolValue
    }
}
