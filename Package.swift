// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CSDformer",
    products: [
        .library(name: "CSDFormat", targets: ["CSDFormat"]),
        // The runtime's Swift API (docs/SWIFT_API.md): `import CSDRuntime` (it re-exports CSDFormat).
        .library(name: "CSDRuntime", targets: ["CSDRuntime"]),
        .executable(name: "csdpack", targets: ["csdpack"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The image format: Embedded-compatible (no Foundation, no existentials), shared by packer and runtime.
        .target(name: "CSDFormat", dependencies: ["CSDHeader"]),
        // The integer-only runtime (Swift kernels, op drivers, the C exports); also Embedded-compatible.
        .target(name: "CSDRuntime", dependencies: ["CSDFormat", "CSDMachine", "CSDHeader"]),
        // The C API header (Include/csd.h) as a Clang module: its types and CSD_E_* numbers, no code.
        .systemLibrary(name: "CSDHeader", path: "Include"),
        // What Swift cannot express, as static inline C: the core selection, ACLE intrinsic wrappers, a division
        // helper, and the Cortex-M4 assembly twins of two Swift kernels.
        .target(name: "CSDMachine"),
        // The packer's logic (host only): safetensors and JSON reading, conversion, planning, image and C emission.
        .target(name: "CSDPack", dependencies: ["CSDFormat", "CSDRuntime", "CZlib"]),
        // zlib (Debian zlib1g-dev) to read gzipped IDX data sets.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .executableTarget(
            name: "csdpack",
            dependencies: ["CSDPack", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "CSDFormatTests", dependencies: ["CSDFormat"]),
        .testTarget(name: "CSDPackTests", dependencies: ["CSDPack", "CSDFormat"]),
        .testTarget(name: "CSDRuntimeTests", dependencies: ["CSDRuntime", "CSDPack", "CSDFormat"]),
    ]
)
