#!/usr/bin/env python3
"""Pipeline parallelism on the CPU: decode throughput of pp = 2 (two ranks, one thread each) against pp = 1 (one
rank, one thread), with the pipeline's micro-batches off (--micro-batches 1: the stages take turns, "before") and on
(two plans in flight, "after"), at 16 and 64 concurrent sequences. Same model, same threads per rank, alternating
in one run, median of --repeats rounds.

    .venv/bin/python scripts/bench/pipeline_bench.py --write-doc
    .venv/bin/python scripts/bench/pipeline_bench.py --pp-layers auto --write-doc   # stages balanced for the LM head

Each configuration is one `tessera bench --batch 16,64 --json` under mpirun (--bind-to none, TESSERA_THREADS=1);
the decode tokens/s it reports is batch * (gen_len - 1) / time of the decode steps. The table names the CPU
(lscpu), the load average before and after, and the command.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_vs_llama_bench import DEFAULT_MODEL, DOC, REPO, cpu_flags, load_average, lscpu_model, write_doc  # noqa: E402

BEGIN_MARK = "<!-- pipeline-bench {key}: begin (written by scripts/bench/pipeline_bench.py) -->"
END_MARK = "<!-- pipeline-bench {key}: end -->"


def bench(args, pp: int, micro_batches: int) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = ["mpirun", "--bind-to", "none", "--oversubscribe", "-np", str(pp)]
        if os.geteuid() == 0:
            cmd.insert(1, "--allow-run-as-root")
        cmd += [str(args.tessera), "bench", "--model", str(args.model), "--pp", str(pp), "--batch", args.batch,
                "--prompt-len", str(args.prompt_len), "--gen-len", str(args.gen_len), "--micro-batches",
                str(micro_batches), "--json", str(out)]
        if pp > 1 and args.pp_layers:
            cmd += ["--pp-layers", args.pp_layers]
        env = dict(os.environ, TESSERA_THREADS="1", OPENBLAS_NUM_THREADS="1")
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        if run.returncode != 0:
            sys.exit(f"failed: {shlex.join(cmd)}\n{run.stdout}\n{run.stderr}")
        rows = json.loads(out.read_text())["results"]
        return {r["batch"]: r["decode_tokens_per_s"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--tessera", type=Path, default=REPO / "build" / "launcher" / "tessera")
    ap.add_argument("--batch", default="16,64")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen-len", type=int, default=33)
    ap.add_argument("--pp-layers", default="", help="passed to the pp = 2 runs (e.g. auto, or 19,11)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write-doc", action="store_true", help=f"write the table into {DOC.relative_to(REPO)}")
    args = ap.parse_args()
    load_before = load_average()
    configs = [("pp=1", 1, 1), ("pp=2, no micro-batches (before)", 2, 1), ("pp=2, 2 micro-batches (after)", 2, 2)]
    runs: dict[str, list[dict[int, float]]] = {name: [] for name, _, _ in configs}
    for round_ in range(args.repeats):
        for name, pp, mb in configs:
            runs[name].append(bench(args, pp, mb))
            print(f"round {round_ + 1}: {name}: {runs[name][-1]}", flush=True)
    batches = sorted(runs["pp=1"][0])
    median = {name: {b: statistics.median(r[b] for r in rs) for b in batches} for name, rs in runs.items()}
    split = f", `--pp-layers {args.pp_layers}`" if args.pp_layers else ""
    env = [f"{name}={os.environ[name]}" for name in ("TESSERA_CPU_ISA", "TESSERA_CPU_ACTIVATIONS") if os.environ.get(name)]
    command = shlex.join([*env, ".venv/bin/python", f"scripts/bench/{Path(__file__).name}", *sys.argv[1:]])
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {lscpu_model()} ({cpu_flags()}; {os.cpu_count()} cores "
        f"visible); model `{args.model.name}`; one thread per rank; prompt {args.prompt_len} tokens, "
        f"{args.gen_len - 1} decode steps{split}; median of {args.repeats}; load average before / after: "
        f"{load_before} / {load_average()}.",
        "",
        f"Command: `{command}`",
        "",
        "| sequences | pp=1 decode tok/s | pp=2 before (stages take turns) | pp=2 after (2 micro-batches) | "
        "before / pp=1 | after / pp=1 | runs after |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    one, before, after = (median[name] for name, _, _ in configs)
    for b in batches:
        runs_after = ", ".join(f"{r[b]:.0f}" for r in runs[configs[2][0]])
        lines.append(f"| {b} | {one[b]:.1f} | {before[b]:.1f} | {after[b]:.1f} | {before[b] / one[b]:.2f}x | "
                     f"{after[b] / one[b]:.2f}x | {runs_after} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write_doc:
        key = f"pp-layers={args.pp_layers}" if args.pp_layers else "even"
        # Each kind of machine keeps its own tables, as cpu_vs_llama_bench.py's (the AVX2-only VMs' keys carry no
        # suffix), and so does a kernel path forced with TESSERA_CPU_ISA.
        if cpu_flags().startswith("AVX-512"):
            key += " machine=avx512"
        if os.environ.get("TESSERA_CPU_ISA"):
            key += " isa=" + os.environ["TESSERA_CPU_ISA"]
        write_doc(table, key, BEGIN_MARK, END_MARK)


if __name__ == "__main__":
    main()
