#!/usr/bin/env python3
"""README's first command: start `tessera serve` on several ranks, wait for /health, ask one chat question and one
streamed question with the official openai client, print the answers, drain the server and check that every rank
exited 0.

Usage: serve_demo.py TESSERA MODEL NP TP PP [PORT]
"""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai


def main():
    binary, model, np_, tp, pp = sys.argv[1:6]
    port = sys.argv[6] if len(sys.argv) > 6 else "8000"
    url = f"http://127.0.0.1:{port}"
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", np_]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    cmd += [binary, "serve", "--model", model, "--tp", tp, "--pp", pp, "--port", port]
    print("$", " ".join(cmd), flush=True)
    server = subprocess.Popen(cmd, start_new_session=True)
    try:
        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                print(f"serve_demo: the server exited with {server.returncode}", file=sys.stderr)
                return 1
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                print("serve_demo: the server was not healthy within 300 s", file=sys.stderr)
                return 1
            time.sleep(0.5)
        client = openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0, timeout=120)
        name = client.models.list().data[0].id
        question = "What is the capital of France? Answer in one sentence."
        print(f"\n>>> {question}", flush=True)
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": question}],
                                               temperature=0, max_tokens=48)
        print(reply.choices[0].message.content)
        print(f"[{reply.usage.prompt_tokens} prompt tokens, {reply.usage.completion_tokens} completion tokens, "
              f"finish reason: {reply.choices[0].finish_reason}]")
        question = "Write a haiku about the sea."
        print(f"\n>>> {question} (streamed)", flush=True)
        stream = client.chat.completions.create(model=name, messages=[{"role": "user", "content": question}],
                                                temperature=0.7, seed=7, max_tokens=64, stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print("\n")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGUSR1)  # drain: mpirun forwards it to every rank
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    print(f"serve_demo: server stopped, exit code {server.returncode}")
    return server.returncode


if __name__ == "__main__":
    sys.exit(main())
