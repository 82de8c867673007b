#!/usr/bin/env python3
"""Batching, preemption, prefix caching and many clients on a real `tessera serve` under mpirun (loopback only):
16 prompts at once give exactly the tokens (and logprobs within 1e-4) each gives alone, also when the KV pool is so
small that sequences are preempted and when prompts hit the prefix cache; 64 concurrent streams complete while
/health stays 200; a client that disconnects mid-stream frees its blocks; a full queue answers 429; an idle server
does not burn the machine; a drain lets streams finish and refuses new requests with 503.

Usage: serve_load_test.py TESSERA MODEL NP TP PP
"""
import concurrent.futures as futures
import http.client
import json
import os
import signal
import sys
import threading
import time

import openai

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, Server  # noqa: E402

TOPICS = ["the sea", "a red fox", "mountains", "a robot", "winter", "the moon", "coffee", "a lighthouse",
          "trains", "a garden", "rain", "an old map", "bees", "a violin", "deserts", "a library"]
SYSTEM = ("You are a careful assistant for a library. Answer in plain English, in one or two sentences, "
          "without lists, and never mention that you are an AI. The reader is a curious student.")


def distinct_prompts():
    return [{"prompt": f"Write one sentence about {t}:"} for t in TOPICS]


def shared_prefix_prompts():
    return [{"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Tell me about {t}."}]}
            for t in TOPICS]


def run_one(client, name, item, max_tokens=20):
    """Greedy tokens (ids) and their logprobs for one prompt."""
    common = dict(model=name, max_tokens=max_tokens, temperature=0,
                  extra_body={"ignore_eos": True, "return_tokens_as_token_ids": True})
    if "prompt" in item:
        r = client.completions.create(prompt=item["prompt"], logprobs=1, **common)
        lp = r.choices[0].logprobs
        return [int(t.split(":")[1]) for t in lp.tokens], lp.token_logprobs
    r = client.chat.completions.create(messages=item["messages"], logprobs=True, **common)
    content = r.choices[0].logprobs.content
    return [int(t.token.split(":")[1]) for t in content], [t.logprob for t in content]


def run_all(client, name, items, concurrently):
    if not concurrently:
        return [run_one(client, name, it) for it in items]
    with futures.ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(lambda it: run_one(client, name, it), items))


def same(c, what, got, want):
    tokens_equal = all(g[0] == w[0] for g, w in zip(got, want)) and len(got) == len(want)
    worst = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g[1], w[1]))
    c.check(tokens_equal, f"{what}: tokens identical to each prompt alone",
            [(i, g[0], w[0]) for i, (g, w) in enumerate(zip(got, want)) if g[0] != w[0]][:2])
    c.check(worst <= 1e-4, f"{what}: logprobs within 1e-4 of alone (worst {worst:.2e})")


