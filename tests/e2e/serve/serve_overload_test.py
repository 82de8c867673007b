#!/usr/bin/env python3
"""Overload of a real one-rank `tessera serve` (loopback): 200 concurrent streaming clients for a fixed time against
--max-queue 32. Every request ends with an answer: 200 with a complete stream ([DONE]), 429 with Retry-After, or 503;
none hangs (each is bounded), none is reset without a response. Rank 0's RSS (VmRSS, sampled every 0.5 s) stays
within baseline + 300 MiB; /health answers 200 throughout; afterwards the server serves normally and drains with 0.
Prints the figures (docs/RELIABILITY.md).

Usage: serve_overload_test.py TESSERA MODEL [CLIENTS] [SECONDS]
"""
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, Server  # noqa: E402

MAX_QUEUE = 32
REQUEST_LIMIT_S = 90  # no single request may take longer: that would be a hang


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def one_request(port, name, i):
    """One streaming chat request on its own connection: (outcome, seconds, detail)."""
    started = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_LIMIT_S)
    body = json.dumps({"model": name, "messages": [{"role": "user", "content": f"Say something about {i}."}],
                       "max_tokens": 8, "stream": True, "temperature": 0})
    try:
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status == 200:
            done = False
            for line in resp:
                if line.strip() == b"data: [DONE]":
                    done = True
                    break
            return ("ok" if done else "truncated"), time.time() - started, None
        payload = resp.read()
        if resp.status == 429:
            retry = resp.getheader("Retry-After")
            return ("429" if retry and retry.isdigit() else "429-no-retry-after"), time.time() - started, retry
        if resp.status == 503:
            return "503", time.time() - started, None
        return f"status-{resp.status}", time.time() - started, payload[:200]
    except Exception as e:  # noqa: BLE001 (a reset, a timeout: what this test is about)
        return f"error-{type(e).__name__}", time.time() - started, str(e)
    finally:
        conn.close()


def main():
    binary, model = sys.argv[1], sys.argv[2]
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    c = Checks()
    with Server(binary, model, extra=["--max-queue", str(MAX_QUEUE)]) as server:
        _, _, models = server.request("GET", "/v1/models")
        name = models["data"][0]["id"]
        pid = server.pids()[0]
        for i in range(3):  # warm: the first requests allocate what every later one reuses
            one_request(server.port, name, i)
        time.sleep(1.0)
        baseline = max(rss_kib(pid) for _ in range(4) if time.sleep(0.25) is None)

        outcomes, latencies, details = {}, [], []
        lock = threading.Lock()
        stop_at = time.time() + seconds
        rss, health = [], []
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                rss.append(rss_kib(pid))
                time.sleep(0.5)

        def poll_health():
            while not sampling.is_set():
                health.append(server.health())
                time.sleep(0.5)

        def client(k):
            i = 0
            while time.time() < stop_at:
                outcome, took, detail = one_request(server.port, name, k * 1000 + i)
                i += 1
                with lock:
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    if outcome == "ok":
                        latencies.append(took)
                    elif outcome not in ("429", "503"):
                        details.append((outcome, detail))
                if outcome in ("429", "503"):
                    time.sleep(1.0)  # as Retry-After says

        samplers = [threading.Thread(target=sample), threading.Thread(target=poll_health)]
        for t in samplers:
            t.start()
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(1.0, stop_at + REQUEST_LIMIT_S + 10 - time.time()))
        hung = sum(t.is_alive() for t in threads)
        wall = time.time() - started
        sampling.set()
        for t in samplers:
            t.join()

        total = sum(outcomes.values())
        ok, rejected, unavailable = outcomes.get("ok", 0), outcomes.get("429", 0), outcomes.get("503", 0)
        latencies.sort()
        p50 = latencies[len(latencies) // 2] if latencies else float("nan")
        worst = latencies[-1] if latencies else float("nan")
        peak = max(rss) if rss else 0
        print(f"FIGURES overload: {clients} streaming clients for {seconds:.0f} s (wall {wall:.1f} s), "
              f"--max-queue {MAX_QUEUE}, max_tokens 8: {total} requests: {ok} complete, {rejected} x 429, "
              f"{unavailable} x 503, other {total - ok - rejected - unavailable}; latency of complete ones "
              f"p50 {p50:.2f} s, max {worst:.2f} s; rank-0 RSS baseline {baseline / 1024:.1f} MiB, "
              f"max {peak / 1024:.1f} MiB ({len(rss)} samples); /health {len(health)} polls")
        c.check(hung == 0, f"no client hangs ({hung} still waiting)")
        c.check(total > 0 and ok + rejected + unavailable == total,
                f"every request ends with [DONE], 429 with Retry-After, or 503 ({outcomes})", details[:5])
        c.check(ok > 0 and rejected > 0, f"some complete ({ok}) and the full queue answers 429 ({rejected})")
        c.check(peak < baseline + 300 * 1024,
                f"rank-0 RSS bounded: max {peak / 1024:.1f} MiB < baseline {baseline / 1024:.1f} MiB + 300 MiB")
        c.check(health and all(h == 200 for h in health), f"/health 200 throughout ({len(health)} polls)",
                sorted(set(health), key=str))
        time.sleep(1.0)
        c.check(server.health() == 200 and one_request(server.port, name, 0)[0] == "ok",
                "after the overload the server is healthy and serves")
        c.check(server.metric("num_requests_running") == 0 and server.metric("num_requests_waiting") == 0,
                "after the overload nothing is left running or waiting")
        code = server.stop()
        c.check(code == 0, "SIGUSR1 drains and every rank exits 0", code)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
