import CBLAS
import CSproutKernels
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The process-wide thread budget. Sprout's own loops, OpenBLAS (pthreads) and oneDNN
/// (OpenMP) each keep a pool; all three are sized to the same count and never run at
/// once, so the cores are used, not oversubscribed.
public enum Threading {
    private static let configured = Atomic<Int>(0)

    /// Cores this process may run on (its CPU affinity mask).
    public static var availableCores: Int {
        max(1, Int(sprout_available_cores()))
    }

    /// The thread count in force: `configure(threads:)`, else `SPROUT_NUM_THREADS`,
    /// else the available cores.
    public static var count: Int {
        let n = configured.load(ordering: .relaxed)
        if n > 0 { return n }
        var chosen = availableCores
        if let text = getenv("SPROUT_NUM_THREADS"), let v = Int(String(cString: text)), v > 0 { chosen = v }
        apply(chosen)
        return chosen
    }

    /// Sets the thread count for Sprout's loops and for the native libraries.
    public static func configure(threads: Int) {
        precondition(threads > 0, "Threading.configure: threads must be positive, got \(threads)")
        apply(threads)
    }

    private static func apply(_ n: Int) {
        configured.store(n, ordering: .relaxed)
        openblas_set_num_threads(Int32(n))
        sprout_set_omp_threads(Int32(n))
    }
}

/// Runs `body` over `0..<count` split into at most `Threading.count` contiguous chunks.
/// Work below `grain` items runs inline: a dispatch costs ~20 µs here.
@inline(__always)
func parallelFor(_ count: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
    let threads = Threading.count
    if threads <= 1 || count < 2 * grain {
        if count > 0 { body(0..<count) }
        return
    }
    let chunks = min(threads, (count + grain - 1) / grain)
    let per = (count + chunks - 1) / chunks
    // The chunks write disjoint ranges; the box tells the compiler what it cannot see.
    withoutActuallyEscaping(body) { body in
        let work = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let lo = i * per
            let hi = min(count, lo + per)
            if lo < hi { work.value(lo..<hi) }
        }
    }
}

/// A pointer handed to worker threads that write disjoint ranges.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
