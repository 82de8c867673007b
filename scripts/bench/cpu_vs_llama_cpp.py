#!/usr/bin/env python3
"""Tessera vs llama.cpp on the CPU: prefill and decode tokens/s, side by side, same GGUF, same threads.

Run with the project's venv (llama-cpp-python installed there):

    .venv/bin/python scripts/bench/cpu_vs_llama_cpp.py --threads 2 --write-doc

For each repetition the engines alternate (Tessera, then llama.cpp), so a noisy neighbour hurts both alike; the
table shows the median of the repetitions.

- Prefill: a prompt of --prompt-tokens tokens (built by cutting a fixed English text at that many llama.cpp
  tokens) evaluated in one batch, first token sampled. Tessera: the "prefill" time `tessera generate` reports
  (prompt in, first token out). llama.cpp: time.perf_counter around Llama.eval(prompt) and the argmax.
- Decode: --decode-tokens greedy tokens after the first, never stopping at end-of-generation (Tessera runs with
  --ignore-eos and --max-tokens decode+1; llama.cpp is driven token by token with eval([tok]) + argmax).

Tessera runs as `mpirun -np 1 --bind-to none tessera generate --tp 1 --pp 1` with OPENBLAS_NUM_THREADS=--threads;
its load time is not counted (the timings come from the engine). With --weight-dtypes f32,bf16,q8_0,native it is
measured once per weight format (`tessera generate --weight-dtype`; "native" computes on the GGUF's own blocks,
as llama.cpp does).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = Path.home() / ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf"
DOC = REPO / "docs" / "PERFORMANCE.md"
# One block per thread count (and llama.cpp wait policy), so the tables live side by side and a rerun replaces only
# its own.
BEGIN_MARK = "<!-- cpu-vs-llama-cpp {key}: begin (written by scripts/bench/cpu_vs_llama_cpp.py) -->"
END_MARK = "<!-- cpu-vs-llama-cpp {key}: end -->"

# Plain prose, long enough to cut any prompt length up to ~600 tokens from it.
BASE_TEXT = (
    "The history of the lighthouse is a history of people trying to make the sea a little less dangerous. "
    "Long before electricity, keepers climbed narrow stairs every evening to trim wicks, polish lenses and "
    "wind the clockwork that turned the great glass prisms. A good keeper knew the moods of the weather, the "
    "names of the ships that passed, and the exact sound the fog made when it rolled in from the north. "
    "Engineers later replaced the oil lamps with gas, then with electric bulbs, and finally with small LED "
    "arrays that a computer could switch on and off from hundreds of miles away. The keepers left, one by one, "
    "and many of the towers were sold, painted, and turned into museums or holiday homes. Yet sailors still "
    "look for the flash of a familiar light when they come home at night, and children still draw lighthouses "
    "with red and white stripes even if they have never seen one. Some towers stand on rocks far out at sea, "
    "built by crews who could work only at low tide, carrying granite blocks on small boats and fitting them "
    "together like the pieces of a puzzle. Others sit on sandy capes that move a few feet every year, so the "
    "whole tower had to be lifted onto rails and rolled inland to keep it from falling into the water. "
    "In the age of satellite navigation a ship hardly needs a light to find its way, but a lighthouse is "
    "also a promise: someone thought about you, out there in the dark, and left a light on. "
)


@dataclass
class Sample:
    prefill_tokens: int
    prefill_tps: float
    decode_tokens: int
    decode_tps: float


@dataclass
class Series:
    label: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


# ---------------------------------------------------------------------------------------------------- llama.cpp
class LlamaCpp:
    def __init__(self, model: Path, threads: int, n_ctx: int):
        import llama_cpp  # noqa: PLC0415 (only this engine needs it)

        self.version = getattr(llama_cpp, "__version__", "?")
        self.llm = llama_cpp.Llama(model_path=str(model), n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx,
                                   n_batch=512, verbose=False)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=True, special=False)

    def detokenize(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="ignore")

    def run(self, prompt: list[int], decode_tokens: int) -> Sample:
        import numpy as np  # noqa: PLC0415

        llm = self.llm
        llm.reset()  # n_tokens = 0: eval() drops the cached positions, so nothing is reused between runs
        start = time.perf_counter()
        llm.eval(prompt)
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        prefill_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(decode_tokens):
            llm.eval([token])
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        decode_s = time.perf_counter() - start
        return Sample(len(prompt), len(prompt) / prefill_s, decode_tokens, decode_tokens / decode_s)


# ------------------------------------------------------------------------------------------------------- Tessera
SUMMARY = re.compile(r"prefill: (\d+) tokens in ([\d.]+) s \([\d.]+ tokens/s\); decode: (\d+) tokens in ([\d.]+) s")


def tessera_command(args: argparse.Namespace, prompt_text: str, weight_dtype: str | None) -> list[str]:
    # --bind-to none: for -np <= 2 Open MPI binds each rank to one core by default, which would put every
    # thread of the rank on that core.
    cmd = ["mpirun", "--allow-run-as-root", "-np", "1", "--bind-to", "none",
           "-x", f"OPENBLAS_NUM_THREADS={args.threads}",
           str(args.tessera), "generate", "--model", str(args.model), "--tp", "1", "--pp", "1",
           "--max-tokens", str(args.decode_tokens + 1), "--ignore-eos", "--max-seq-len", str(args.n_ctx),
           "--prompt", prompt_text]
    if weight_dtype is not None:
        cmd += ["--weight-dtype", weight_dtype]
    return cmd


def run_tessera(args: argparse.Namespace, prompt_text: str, weight_dtype: str | None) -> Sample:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(tessera_command(args, prompt_text, weight_dtype), capture_output=True, text=True, env=env,
                          timeout=900, check=False)
    match = SUMMARY.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        sys.exit(f"tessera failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    p_tok, p_s, d_tok, d_s = int(match[1]), float(match[2]), int(match[3]), float(match[4])
    if d_tok != args.decode_tokens:
        sys.exit(f"tessera decoded {d_tok} tokens, expected {args.decode_tokens} (did it stop early?)")
    return Sample(p_tok, p_tok / p_s, d_tok, d_tok / d_s)


# -------------------------------------------------------------------------------------------------------- report
def markdown(args: argparse.Namespace, series: list[Series], llama: Series, llama_version: str) -> str:
    cmd = " ".join(shlex.quote(a) for a in [".venv/bin/python", "scripts/bench/cpu_vs_llama_cpp.py", *args.argv])
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()} ({os.cpu_count()} cores visible), "
        f"{os_name()}, no GPU; {args.threads} thread(s) for both engines; model `{args.model.name}`; "
        f"llama-cpp-python {llama_version}; median of {args.repeats} alternating runs; "
        f"load average before / after: {args.load_before} / {load_average()} (other processes share the cores).",
        "",
        f"Command: `{cmd}`",
        "",
        f"| engine | prefill tokens | prefill tokens/s | decode tokens | decode tokens/s | prefill vs llama.cpp "
        f"| decode vs llama.cpp |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lp, ld = llama.median("prefill_tps"), llama.median("decode_tps")
    for s in [*series, llama]:
        p, d = s.median("prefill_tps"), s.median("decode_tps")
        lines.append(f"| {s.label} | {s.samples[0].prefill_tokens} | {p:.1f} | {s.samples[0].decode_tokens} | "
                     f"{d:.1f} | {p / lp:.2f}x | {d / ld:.2f}x |")
    return "\n".join(lines) + "\n"


def write_doc(table: str, key: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    begin, end = BEGIN_MARK.format(key=key), END_MARK.format(key=key)
    block = f"{begin}\n{table}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n### {key}\n\n" + block + "\n"
    DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--tessera", type=Path, default=REPO / "build-bench" / "launcher" / "tessera")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("--weight-dtypes", default="",
                    help="comma-separated Tessera --weight-dtype values to measure (empty: the binary's default only)")
    ap.add_argument("--llama-passive-wait", action="store_true",
                    help="run llama.cpp with OMP_WAIT_POLICY=PASSIVE (its OpenMP threads sleep instead of spinning "
                         "between ops: much better when other processes share the cores)")
    ap.add_argument("--write-doc", action="store_true", help=f"write the table into {DOC.relative_to(REPO)}")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.load_before = load_average()
    if not args.model.exists():
        sys.exit(f"model not found: {args.model}")
    if not args.tessera.exists():
        sys.exit(f"tessera binary not found: {args.tessera} (build it: ninja -C build-bench tessera)")

    if args.llama_passive_wait:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when llama.cpp's OpenMP runtime starts, i.e. at import
    llama = LlamaCpp(args.model, args.threads, args.n_ctx)
    words = llama.tokenize(BASE_TEXT * 4)
    if len(words) < args.prompt_tokens:
        sys.exit(f"--prompt-tokens {args.prompt_tokens} is longer than the built-in text ({len(words)} tokens)")
    prompt_text = llama.detokenize(words[:args.prompt_tokens]).strip()
    prompt = llama.tokenize(prompt_text)

    dtypes = [d for d in args.weight_dtypes.split(",") if d] or [None]
    series = [Series(f"Tessera ({d or 'default'} weights)") for d in dtypes]
    llama_series = Series("llama.cpp" + (" (OMP_WAIT_POLICY=PASSIVE)" if args.llama_passive_wait else ""))
    for rep in range(args.repeats):
        for d, s in zip(dtypes, series):
            s.samples.append(run_tessera(args, prompt_text, d))
            print(f"[{rep + 1}/{args.repeats}] {s.label}: {s.samples[-1]}", flush=True)
        llama_series.samples.append(llama.run(prompt, args.decode_tokens))
        print(f"[{rep + 1}/{args.repeats}] llama.cpp: {llama_series.samples[-1]}", flush=True)

    table = markdown(args, series, llama_series, llama.version)
    print()
    print(table)
    if args.write_doc:
        write_doc(table, f"threads={args.threads}" + (" llama-passive" if args.llama_passive_wait else ""))
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
