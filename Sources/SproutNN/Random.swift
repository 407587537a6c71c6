import Synchronization
import SproutTensor

/// The process-wide generator layers draw their initial weights from, like
/// `torch.manual_seed`: `seedEverything(42)` before building a model makes it reproducible.
public enum GlobalRandom {
    private static let state = Mutex(SeededGenerator(seed: 0))

    public static func seed(_ seed: UInt64) { state.withLock { $0 = SeededGenerator(seed: seed) } }

    /// Runs `body` with exclusive use of the global generator.
    public static func using<R>(_ body: (inout SeededGenerator) -> R) -> R {
        state.withLock { g in body(&g) }
    }

    /// A fresh independent seed drawn from the global stream (for a layer's own generator).
    public static func nextSeed() -> UInt64 { using { $0.next() } }
}

public func seedEverything(_ seed: UInt64) { GlobalRandom.seed(seed) }
