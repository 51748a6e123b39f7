import Foundation

/// Keeps errors thrown by concurrent jobs (e.g. lanes of `DispatchQueue.concurrentPerform`),
/// so the caller can rethrow the first one after every job has stopped.
public final class FailureCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Error] = []

    public init() {}

    public func add(_ error: Error) { lock.withLock { stored.append(error) } }
    public var first: Error? { lock.withLock { stored.first } }
    public var all: [Error] { lock.withLock { stored } }
}
