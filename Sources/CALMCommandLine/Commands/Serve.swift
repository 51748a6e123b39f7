import ArgumentParser
import CALMServer
import Foundation

/// `calm serve`: thin shell over `CALMServer` (loading, HTTP, scheduling live there).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models and compositions over an OpenAI-compatible HTTP API.",
        discussion: """
            Each request's "model" names a served file (its name without .h5). Requests join the running \
            decode batch at token boundaries; the anchor and every expert are held once however many \
            compositions use them. SIGTERM stops accepting, lets running requests finish (up to \
            --shutdown-grace seconds), and exits 0.
            """)

    @Option(help: "Address to bind (loopback by default).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 8080
    @Option(parsing: .upToNextOption, help: "Model checkpoints to serve.") var model: [String] = []
    @Option(parsing: .upToNextOption, help: "Composition checkpoints to serve.") var composition: [String] = []
    @Option(help: "Expert registry searched first for the compositions' models.") var registry: String?
    @Option(help: "Sequences decoded together.") var maxBatch = 32
    @Option(help: "Requests waiting for a slot before new ones are refused with 429.") var maxQueue = 64
    @Option(help: "Require Authorization: Bearer KEY on /v1/ (default: $CALM_API_KEY).") var apiKey: String?
    @Option(help: "Largest request body in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "Seconds in-flight requests may run after SIGTERM.") var shutdownGrace = 30.0
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        var config = ServerConfiguration()
        config.host = host
        config.port = port
        config.maxBatch = maxBatch
        config.maxQueue = maxQueue
        config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["CALM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        config.maxBodyBytes = maxBodyBytes
        config.shutdownGraceSeconds = shutdownGrace
        let catalog = try ModelCatalog(modelPaths: model, compositionPaths: composition, registry: registry)
        let server = try InferenceServer(catalog: catalog, configuration: config)
        for m in catalog.models {
            note("serving \(m.name) (\(m.kind == .composition ? "composition of \(m.experts.joined(separator: ", "))" : "model"))")
        }
        for r in catalog.resident { note(String(format: "resident once: %@ (%.1f MB)", r.path, Double(r.weightBytes) / 1e6)) }
        // The root command is synchronous: the server runs on the concurrency pool while this
        // thread waits for it to return (after SIGTERM/SIGINT).
        let outcome = ServeOutcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            let bound = await server.boundPort()
            note("listening on http://\(host):\(bound)")
        }
        Task {
            do { try await server.run() } catch { outcome.set(error) }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw CLIError("serve: \(error)") }
    }
}

/// The error `run` ended with, handed from the server task to the waiting thread.
private final class ServeOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    var error: Error? { lock.withLock { stored } }
    func set(_ error: Error) { lock.withLock { stored = error } }
}
