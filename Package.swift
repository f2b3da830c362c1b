// swift-tools-version:6.1
import PackageDescription

// Numeric targets are optimised even in debug builds so that tests over real-sized tensors stay quick.
let optimized: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
// The networks' element-wise kernels use SIMD16<Float>; the x86-64 baseline (SSE2) lowers its min/max lane by lane
// (~80× slower), so on x86-64 they are compiled for AVX2/FMA (every x86 server CPU since 2013).
#if arch(x86_64)
let simdKernels: [SwiftSetting] = optimized + [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let simdKernels: [SwiftSetting] = optimized
#endif

let package = Package(
    name: "sdapi-swift",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sdapi", targets: ["sdapi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev", "zlib1g-dev"])]),
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat libavcodec libswscale libavutil",
                       providers: [.apt(["libavcodec-dev", "libavformat-dev", "libswscale-dev"])]),

        .target(name: "TensorCore", dependencies: ["CBLAS"], swiftSettings: optimized),
        .target(name: "ModelIO", dependencies: [
            "TensorCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ], swiftSettings: optimized),
        .target(name: "Tokenizer", resources: [.copy("Resources")]),
        .target(name: "Networks", dependencies: ["TensorCore"], swiftSettings: simdKernels),
        .target(name: "Sampling", dependencies: ["TensorCore"], swiftSettings: optimized),
        .target(name: "Pipeline", dependencies: ["TensorCore", "ModelIO", "Tokenizer", "Networks", "Sampling",
                                                 .product(name: "Logging", package: "swift-log")],
                swiftSettings: optimized),
        .target(name: "Media", dependencies: ["TensorCore", "CPNG", "CFFmpeg"]),
        .target(name: "WebAPI", dependencies: [
            "Pipeline", "Media", "Sampling",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "sdapi", dependencies: [
            "WebAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TestSupport", dependencies: ["ModelIO"], path: "Sources/TestSupport"),
        .executableTarget(name: "sdbench", dependencies: ["TensorCore", "ModelIO", "Networks", "Pipeline"],
                          path: "Sources/sdbench", swiftSettings: optimized),

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "ModelIOTests", dependencies: ["ModelIO", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "TestSupport"]),
        .testTarget(name: "NetworksTests", dependencies: ["Networks", "ModelIO", "TestSupport"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "TestSupport"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "TestSupport"]),
        .testTarget(name: "WebAPITests", dependencies: [
            "WebAPI", "TestSupport", "ModelIO",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
