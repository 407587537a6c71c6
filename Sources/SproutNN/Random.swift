import Synchronization
import SproutTensor

/// The process-wide generator layers draw their initial weights from, like
/// `torch.manual_seed`: `seedEverything(42)` before building a model makes it reproducible.
public enum GlobalRandom {
    private static let state = Mutex(SeededGenerator(seed: 0))

    final class Scoped: Sendable {
        let state: Mutex<SeededGenerator>
        init(seed: UInt64) { state = Mutex(SeededGenerator(seed: seed)) }
    }
    /// A generator of the current task's own (`withSeed`), used instead of the global one.
    @TaskLocal static var scoped: Scoped?

    public static func seed(_ seed: UInt64) { state.withLock { $0 = SeededGenerator(seed: seed) } }

    /// Runs `body` with exclusive use of the generator in force: the task's own inside
    /// `withSeed`, else the process-wide one.
    public static func using<R>(_ body: (inout SeededGenerator) -> R) -> R {
        if let scoped { return scoped.state.withLock { g in body(&g) } }
        return state.withLock { g in body(&g) }
    }

    /// Runs `body` with a generator of its own seeded with `seed` (the same stream
    /// `seedEverything(seed)` starts): models built inside get the same weights whatever other
    /// tasks or threads draw meanwhile — the process-wide generator is shared by everything
    /// in the process, concurrent tests and server threads included.
    public static func withSeed<R>(_ seed: UInt64, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(Scoped(seed: seed)) { try body() }
    }

    /// A fresh independent seed drawn from the global stream (for a layer's own generator).
    public static func nextSeed() -> UInt64 { using { $0.next() } }
}

public func seedEverything(_ seed: UInt64) { GlobalRandom.seed(seed) }
