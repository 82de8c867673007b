#!/usr/bin/env python3
"""`tessera serve --kv-cache-dtype f16` against the default f32 cache, each on one rank with the same KV memory
budget (--kv-cache-memory), with the official `openai` client on loopback:
  - the ready line names the dtype, and the f16 cache holds twice the f32 cache's tokens (up to one block's rounding);
  - greedy completions of several prompts, chat and plain, give the same text from both servers (both match the
    transformers goldens on these prompts: runtime.forward_smollm2.*.kv_f16);
  - the kv usage gauge of the f16 server returns to its idle value after a request;
  - a config file's `scheduler.kv_cache_dtype` is read, and a bad value stops the start with a message naming it.

Usage: serve_kv_dtype_test.py TESSERA MODEL
"""
import os
import re
import subprocess
import sys
import tempfile
import time

import openai

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, Server, mpirun  # noqa: E402

BUDGET = ["--kv-cache-memory", "48MiB", "--max-model-len", "1024"]
PROMPTS = ["The capital of France is", "Write a haiku about the sea.", "List three prime numbers:"]
READY = re.compile(r"KV cache (f32|f16) (\d+) tokens in (\d+) blocks of (\d+)")


def completions(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=120)
    out = []
    for prompt in PROMPTS:
        chat = client.chat.completions.create(model=client.models.list().data[0].id, temperature=0, max_tokens=24,
                                              messages=[{"role": "user", "content": prompt}])
        plain = client.completions.create(model=client.models.list().data[0].id, prompt=prompt, temperature=0,
                                          max_tokens=24)
        out.append((chat.choices[0].message.content, plain.choices[0].text))
    return out


def main():
    binary, model = sys.argv[1], sys.argv[2]
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    c = Checks()
    seen = {}
    for dtype in ("f32", "f16"):
        with Server(binary, model, extra=[*BUDGET, "--kv-cache-dtype", dtype]) as server:
            match = READY.search(server.ready_line or "")
            if not c.check(match is not None and match[1] == dtype, f"{dtype}: the ready line names the KV dtype",
                           server.ready_line):
                continue
            tokens, blocks, block = int(match[2]), int(match[3]), int(match[4])
            idle = server.metric("kv_cache_usage_perc")
            seen[dtype] = (tokens, blocks, block, completions(server))
            deadline = time.time() + 20  # the gauge follows the engine's next step, not the response
            while time.time() < deadline and server.metric("kv_cache_usage_perc") > idle:
                time.sleep(0.2)
            c.check(server.metric("kv_cache_usage_perc") == idle, f"{dtype}: kv usage back to idle ({idle})",
                    server.metric("kv_cache_usage_perc"))
            c.check(server.stop() == 0, f"{dtype}: the server drained and exited 0")
    if "f32" in seen and "f16" in seen:
        (t32, b32, block, out32), (t16, b16, _, out16) = seen["f32"], seen["f16"]
        c.check(2 * b32 <= b16 <= 2 * b32 + 1, "f16 holds twice the f32 cache's blocks in the same memory",
                f"f32 {b32} blocks ({t32} tokens), f16 {b16} blocks ({t16} tokens)")
        for prompt, a, b in zip(PROMPTS, out32, out16):
            c.check(a == b, f"same greedy text from both caches: {prompt!r}", f"f32 {a!r} / f16 {b!r}")

    # The config file's key, and a bad value: a clear error before any load.
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "serve.yaml")
        with open(config, "w") as f:
            f.write("scheduler:\n  kv_cache_dtype: f16\n  kv_cache_memory: 48MiB\n  max_model_len: 1024\n")
        with Server(binary, model, extra=["--config", config]) as server:
            match = READY.search(server.ready_line or "")
            c.check(match is not None and match[1] == "f16", "scheduler.kv_cache_dtype from a config file",
                    server.ready_line)
        with open(config, "w") as f:
            f.write("scheduler:\n  kv_cache_dtype: fp8\n")
        run = subprocess.run(mpirun(1) + [binary, "serve", "--model", model, "--config", config, "--port", "0"],
                             capture_output=True, text=True, timeout=120)
        c.check(run.returncode != 0 and "kv_cache_dtype" in run.stdout + run.stderr and "fp8" in run.stdout + run.stderr,
                "a bad kv_cache_dtype stops the start, naming the key and the value", (run.stdout + run.stderr)[-400:])
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
