import Foundation
import Hummingbird
import NIOCore

/// Whether the client of one HTTP connection is still there. The server allows half-closed
/// connections, so a client that goes away shows first as its side closing (end of input),
/// not as the connection closing; either one counts as gone. A request being answered
/// registers what to do then (cancel its generation), so a disconnected client frees its
/// slot at the next token boundary rather than when a write to it fails, which for a
/// non-streamed answer would only be at the end.
final class ClientConnection: @unchecked Sendable {
    private let lock = NSLock()
    private var gone = false
    private var nextKey = 0
    private var actions: [Int: @Sendable () -> Void] = [:]

    /// Runs `action` once when the client goes away (at once if it already has). The returned
    /// key removes it again (nil: it already ran).
    func onGone(_ action: @escaping @Sendable () -> Void) -> Int? {
        let key: Int? = lock.withLock {
            guard !gone else { return nil }
            nextKey += 1
            actions[nextKey] = action
            return nextKey
        }
        if key == nil { action() }
        return key
    }

    func remove(_ key: Int?) {
        guard let key else { return }
        lock.withLock { _ = actions.removeValue(forKey: key) }
    }

    func markGone() {
        let pending: [@Sendable () -> Void] = lock.withLock {
            gone = true
            defer { actions.removeAll() }
            return Array(actions.values)
        }
        for action in pending { action() }
    }
}

/// One per connection, in the pipeline after the HTTP codec: reports the client's side
/// closing or the connection dropping to the connection's `ClientConnection`. Passes
/// everything on untouched.
final class ClientGoneHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let connection = ClientConnection()

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { connection.markGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.markGone()
        context.fireChannelInactive()
    }

    /// The connection of `channel` (nil when the pipeline has no such handler, as in
    /// Hummingbird's test client).
    static func connection(of channel: any Channel) async -> ClientConnection? {
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ClientGoneHandler.self).connection
        }.get()
    }
}

/// The request context of `calm serve`: Hummingbird's basic one plus the connection's channel,
/// to watch for the client going away.
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
