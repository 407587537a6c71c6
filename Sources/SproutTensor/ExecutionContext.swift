import CSproutKernels

/// Kernel state for one thread of work: the convolution glue's primitive cache, stream and
/// scratch area, and a thread budget for Sprout's loops and oneDNN. Threads without one share
/// the process's default state (and its lock); two threads with contexts of their own run
/// convolutions at once — two inference threads of the server, or two models side by side.
///
/// A context serves one thread at a time.
public final class ExecutionContext: @unchecked Sendable {
    public let threads: Int
    private let convolution: OpaquePointer

    public init(threads: Int) {
        precondition(threads > 0, "ExecutionContext: threads must be positive, got \(threads)")
        RuntimeSettings.applied
        self.threads = threads
        guard let c = sprout_conv_context_create() else { preconditionFailure("ExecutionContext: out of memory") }
        convolution = c
    }

    deinit { sprout_conv_context_destroy(convolution) }

    /// Runs `body` on the calling thread with this context's convolution state and thread
    /// budget, then restores what the thread had.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        let previousConvolution = sprout_conv_context_bound()
        let previousThreads = sprout_thread_threads()
        sprout_conv_context_bind(convolution)
        sprout_thread_set_threads(Int32(threads))
        // OpenMP's thread count is per thread: it sizes oneDNN's parallel regions from here.
        sprout_set_omp_threads(Int32(threads))
        defer {
            sprout_conv_context_bind(previousConvolution)
            sprout_thread_set_threads(previousThreads)
            sprout_set_omp_threads(previousThreads > 0 ? previousThreads : Int32(Threading.count))
        }
        return try body()
    }

    /// The thread budget of the context bound to the calling thread, if any.
    static var boundThreads: Int? {
        let n = Int(sprout_thread_threads())
        return n > 0 ? n : nil
    }
}
