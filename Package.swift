// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CALM",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "calm", targets: ["calm"]),
        .library(name: "CALMTensor", targets: ["CALMTensor"]),
        .library(name: "CALMModels", targets: ["CALMModels"]),
        .library(name: "CALMCheckpoint", targets: ["CALMCheckpoint"]),
        .library(name: "CALMTraining", targets: ["CALMTraining"]),
        .library(name: "CALMComposition", targets: ["CALMComposition"]),
        .library(name: "CALMSuites", targets: ["CALMSuites"]),
        // So packages that depend on this one can run `swift package convert-checkpoint` / `register-expert`.
        .plugin(name: "ConvertCheckpoint", targets: ["ConvertCheckpoint"]),
        .plugin(name: "RegisterExpert", targets: ["RegisterExpert"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libhdf5-dev). No pkg-config needed.
        .systemLibrary(
            name: "COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CHDF5",
            providers: [.apt(["libhdf5-dev"])]),
        // glibc's mallopt, to keep freed tensor memory in the heap.
        .systemLibrary(name: "CAllocator"),

        // Tensor core: float32 tensors, BLAS-backed ops, reverse-mode autodiff.
        .target(
            name: "CALMTensor",
            dependencies: ["COpenBLAS", "CAllocator"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        // Layers and models: transformer LM, KV cache, tokenizers, sampling, optimizers.
        .target(name: "CALMModels", dependencies: ["CALMTensor"]),
        // Checkpoint I/O: HDF5 files and the checkpoint layout.
        .target(name: "CALMCheckpoint", dependencies: ["CALMTensor", "CALMModels", "CHDF5"]),
        // Training loop, data sets, progress reporting, resumable state.
        .target(name: "CALMTraining", dependencies: ["CALMTensor", "CALMModels", "CALMCheckpoint"]),
        // CALM: augment protocol, architecture and expert registries, bridges, composed
        // training and cached composed decoding.
        .target(name: "CALMComposition", dependencies: ["CALMTensor", "CALMModels", "CALMCheckpoint", "CALMTraining"]),
        // Synthetic suites: the paper's key-value arithmetic.
        .target(name: "CALMSuites", dependencies: ["CALMTensor", "CALMModels", "CALMCheckpoint", "CALMTraining"]),
        // The command-line tool, one file per subcommand.
        .executableTarget(
            name: "calm",
            dependencies: [
                "CALMTensor", "CALMModels", "CALMCheckpoint", "CALMTraining", "CALMComposition", "CALMSuites",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // SwiftPM command plugins: thin shims over the calm executable.
        .plugin(
            name: "RegisterExpert",
            capability: .command(
                intent: .custom(verb: "register-expert", description: "Register a checkpoint in the package's expert registry"),
                permissions: [.writeToPackageDirectory(reason: "The expert registry lives in checkpoints/experts")]),
            dependencies: ["calm"]),
        .plugin(
            name: "ConvertCheckpoint",
            capability: .command(
                intent: .custom(verb: "convert-checkpoint", description: "Convert a Hugging Face model directory to a CALM checkpoint"),
                permissions: [.writeToPackageDirectory(reason: "The converted checkpoint (and a registered expert) is written into the package")]),
            dependencies: ["calm"]),

        .testTarget(name: "CALMTensorTests", dependencies: ["CALMTensor"]),
        .testTarget(name: "CALMModelsTests", dependencies: ["CALMModels", "CALMCheckpoint"]),
        .testTarget(name: "CALMCheckpointTests", dependencies: ["CALMCheckpoint"]),
        .testTarget(name: "CALMTrainingTests", dependencies: ["CALMTraining"]),
        .testTarget(name: "CALMCompositionTests", dependencies: ["CALMComposition"]),
        .testTarget(name: "CALMSuitesTests", dependencies: ["CALMSuites"]),
        .testTarget(name: "CLITests", dependencies: ["calm", "CALMComposition"]),
    ],
    swiftLanguageModes: [.v6]
)
