import CALMSupport
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// How `calm serve` runs.
public struct ServerConfiguration: Sendable {
    /// Loopback unless told otherwise.
    public var host = "127.0.0.1"
    /// 0: an ephemeral port (tests).
    public var port = 8080
    /// Sequences decoded together.
    public var maxBatch = 32
    /// Requests waiting for a slot before new ones get 429.
    public var maxQueue = 64
    /// Requests to `/v1/...` need `Authorization: Bearer KEY` when set.
    public var apiKey: String?
    public var maxBodyBytes = 1 << 20
    /// After SIGTERM, how long in-flight requests may run before they are cut short.
    public var shutdownGraceSeconds = 30.0

    public init() {}
}

/// The OpenAI-compatible HTTP server over a `ModelCatalog`, with its scheduler.
public final class InferenceServer: Sendable {
    public let catalog: ModelCatalog
    public let configuration: ServerConfiguration
    let scheduler: Scheduler
    let metrics = ServerMetrics()
    private let state = ServerState()

    public init(catalog: ModelCatalog, configuration: ServerConfiguration) throws {
        guard configuration.maxBatch >= 1 else { throw ServerSetupError("--max-batch must be >= 1") }
        guard configuration.maxQueue >= 1 else { throw ServerSetupError("--max-queue must be >= 1") }
        guard configuration.maxBodyBytes >= 1024 else { throw ServerSetupError("the body size cap must be at least 1024 bytes") }
        self.catalog = catalog
        self.configuration = configuration
        metrics.residentWeights = catalog.resident.map { ($0.path, $0.weightBytes) }
        scheduler = Scheduler(maxBatch: configuration.maxBatch, maxQueue: configuration.maxQueue, metrics: metrics)
    }

    /// Serves until SIGTERM/SIGINT (when listed) or `shutdown()`: then stops accepting, lets
    /// in-flight requests finish for up to `shutdownGraceSeconds`, and returns.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint], logger: Logger = Logger(label: "calm-serve")) async throws {
        scheduler.start()
        defer { scheduler.stop() }
        let app = Application(router: Routes.router(server: self),
                              server: .http1(configuration: .init(additionalChannelHandlers: [ClientGoneHandler()])),
                              configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                   serverName: "calm"),
                              onServerRunning: { [state] channel in state.setPort(channel.localAddress?.port ?? 0) },
                              logger: logger)
        // Shut down in reverse order: the watcher first (it arms the grace deadline), then the
        // HTTP server, which waits for in-flight requests.
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: app), .init(service: ShutdownWatcher(scheduler: scheduler, grace: configuration.shutdownGraceSeconds))],
            gracefulShutdownSignals: signals, logger: logger))
        state.setGroup(group)
        try await group.run()
    }

    /// The port once the server is listening (waits for it).
    public func boundPort() async -> Int {
        while true {
            if let port = state.port { return port }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// As SIGTERM does.
    public func shutdown() async { await state.group?.triggerGracefulShutdown() }

    /// Test hook: hold queued requests in the queue (`false` lets them run).
    public func setSchedulerPaused(_ paused: Bool) { scheduler.setPaused(paused) }
}

/// Mutable bits set while running.
final class ServerState: @unchecked Sendable {
    private let lock = NSLock()
    private var _port: Int?
    private var _group: ServiceGroup?
    var port: Int? { lock.withLock { _port } }
    var group: ServiceGroup? { lock.withLock { _group } }
    func setPort(_ port: Int) { lock.withLock { _port = port } }
    func setGroup(_ group: ServiceGroup) { lock.withLock { _group = group } }
}

/// Starts the scheduler's shutdown clock when graceful shutdown begins.
struct ShutdownWatcher: Service {
    let scheduler: Scheduler
    let grace: Double

    func run() async throws {
        try? await gracefulShutdown()
        scheduler.beginShutdown(grace: grace)
    }
}