def client_for(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream_raw(server, name, max_tokens, read_events=None):
    """A streaming chat request over a raw connection; returns (events read, finished cleanly)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    body = json.dumps({"model": name, "messages": [{"role": "user", "content": "Count from one to one thousand."}],
                       "max_tokens": max_tokens, "stream": True, "ignore_eos": True, "temperature": 0})
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    events, done = 0, False
    for line in resp:
        if line.startswith(b"data: "):
            events += 1
            if line.strip() == b"data: [DONE]":
                done = True
                break
            if read_events and events >= read_events:
                break
    conn.close()
    return events, done, resp.status


def main():
    binary, model, np_, tp, pp = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    c = Checks()
    layout = dict(np=np_, tp=tp, pp=pp)

    # References: each prompt alone, no prefix cache; then a full queue gives 429.
    with Server(binary, model, extra=["--no-prefix-caching", "--max-num-seqs", "1", "--max-queue", "1"],
                **layout) as ref:
        client = client_for(ref)
        name = client.models.list().data[0].id
        alone_distinct = run_all(client, name, distinct_prompts(), concurrently=False)
        alone_shared = run_all(client, name, shared_prefix_prompts(), concurrently=False)
        with futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: ref.request("POST", "/v1/completions", {
                "model": name, "prompt": "Count to a hundred:", "max_tokens": 64, "ignore_eos": True}), range(4)))
        rejected = [a for a in answers if a[0] == 429]
        c.check(rejected and all("Retry-After" in a[1] and a[2]["error"]["type"] for a in rejected) and
                any(a[0] == 200 for a in answers), "a full waiting queue answers 429 with Retry-After",
                [a[0] for a in answers])

    # The default server: batched, prefix cache hits, many streams, disconnects, idle CPU, drain.
    with Server(binary, model, **layout) as server:
        client = client_for(server)
        same(c, "16 prompts at once", run_all(client, name, distinct_prompts(), concurrently=True), alone_distinct)
        hits_before = server.metric("prefix_cache_hits_total")
        run_one(client, name, shared_prefix_prompts()[0])  # the shared system prompt enters the cache
        together = run_all(client, name, shared_prefix_prompts(), concurrently=True)
        hits = server.metric("prefix_cache_hits_total") - hits_before
        c.check(hits >= 16 * 32, f"prefix cache hits counted ({hits:.0f} tokens)")
        same(c, "16 prompts sharing a cached prefix", together, alone_shared)

        # 64 concurrent streams, /health polled throughout.
        health, stop_polling = [], threading.Event()

        def poll():
            while not stop_polling.is_set():
                health.append(server.health())
                time.sleep(0.2)

        poller = threading.Thread(target=poll)
        poller.start()
        with futures.ThreadPoolExecutor(64) as pool:
            results = list(pool.map(lambda _: stream_raw(server, name, 24), range(64)))
        stop_polling.set()
        poller.join()
        c.check(all(done and status == 200 for _, done, status in results), "64 concurrent streams all complete",
                [r for r in results if not r[1]][:3])
        c.check(health and all(h == 200 for h in health), f"/health 200 throughout ({len(health)} polls)",
                set(health))

        # A client that goes away mid-stream: its request is cancelled and its blocks freed.
        idle_usage = server.metric("kv_cache_usage_perc")
        events, done, _ = stream_raw(server, name, 2000, read_events=5)
        deadline = time.time() + 20
        while time.time() < deadline and (server.metric("num_requests_running") > 0 or
                                          server.metric("kv_cache_usage_perc") > idle_usage):
            time.sleep(0.2)
        c.check(not done and server.metric("num_requests_running") == 0 and
                server.metric("kv_cache_usage_perc") == idle_usage and server.metric("request_success_total") > 0,
                "a disconnected stream is cancelled and its KV blocks freed",
                (server.metric("num_requests_running"), server.metric("kv_cache_usage_perc"), idle_usage))
        # The same for a request that is not streamed: the client sends it and hangs up while it runs.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/v1/completions", json.dumps({"model": name, "prompt": "Count:", "max_tokens": 2000,
                                                            "ignore_eos": True}), {"Content-Type": "application/json"})
        time.sleep(1.0)
        running_then = server.metric("num_requests_running")
        conn.close()
        deadline = time.time() + 20
        while time.time() < deadline and server.metric("num_requests_running") > 0:
            time.sleep(0.2)
        c.check(running_then == 1 and server.metric("num_requests_running") == 0 and
                server.metric("kv_cache_usage_perc") == idle_usage,
                "a client that hangs up on a non-streamed request cancels it", running_then)
        c.check(server.health() == 200, "the server stays healthy")

        # Idle: followers sleep between heartbeats instead of spinning in MPI.
        pids = server.pids()
        time.sleep(2)
        before = {p: cpu_seconds(p) for p in pids}
        time.sleep(10)
        usage = {p: (cpu_seconds(p) - before[p]) / 10 for p in pids}
        c.check(len(pids) == np_ and all(u < 0.05 for u in usage.values()),
                f"idle {np_}-rank server: every rank under 5% of a core over 10 s ({sorted(round(u, 3) for u in usage.values())})")

        # Drain: SIGUSR1 to mpirun; in-flight streams finish, new requests get 503, every rank exits 0.
        with futures.ThreadPoolExecutor(8) as pool:
            streams = [pool.submit(stream_raw, server, name, 48) for _ in range(8)]
            # Signal once all 8 are running, not after a fixed time: on a loaded machine (CTest runs two tests at
            # once) their requests could still be on their way after a second, and a drain with nothing in flight
            # rightly exits at once, closing the port the 503 check below needs.
            deadline = time.time() + 60
            while time.time() < deadline and server.metric("num_requests_running") < 8:
                time.sleep(0.05)
            server.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
            status, headers, _ = server.request("POST", "/v1/completions", {"model": name, "prompt": "hi"})
            c.check(status == 503 and "Retry-After" in headers, "while draining, new requests get 503", status)
            finished = [s.result() for s in streams]
        c.check(all(done for _, done, _ in finished), "drain: the 8 in-flight streams complete")
        code = server.stop(timeout=60)
        c.check(code == 0, "drain: every rank exits 0", code)

    # A pool so small that sequences are preempted: still the same tokens.
    with Server(binary, model, extra=["--kv-cache-blocks", "24"], **layout) as small:
        client = client_for(small)
        together = run_all(client, name, distinct_prompts(), concurrently=True)
        preemptions = small.metric("num_preemptions_total")
        c.check(preemptions > 0, f"the small KV pool preempts ({preemptions:.0f} preemptions)")
        same(c, "16 prompts with preemption", together, alone_distinct)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
