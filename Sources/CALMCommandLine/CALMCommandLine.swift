import ArgumentParser
import CALMComposition
import CALMTensor
import Foundation

/// The `calm` tool as a library: a package that adds model architectures builds its own tool
/// from this entry point, and every subcommand (`experts register`, `compose`, `generate`,
/// `eval`, `forward`, `inspect`, `convert`, ...) works with them.
///
/// ```swift
/// // Sources/calm-mamba/main.swift
/// import CALMCommandLine
/// import MambaExpert
/// CALMCommandLine.main(toolName: "calm-mamba", extensions: [MambaExpert.calmExtension])
/// ```
public enum CALMCommandLine {
    /// Registers `extensions`, parses the process's arguments and runs the command; never
    /// returns. A registration that clashes with a built-in family is one error line.
    public static func main(toolName: String = "calm", extensions: [ArchitectureExtension] = []) -> Never {
        Allocator.keepFreedMemory()
        CommandLineSetup.toolName = toolName
        do {
            for e in extensions { try CommandLineSetup.install(e) }
            var command = try Calm.parseAsRoot()
            try command.run()
            Calm.exit()
        } catch {
            Calm.exit(withError: error)
        }
    }
}

/// An architecture a package adds to the tool: the runtime that loads its checkpoints (see
/// `ArchitectureRegistry`) and, optionally, how `calm convert` reads its Hugging Face directories.
public struct ArchitectureExtension: Sendable {
    public var runtime: String
    /// The `model_type` strings its checkpoints carry.
    public var families: [String]
    public var load: ArchitectureRegistry.Loader
    public var conversion: HuggingFaceConversion?

    public init(runtime: String, families: [String], load: @escaping ArchitectureRegistry.Loader,
                conversion: HuggingFaceConversion? = nil) {
        self.runtime = runtime
        self.families = families
        self.load = load
        self.conversion = conversion
    }
}

/// Converts a Hugging Face model directory whose `config.json` has one of `modelTypes`.
public struct HuggingFaceConversion: Sendable {
    public typealias Convert = @Sendable (_ directory: String, _ output: String) throws -> [String]
    public var modelTypes: [String]
    /// Reads the directory and writes a CALM model checkpoint to `output` (atomically); returns
    /// lines describing what was converted (printed by `calm convert`).
    public var convert: Convert

    public init(modelTypes: [String], convert: @escaping Convert) {
        self.modelTypes = modelTypes
        self.convert = convert
    }
}

/// What `main` installed, read by the commands.
enum CommandLineSetup {
    nonisolated(unsafe) static var toolName = "calm"
    nonisolated(unsafe) static var conversions: [String: HuggingFaceConversion] = [:]

    static func install(_ e: ArchitectureExtension) throws {
        try ArchitectureRegistry.register(runtime: e.runtime, families: e.families, loader: e.load)
        for type in e.conversion?.modelTypes ?? [] { conversions[type] = e.conversion }
    }
}
