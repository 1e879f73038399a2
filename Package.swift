// swift-tools-version:6.0
import PackageDescription
#if canImport(Glibc)
    import Glibc
#endif

// libhdf5 and OpenBLAS are linked from Debian's static archives when they are there (libhdf5-dev and
// libopenblas-pthread-dev ship them): loading the shared libhdf5 pulls in libcurl, GnuTLS, Kerberos and more,
// and with OpenBLAS that costs about 10 ms at every start, most of a run on a small dump. The static
// libhdf5 needs none of those (its S3 driver is never linked in). Elsewhere the shared libraries are used.
// libaec is named for the fully static release binary (scripts/release-flags.sh): libsz.a calls into it.
#if arch(arm64)
    let multiarch = "aarch64-linux-gnu"
#else
    let multiarch = "x86_64-linux-gnu"
#endif
func present(_ path: String) -> Bool {
    #if canImport(Glibc)
        return access(path, F_OK) == 0
    #else
        return false
    #endif
}
// OpenBLAS's threaded (pthread) build, called with one thread per call: attninspect splits products
// across its own workers, so calls run on several threads at once. Debian's serial build is not safe for
// that (two concurrent cblas_sgemm calls sometimes corrupt each other and both return wrong values;
// measured with 0.3.21, see Tests/AttnAnalysisTests/MatrixProductTests.swift); it is still accepted, and
// MatrixProduct then makes calls one at a time. (The threaded build starts its own pool of threads at load time;
// keeping it from starting, with a constructor that ran first, changed no benchmark row: removed on 2026-12-05.)
// Each archive is named by a file name that only it has: Debian's libhdf5_serial.a, and OpenBLAS's
// versioned libopenblasp-r<version>.a (threaded) or libopenblas-r<version>.a (serial); a bare
// libopenblas.a is an alias that may point to either build.
let libFolder = "/usr/lib/\(multiarch)"
func versionedBLAS(in folder: String, prefix: String) -> String? {
    #if canImport(Glibc)
        guard let directory = opendir(folder) else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) && name.hasSuffix(".a") { return name }
        }
    #endif
    return nil
}
let hdf5Linking: [LinkerSetting] =
    present("\(libFolder)/libhdf5_serial.a")
    ? [
        .linkedLibrary(":libhdf5_serial.a"), .linkedLibrary("sz"), .linkedLibrary("aec"), .linkedLibrary("z"),
        .linkedLibrary("dl"), .linkedLibrary("m"), .linkedLibrary("pthread")
    ]
    : [.unsafeFlags(["-L\(libFolder)/hdf5/serial"]), .linkedLibrary("hdf5")]
let blasLinking: [LinkerSetting] = {
    for (variant, prefix) in [("openblas-pthread", "libopenblasp-r"), ("openblas-serial", "libopenblas-r")] {
        if let archive = versionedBLAS(in: "\(libFolder)/\(variant)", prefix: prefix) {
            return [
                .unsafeFlags(["-L\(libFolder)/\(variant)"]), .linkedLibrary(":\(archive)"),
                .linkedLibrary("m"), .linkedLibrary("pthread")
            ]
        }
    }
    return [.unsafeFlags(["-L\(libFolder)/openblas-pthread"]), .linkedLibrary("openblas")]
}()

