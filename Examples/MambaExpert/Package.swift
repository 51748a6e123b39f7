// swift-tools-version:6.0
import PackageDescription

// A package that adds an expert architecture to CALM the way any user would: it depends on
// CALM by path, conforms a Mamba language model to the augment protocol, registers it under
// the runtime `mamba`, and builds `calm-mamba`, the calm tool with it registered.
let package = Package(
    name: "MambaExpert",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MambaExpert", targets: ["MambaExpert"]),
        .executable(name: "calm-mamba", targets: ["calm-mamba"]),
    ],
    dependencies: [
        .package(name: "CALM", path: "../.."),
    ],
    targets: [
        .target(
            name: "MambaExpert",
            dependencies: [
                .product(name: "CALMSupport", package: "CALM"),
                .product(name: "CALMTensor", package: "CALM"),
                .product(name: "CALMTokenizers", package: "CALM"),
                .product(name: "CALMModels", package: "CALM"),
                .product(name: "CALMCheckpoint", package: "CALM"),
                .product(name: "CALMHuggingFace", package: "CALM"),
                .product(name: "CALMComposition", package: "CALM"),
                .product(name: "CALMCommandLine", package: "CALM"),
            ]),
        .executableTarget(
            name: "calm-mamba",
            dependencies: ["MambaExpert", .product(name: "CALMCommandLine", package: "CALM")]),
        .testTarget(
            name: "MambaExpertTests",
            dependencies: [
                "MambaExpert",
                .product(name: "CALMSupport", package: "CALM"),
                .product(name: "CALMTensor", package: "CALM"),
                .product(name: "CALMTokenizers", package: "CALM"),
                .product(name: "CALMModels", package: "CALM"),
                .product(name: "CALMCheckpoint", package: "CALM"),
                .product(name: "CALMHuggingFace", package: "CALM"),
                .product(name: "CALMComposition", package: "CALM"),
                .product(name: "CALMTraining", package: "CALM"),
                "calm-mamba",  // the CLI tests run it
            ]),
    ],
    swiftLanguageModes: [.v6]
)
