// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "attninspect",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "attninspect", targets: ["attninspect"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, each behind a tiny shim header.
        .systemLibrary(name: "CAttnHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CAttnZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CAttnDeflate", pkgConfig: "libdeflate",
                       providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CAttnBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // attninspect's own hot loops in C (decoding, row statistics, softmax, head-fusion sums):
        // AVX2/FMA/F16C versions chosen at run time, portable versions otherwise.
        .target(name: "CAttnKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Pure Swift: shapes, element types, errors, matrices. No C.
        .target(name: "AttnCore"),
        // File formats → an AttentionSource that yields one layer at a time.
        .target(name: "AttnReader", dependencies: ["AttnCore", "CAttnHDF5", "CAttnZlib", "CAttnDeflate", "CAttnKernels"]),
        // Head fusion, entropy, rollout, grids, statistics, Q/K recompute. Linalg/ is the only BLAS user.
        .target(name: "AttnAnalysis", dependencies: ["AttnCore", "CAttnBLAS", "CAttnKernels"]),
        // Colormaps, Netpbm, .npy writing, tables, JSON, CSV, atomic files.
        .target(name: "AttnRender", dependencies: ["AttnCore"]),
        .executableTarget(name: "attninspect", dependencies: [
            "AttnCore", "AttnReader", "AttnAnalysis", "AttnRender",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Test-only helpers: locating TestData, reading the expected-value JSON, tolerant comparisons.
        .target(name: "AttnTestSupport", dependencies: ["AttnCore"], path: "Tests/AttnTestSupport"),
        .testTarget(name: "AttnReaderTests", dependencies: ["AttnReader", "AttnCore", "AttnTestSupport"]),
        .testTarget(name: "AttnAnalysisTests", dependencies: ["AttnAnalysis", "AttnCore", "AttnReader", "AttnTestSupport"]),
        .testTarget(name: "AttnRenderTests", dependencies: ["AttnRender", "AttnCore", "AttnReader", "AttnTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["attninspect", "AttnReader", "AttnCore", "AttnTestSupport"]),
    ]
)
