#if canImport(Glibc)
import Glibc
#endif

/// Process resource figures for benchmarks and logs.
public enum ResourceUsage {
    /// Peak resident set size of this process (getrusage's ru_maxrss), in bytes.
    public static var peakResidentBytes: Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) * 1024
    }
}
