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
    private static let blasThreads = Atomic<Int>(0)

    /// OpenBLAS gets all threads only for GEMMs of at least 2²⁷ multiply-adds (512³).
    /// Measured here: with 2 BLAS threads on small GEMMs, OpenBLAS's spinning workers and
    /// oneDNN's OpenMP workers fight over the cores and batch-1 inference of mnist-cnn swung
    /// between 1.3 and 10 ms from run to run; with 1 thread below the cut it stays at
    /// 1.2–1.5 ms and training is as fast or faster (tf-cifar10 495–516 vs 517–527 img/s).
    static func prepareBLAS(multiplyAdds: Int) {
        let want = multiplyAdds >= 1 << 27 ? count : 1
        if blasThreads.exchange(want, ordering: .relaxed) != want { openblas_set_num_threads(Int32(want)) }
    }

    /// Whether Sprout's loops share oneDNN's OpenMP pool (else they run on libdispatch).
    public static let usesOpenMPPool = sprout_openmp_pool_available() != 0 && RuntimeSettings.current.pool == .openmp

    /// Cores this process may run on (its CPU affinity mask).
    public static var availableCores: Int {
        max(1, Int(sprout_available_cores()))
    }

    /// The thread count in force: the calling thread's `ExecutionContext`, else
    /// `configure(threads:)`, else `SPROUT_NUM_THREADS`, else the available cores.
    public static var count: Int {
        if let local = ExecutionContext.boundThreads { return local }
        let n = configured.load(ordering: .relaxed)
        if n > 0 { return n }
        let chosen = RuntimeSettings.current.threads ?? availableCores
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
        blasThreads.store(0, ordering: .relaxed)
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
    if Threading.usesOpenMPPool {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { context in
                sprout_openmp_parallel(count, chunks, { context, begin, end in
                    context!.assumingMemoryBound(to: ((Range<Int>) -> Void).self).pointee(begin..<end)
                }, context)
            }
        }
        return
    }
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

/// Items per chunk so that a chunk holds about `minimumWork` element operations: a dispatch
/// costs ~20 µs, and on a small input waking the other threads (which then fight OpenBLAS's
/// and OpenMP's spinning workers for the cores) costs more than it saves.
@inline(__always)
func grain(workPerItem: Int, minimumWork: Int = 32_768) -> Int {
    max(1, minimumWork / max(1, workPerItem))
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
