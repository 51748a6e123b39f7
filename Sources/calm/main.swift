import CALMCommandLine

CALMCommandLine.main()
