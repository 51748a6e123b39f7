#!/usr/bin/env python3
"""Bounded load on a running `calm serve`: N concurrent streaming clients, each sending
requests back to back for a fixed time. Standard library only.

Prints one JSON line: aggregate decode tokens/s, p50/p99 time to first token, p50/p99 gap
between tokens, requests, errors and, with --rss-pid, the server's resident memory sampled every
--rss-every seconds (MB, from /proc). Usage:
  serve_load.py --port 8080 --model kv-two-experts --prompt "ak + aaix =" --streams 8 --seconds 20
"""
import argparse, http.client, json, statistics, threading, time


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def worker(args, deadline, out, lock):
    ttfts, gaps, tokens, requests, errors = [], [], 0, 0, 0
    body = json.dumps({"model": args.model, "prompt": args.prompt, "max_tokens": args.max_tokens, "temperature": 0,
                       "stream": True, "calm": {"ignore_eos": True}})
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
            start = time.monotonic()
            conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                errors += 1
                resp.read()
                conn.close()
                continue
            last, done, got = None, False, 0
            while True:
                line = resp.readline()
                if not line:
                    break
                if not line.startswith(b"data: "):
                    continue
                payload = line[6:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                chunk = json.loads(payload)
                if not chunk["choices"] or chunk["choices"][0].get("finish_reason") is not None:
                    continue
                now = time.monotonic()
                if last is None:
                    ttfts.append(now - start)
                else:
                    gaps.append(now - last)
                last = now
                got += 1
            conn.close()
            if done:
                requests += 1
                tokens += got
            else:
                errors += 1
        except Exception:
            errors += 1
    with lock:
        out["ttft"] += ttfts
        out["gaps"] += gaps
        out["tokens"] += tokens
        out["requests"] += requests
        out["errors"] += errors


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def sample_rss(pid, every, stop, samples):
    """(seconds since start, RSS MB) now and every `every` seconds until `stop` is set."""
    start = time.monotonic()
    while True:
        samples.append((round(time.monotonic() - start), rss_mb(pid)))
        if stop.wait(every):
            break


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--model", required=True)
    p.add_argument("--prompt", default="ak + aaix =")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--max-tokens", type=int, default=10)
    p.add_argument("--rss-pid", type=int, help="server process whose RSS to sample")
    p.add_argument("--rss-every", type=float, default=10)
    args = p.parse_args()
    out = {"ttft": [], "gaps": [], "tokens": 0, "requests": 0, "errors": 0}
    lock = threading.Lock()
    rss, stop_rss = [], threading.Event()
    sampler = None
    if args.rss_pid:
        sampler = threading.Thread(target=sample_rss, args=(args.rss_pid, args.rss_every, stop_rss, rss))
        sampler.start()
    start = time.monotonic()
    deadline = start + args.seconds
    threads = [threading.Thread(target=worker, args=(args, deadline, out, lock)) for _ in range(args.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if sampler:
        stop_rss.set()
        sampler.join()
        rss.append((round(elapsed), rss_mb(args.rss_pid)))
    ms = lambda x: None if x is None else round(1000 * x, 2)
    report = {
        "model": args.model, "streams": args.streams, "seconds": round(elapsed, 1), "requests": out["requests"],
        "errors": out["errors"], "tokens_per_s": round(out["tokens"] / elapsed, 1),
        "ttft_p50_ms": ms(percentile(out["ttft"], 0.5)), "ttft_p99_ms": ms(percentile(out["ttft"], 0.99)),
        "token_p50_ms": ms(percentile(out["gaps"], 0.5)), "token_p99_ms": ms(percentile(out["gaps"], 0.99)),
    }
    if sampler:
        report["rss_mb"] = rss
    print(json.dumps(report))


if __name__ == "__main__":
    main()
