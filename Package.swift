// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CSDformer",
    products: [
        .library(name: "CSDFormat", targets: ["CSDFormat"]),
        .executable(name: "csdpack", targets: ["csdpack"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The image format: Embedded-compatible (no Foundation, no existentials), shared by packer and runtime.
        .target(name: "CSDFormat"),
        // The integer-only runtime (fused and spiking kernels, C exports); also Embedded-compatible.
        .target(name: "CSDRuntime", dependencies: ["CSDFormat", "CSDKernels"]),
        // Inner loops with an optimized twin (SMLAD on cores with the DSP extension), as static inline C.
        .target(name: "CSDKernels"),
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
