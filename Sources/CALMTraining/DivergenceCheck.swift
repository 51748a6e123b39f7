/// Stops a run whose loss has risen well above where it started (a learning rate too high for
/// the model: e.g. 2.9 -> 11 within a few steps), so the result is reported, not saved.
///
/// Both sides are means over a few steps, and the rise must be large in absolute terms too: a
/// run that starts near its optimum (a composition whose bridges start as a relay, loss ~0.3)
/// sees batches whose losses differ by more than 1.5x, which is noise, not divergence.
public struct DivergenceCheck: Sendable {
    public static let window = 4
    public static let ratio: Float = 1.5
    /// Nats per token the mean must also exceed the start by.
    public static let margin: Float = 0.5

    private var first: [Float] = []
    private var recent: [Float] = []

    public init() {}

    /// Records one step's loss; returns the recent mean and the starting mean when the run has diverged.
    public mutating func record(_ loss: Float) -> (mean: Float, start: Float)? {
        if first.count < Self.window { first.append(loss) }
        recent.append(loss)
        if recent.count > Self.window { recent.removeFirst() }
        guard first.count == Self.window, recent.count == Self.window else { return nil }
        let start = first.reduce(0, +) / Float(Self.window)
        let mean = recent.reduce(0, +) / Float(Self.window)
        // NaN compares false everywhere: a NaN loss is caught where it is computed.
        return mean > start * Self.ratio && mean > start + Self.margin ? (mean, start) : nil
    }
}
