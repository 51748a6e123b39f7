import Foundation
import PackagePlugin

/// `swift package convert-checkpoint SRC OUT.h5 [--register NAME --domain DOMAIN]`: a thin shim
/// that runs the package's own `calm convert` in the package directory.
@main
struct ConvertCheckpoint: CommandPlugin {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let calm = try context.tool(named: "calm")
        let process = Process()
        process.executableURL = calm.url
        process.arguments = ["convert"] + arguments
        process.currentDirectoryURL = context.package.directoryURL
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "calm convert exited with status \(process.terminationStatus)")
        }
    }
}