let package = Package(
    name: "attninspect",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "attninspect", targets: ["attninspect"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // C libraries, each behind a tiny shim header. libhdf5 and OpenBLAS are linked by the targets
        // that use them (see above), so their module maps name no library.
        .systemLibrary(name: "CAttnHDF5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CAttnZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CAttnDeflate", pkgConfig: "libdeflate",
            providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CAttnBLAS", providers: [.apt(["libopenblas-dev"])]),
        // attninspect's own hot loops in C (decoding, row statistics, softmax, head-fusion sums):
        // AVX2/FMA/F16C versions chosen at run time, portable versions otherwise.
        .target(name: "CAttnKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Variable-length strings of HDF5 read in a child process: attninspect's one defence against libhdf5 1.10's
        // unchecked global heaps (a corrupt one crashes or hangs the child, not the tool).
        .target(name: "CAttnHDF5Strings", dependencies: ["CAttnHDF5"]),
        // Which CPU a thread runs on, and moving it off one (GNU calls Swift's Glibc module does not expose).
        .target(name: "CAttnThreads"),
        // The temporary output removed on SIGINT, SIGTERM and SIGHUP (async-signal-safe, so in C).
        .target(name: "CAttnProcess"),
        // Shapes, element types, errors, matrices, the worker threads. No C but CAttnThreads' two calls.
        .target(name: "AttnCore", dependencies: ["CAttnThreads"]),
        // File formats → an AttentionSource that yields one layer at a time.
        .target(
            name: "AttnReader",
            dependencies: ["AttnCore", "CAttnHDF5", "CAttnHDF5Strings", "CAttnZlib", "CAttnDeflate", "CAttnKernels"],
            linkerSettings: hdf5Linking),
        // Matrix products (the only BLAS user) and the vectorised row kernels, for the sources and the analyses.
        .target(
            name: "AttnLinalg", dependencies: ["AttnCore", "CAttnBLAS", "CAttnKernels"], linkerSettings: blasLinking),
        // A file and the input options → an AttentionSource: stored, recomputed from Q/K, padding excluded, one
        // sample of a batch. The one entry point (`OpenedDump.open`) the CLI and the tests call.
        .target(name: "AttnSource", dependencies: ["AttnCore", "AttnReader", "AttnLinalg"]),
        // Head fusion, entropy, rollout, flow, statistics, head measures: every number the tool prints.
        .target(name: "AttnAnalysis", dependencies: ["AttnCore", "AttnLinalg", "CAttnKernels"]),
        // Colormaps, pictures (PNG, Netpbm, SVG, montages, overlays: MapWriter), .npy writing, atomic files, and every
        // report: tables, JSON and CSV written from the records' one description (RecordWriter).
        .target(
            name: "AttnRender",
            dependencies: ["AttnCore", "AttnReader", "AttnSource", "AttnAnalysis", "CAttnZlib", "CAttnProcess"]),
        .executableTarget(
            name: "attninspect",
            dependencies: [
                "AttnCore", "AttnReader", "AttnSource", "AttnAnalysis", "AttnRender", "CAttnProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),

        // Test-only helpers: locating TestData, reading the expected-value JSON, tolerant comparisons.
        .target(name: "AttnTestSupport", dependencies: ["AttnCore", "CAttnZlib"], path: "Tests/AttnTestSupport"),
        .testTarget(name: "AttnCoreTests", dependencies: ["AttnCore", "CAttnThreads"]),
        .testTarget(name: "AttnSourceTests", dependencies: ["AttnSource", "AttnReader", "AttnCore", "AttnTestSupport"]),
        .testTarget(name: "AttnReaderTests", dependencies: ["AttnReader", "AttnCore", "AttnTestSupport"]),
        .testTarget(
            name: "AttnAnalysisTests",
            dependencies: ["AttnAnalysis", "AttnLinalg", "AttnSource", "AttnCore", "AttnReader", "AttnTestSupport"]),
        .testTarget(name: "AttnRenderTests", dependencies: ["AttnRender", "AttnCore", "AttnReader", "AttnTestSupport"]),
        .testTarget(
            name: "CLITests",
            dependencies: ["attninspect", "AttnReader", "AttnSource", "AttnCore", "AttnTestSupport", "CAttnProcess"])
    ]
)

// Fuzz targets (libFuzzer), only when ATTNINSPECT_FUZZ is set: `make fuzz` builds them with
// -sanitize=fuzzer,address into .build/fuzz; each main calls libFuzzer's driver. A normal build never sees them.
#if canImport(Glibc)
    if getenv("ATTNINSPECT_FUZZ") != nil {
        package.targets.append(
            .target(name: "AttnFuzzHarness", dependencies: ["AttnCore", "AttnReader"], path: "Fuzz/AttnFuzzHarness"))
        for format in ["npy", "npz", "safetensors", "pt"] {
            package.targets.append(
                .executableTarget(
                    name: "fuzz-\(format)", dependencies: ["AttnFuzzHarness"], path: "Fuzz/fuzz-\(format)"))
            package.products.append(.executable(name: "fuzz-\(format)", targets: ["fuzz-\(format)"]))
        }
    }
#endif
