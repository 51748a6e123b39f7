import CALMCommandLine
import MambaExpert

// The calm tool with Mamba checkpoints and Hugging Face Mamba conversion added.
CALMCommandLine.main(toolName: "calm-mamba", extensions: [MambaCheckpoint.commandLineExtension])
