// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CALM",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "calm", targets: ["calm"]),
        .library(name: "CALMTensor", targets: ["CALMTensor"]),
        .library(name: "CALMSupport", targets: ["CALMSupport"]),
        .library(name: "CALMTokenizers", targets: ["CALMTokenizers"]),
        .library(name: "CALMModels", targets: ["CALMModels"]),
        .library(name: "CALMCheckpoint", targets: ["CALMCheckpoint"]),
        .library(name: "CALMHuggingFace", targets: ["CALMHuggingFace"]),
        .library(name: "CALMGGUF", targets: ["CALMGGUF"]),
        .library(name: "CALMTraining", targets: ["CALMTraining"]),
        .library(name: "CALMComposition", targets: ["CALMComposition"]),
        .library(name: "CALMSuites", targets: ["CALMSuites"]),
        .library(name: "CALMDistributed", targets: ["CALMDistributed"]),
        .library(name: "CALMServer", targets: ["CALMServer"]),
        // The calm tool as a library, so a package that adds architectures builds its own tool.
        .library(name: "CALMCommandLine", targets: ["CALMCommandLine"]),
        // So packages that depend on this one can run `swift package convert-checkpoint` / `register-expert`.
        .plugin(name: "ConvertCheckpoint", targets: ["ConvertCheckpoint"]),
        .plugin(name: "RegisterExpert", targets: ["RegisterExpert"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
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

        // Small shared helpers: JSON values, atomic file writes, SHA-256 digests, error collection.
        .target(name: "CALMSupport", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),

        // C kernels for frozen quantized weights (ggml block formats): quantization with ggml's
        // reference rounding, dequantization, matrix-vector products. -O3 in every
        // configuration so debug test runs are not dominated by unoptimised loops; the AVX2
        // functions carry target attributes and are chosen at run time, so no -mavx2 here.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // Tensor core: float32 tensors, BLAS-backed ops, reverse-mode autodiff, quantized weights.
        .target(
            name: "CALMTensor",
            dependencies: ["COpenBLAS", "CAllocator", "CKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        // Tokenizers: character, word and Hugging Face BPE (byte-level and SentencePiece-style).
        .target(name: "CALMTokenizers", dependencies: ["CALMSupport"]),
        // Layers and models: transformer LM, KV cache, generation loop, optimizers.
        .target(name: "CALMModels", dependencies: ["CALMTensor", "CALMTokenizers", "CALMSupport"]),
        // Checkpoint I/O: HDF5 files and the checkpoint layout.
        .target(name: "CALMCheckpoint", dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CHDF5"]),
        // Hugging Face files: safetensors, conversion of model directories, export.
        .target(name: "CALMHuggingFace", dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint"]),
        // GGUF files (llama.cpp): hardened reader, ggml dequantization, conversion to checkpoints.
        .target(name: "CALMGGUF", dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint"]),
        // Training loop, data sets, progress reporting, resumable state.
        .target(name: "CALMTraining", dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint"]),
        // CALM: augment protocol, architecture and expert registries, bridges, composed
        // training and cached composed decoding.
        .target(
            name: "CALMComposition",
            dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMHuggingFace", "CALMTraining"]),
        // Synthetic suites: the paper's key-value arithmetic.
        .target(name: "CALMSuites", dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMTraining"]),
        // Data-parallel training under Open MPI's mpirun. libmpi is loaded with dlopen at run
        // time, so building and running without MPI installed works.
        .target(name: "CALMDistributed", dependencies: ["CALMTensor", "CALMTraining"]),
        // `calm serve`: an OpenAI-compatible HTTP server over models and compositions, with a
        // continuous-batching scheduler (anchor and experts resident once, shared across compositions).
        .target(
            name: "CALMServer",
            dependencies: [
                "CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMComposition",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        // The command-line tool's commands, one file per subcommand, and its entry point
        // (`CALMCommandLine.main`), which takes extra architectures.
        .target(
            name: "CALMCommandLine",
            dependencies: [
                "CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMHuggingFace", "CALMGGUF",
                "CALMTraining", "CALMComposition", "CALMSuites", "CALMDistributed", "CALMServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The calm executable: CALMCommandLine with the built-in architectures.
        .executableTarget(name: "calm", dependencies: ["CALMCommandLine"]),

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

        .testTarget(name: "CALMSupportTests", dependencies: ["CALMSupport"]),
        .testTarget(name: "CALMTensorTests", dependencies: ["CALMTensor"]),
        .testTarget(name: "CALMTokenizersTests", dependencies: ["CALMTokenizers"]),
        .testTarget(name: "CALMModelsTests", dependencies: ["CALMSupport", "CALMTokenizers", "CALMModels", "CALMCheckpoint"]),
        .testTarget(name: "CALMCheckpointTests", dependencies: ["CALMSupport", "CALMTokenizers", "CALMModels", "CALMCheckpoint"]),
        .testTarget(name: "CALMHuggingFaceTests", dependencies: ["CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMHuggingFace"]),
        .testTarget(name: "CALMGGUFTests", dependencies: ["CALMSupport", "CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMHuggingFace", "CALMGGUF"]),
        .testTarget(name: "CALMTrainingTests", dependencies: ["CALMTokenizers", "CALMModels", "CALMTraining"]),
        .testTarget(name: "CALMCompositionTests", dependencies: ["CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMHuggingFace", "CALMComposition"]),
        .testTarget(name: "CALMSuitesTests", dependencies: ["CALMSuites"]),
        .testTarget(
            name: "CALMQuantizationTests",
            dependencies: ["CALMTensor", "CALMTokenizers", "CALMModels", "CALMCheckpoint", "CALMTraining", "CALMComposition", "CKernels"]),
        .testTarget(
            name: "CALMServerTests",
            dependencies: [
                "CALMModels", "CALMCheckpoint", "CALMComposition", "CALMServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
        .testTarget(name: "CLITests", dependencies: ["calm", "CALMHuggingFace", "CALMComposition", "CALMSuites"]),
    ],
    swiftLanguageModes: [.v6]
)
