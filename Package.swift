// swift-tools-version:6.0
import PackageDescription

// Layers (dependencies point down only):
//   sprout (executable) → SproutServe (Hummingbird HTTP API) → SproutTrain
//   sprout (executable) → SproutDistributed (MPI data parallelism, CMPI) → SproutTrain
//   sprout (executable) → SproutExport (ONNX) → SproutTrain
//   sprout (executable) → Sprout (umbrella)
//     → SproutTrain → SproutData → SproutOptim → SproutNN → SproutTensor → CSproutKernels → CDNNL, CBLAS
//   SproutData alone reads files through CZlib (gzip), CTurboJPEG (JPEG) and CSTB (PNG, GIF, BMP; resizing),
//   and resamples photos with CSproutImage.
// See docs/architecture.md.
let package = Package(
    name: "Sprout",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Sprout", targets: ["Sprout"]),
        .library(name: "SproutTensor", targets: ["SproutTensor"]),
        .library(name: "SproutNN", targets: ["SproutNN"]),
        .library(name: "SproutOptim", targets: ["SproutOptim"]),
        .library(name: "SproutData", targets: ["SproutData"]),
        .library(name: "SproutTrain", targets: ["SproutTrain"]),
        .library(name: "SproutExport", targets: ["SproutExport"]),
        .library(name: "SproutServe", targets: ["SproutServe"]),
        .library(name: "SproutDistributed", targets: ["SproutDistributed"]),
        .executable(name: "sprout", targets: ["sprout"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // Thin system-library targets: one per native library.
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CDNNL",
            providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CSTB", pkgConfig: "stb",
            providers: [.apt(["libstb-dev"])]),
        .systemLibrary(
            name: "CTurboJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev"])]),
        // Small C kernel layer: cpuid, the oneDNN convolution glue (primitive cache,
        // layout reorders) and AVX2/FMA loops selected at run time.
        .target(
            name: "CSproutKernels",
            dependencies: ["CDNNL", "CBLAS"],
            // A C target does not inherit its system-library dependencies' `link` lines.
            linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("openblas")]),
        // The photo pipeline's pixel kernels (resampling, reduction), used by SproutData only.
        .target(name: "CSproutImage"),
        .target(
            name: "SproutTensor",
            dependencies: ["CSproutKernels", "CBLAS"]),
        .target(name: "SproutNN", dependencies: ["SproutTensor"]),
        .target(name: "SproutOptim", dependencies: ["SproutNN", "SproutTensor"]),
        .target(name: "SproutData", dependencies: ["SproutTensor", "CSproutImage", "CZlib", "CSTB", "CTurboJPEG"]),
        .target(name: "SproutTrain", dependencies: ["SproutData", "SproutOptim", "SproutNN", "SproutTensor"]),
        .target(
            name: "SproutServe",
            dependencies: [
                "SproutTrain", "SproutData",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(name: "SproutDistributed", dependencies: ["SproutTrain", "SproutNN", "SproutTensor", "CMPI"]),
        .target(name: "SproutExport", dependencies: ["SproutTrain", "SproutNN", "SproutTensor"]),
        .target(
            name: "Sprout",
            dependencies: ["SproutTrain", "SproutData", "SproutOptim", "SproutNN", "SproutTensor"]),
        .executableTarget(
            name: "sprout",
            dependencies: [
                "Sprout",
                "SproutExport",
                "SproutServe",
                "SproutDistributed",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(
            name: "SproutTensorTests",
            dependencies: ["SproutTensor"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "SproutTests",
            dependencies: ["Sprout", "SproutTrain", "SproutData", "SproutOptim", "SproutNN", "SproutTensor", "SproutServe",
                           "SproutExport",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Fixtures")]),
    ]
)

// libFuzzer targets (docs/reliability.md): only when SPROUT_FUZZ is set, since the executable
// needs `-sanitize=fuzzer` to link. `make fuzz-build` builds it with the address sanitizer.
if Context.environment["SPROUT_FUZZ"] != nil {
    package.targets += [
        .target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .executableTarget(
            name: "sprout-fuzz",
            dependencies: ["CLibFuzzer", "SproutData", "SproutNN", "SproutTrain", "SproutServe"],
            path: "Fuzz/Targets"),
    ]
}
