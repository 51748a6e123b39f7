import Foundation
import PackagePlugin

/// `swift package register-expert FILE --name NAME --domain DOMAIN [...]`: a thin shim that runs
/// the package's own `calm experts register` in the package directory.
@main
struct RegisterExpert: CommandPlugin {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func performCommand(context: PluginContext, arguments: [String]) async throws {
        let calm = try context.tool(named: "calm")
        let process = Process()
        process.executableURL = calm.url
        process.arguments = ["experts", "register"] + arguments
        process.currentDirectoryURL = context.package.directoryURL
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "calm experts register exited with status \(process.terminationStatus)")
        }
    }
}
