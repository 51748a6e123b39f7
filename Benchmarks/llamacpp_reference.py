"""llama.cpp (through llama-cpp-python) on a GGUF file: load time, prefill of N tokens, decode
tokens/s and peak RSS, as one JSON line. Benchmarks/llamacpp.sh runs it beside calm."""
import json
import resource
import sys
import time

from llama_cpp import Llama

path, threads, prompt_tokens, new_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
started = time.perf_counter()
llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=prompt_tokens + new_tokens + 8,
            n_batch=prompt_tokens, verbose=False)
load_s = time.perf_counter() - started

the = llm.tokenize(b" the", add_bos=False)[0]
prompt = [the] * prompt_tokens
started = time.perf_counter()
llm.eval(prompt)
prefill_s = time.perf_counter() - started

# Decoding: one token at a time after a short prompt, greedy, ignoring end-of-sequence.
llm.reset()
llm.eval(llm.tokenize(b"Once upon a time", add_bos=False))
started = time.perf_counter()
for _ in range(new_tokens):
    token = int(llm.scores[llm.n_tokens - 1].argmax())
    llm.eval([token])
decode_s = time.perf_counter() - started
print(json.dumps({"load_s": load_s, "prefill_tokens_per_s": prompt_tokens / prefill_s,
                  "decode_tokens_per_s": new_tokens / decode_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
