import CALMCommandLine

extension MambaCheckpoint {
    /// What `calm-mamba` adds to the calm tool: the `mamba` runtime and `calm convert` of
    /// Hugging Face Mamba directories.
    public static var commandLineExtension: ArchitectureExtension {
        ArchitectureExtension(
            runtime: runtime, families: [MambaConfig.modelType],
            load: { file, header in try read(file, header: header) },
            conversion: HuggingFaceConversion(modelTypes: [MambaConfig.modelType]) { directory, output in
                let converted = try MambaHuggingFace.convert(directory: directory, to: output)
                let c = converted.model.config
                let t = converted.tokenizer
                return [
                    "MambaForCausalLM: \(c.numLayers) layers, width \(c.hiddenSize), \(c.intermediateSize) channels with state \(c.stateSize), conv kernel \(c.convKernel), time-step rank \(c.timeStepRank), vocab \(c.vocabSize), \(converted.model.parameterCount) parameters",
                    "weights: model.safetensors, dtypes \(converted.dtypes.sorted().joined(separator: ", ")) -> F32",
                    "tokenizer: \(t.vocabularySize) tokens, bos \(t.bosID.map(String.init) ?? "none"), eos \(t.eosID.map(String.init) ?? "none")",
                ]
            })
    }
}
