import ArgumentParser
import Sprout

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the build, threads, CPU features and native libraries.",
        discussion: "Example: sprout info --threads 1")

    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        let features = SystemInfo.cpuFeatures
        let all = ["SSE4.2", "AVX", "AVX2", "FMA", "AVX-512F"]
        print("sprout \(SproutVersion.string) (\(SystemInfo.buildConfiguration) build)")
        print("cpu:       \(SystemInfo.cpuName.isEmpty ? "unknown" : SystemInfo.cpuName)")
        print("features:  " + all.map { "\($0) \(features.contains($0) ? "yes" : "no")" }.joined(separator: ", "))
        print("threads:   \(Threading.count) (available cores: \(Threading.availableCores))")
        print("loops:     \(SystemInfo.simdLoops) (element-wise, batch norm, pooling; SPROUT_SIMD=generic for the baseline)")
        print("pool:      \(SystemInfo.threadPool)")
        print("gemm:      \(SystemInfo.gemm)")
        print("blas:      \(SystemInfo.blas)")
        if let v = SystemInfo.oneDNNVersion {
            print("onednn:    \(v)\(SystemInfo.oneDNNEnabled ? "" : " (disabled by SPROUT_DNNL=0)")")
        } else {
            print("onednn:    not available")
        }
        let conv = convolutionImplementation(inputShape: [128, 64, 12, 12], weightShape: [64, 64, 5, 5], padding: .same)
        print("conv2d:    forward \(conv[0]), backward data \(conv[1]), backward weights \(conv[2]) (5×5, 64→64, 12×12, N=128)")
        print("settings (environment, effective):")
        for (variable, value) in RuntimeSettings.current.described {
            print("  \(variable.padding(toLength: 24, withPad: " ", startingAt: 0))\(value)")
        }
    }
}
