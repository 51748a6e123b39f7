#!/usr/bin/env python3
"""Drives a running `calm serve` with the official `openai` Python client (pip install openai),
streaming and not, and checks that both give the same greedy text. Not part of CI.

  calm serve --model checkpoints/anchor.h5 --composition checkpoints/compositions/kv-two-experts.h5 &
  scripts/serve_openai_client.py --port 8080 --model kv-two-experts --prompt "aaix + aazbc ="
With a chat model (a tokenizer with a chat template), add --chat.
"""
import argparse, sys

from openai import OpenAI


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", default="aaix + aazbc =")
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--api-key", default="unused")
    p.add_argument("--chat", action="store_true")
    args = p.parse_args()
    client = OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key=args.api_key)
    print("models:", [m.id for m in client.models.list().data])
    if args.chat:
        messages = [{"role": "user", "content": args.prompt}]
        whole = client.chat.completions.create(model=args.model, messages=messages, max_tokens=args.max_tokens, temperature=0)
        text = whole.choices[0].message.content
        parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=args.model, messages=messages, max_tokens=args.max_tokens, temperature=0, stream=True) if c.choices]
    else:
        whole = client.completions.create(model=args.model, prompt=args.prompt, max_tokens=args.max_tokens, temperature=0)
        text = whole.choices[0].text
        parts = [c.choices[0].text for c in client.completions.create(
            model=args.model, prompt=args.prompt, max_tokens=args.max_tokens, temperature=0, stream=True) if c.choices]
    print("completion:", repr(text), "usage:", whole.usage)
    print("streamed:  ", repr("".join(parts)), f"({len(parts)} chunks)")
    try:
        client.completions.create(model="no-such-model", prompt="x")
    except Exception as error:  # the client raises NotFoundError for a 404
        print("unknown model:", type(error).__name__, getattr(error, "status_code", None))
    if "".join(parts) != text:
        sys.exit("streamed text differs from the completion")
    print("ok")


if __name__ == "__main__":
    main()
