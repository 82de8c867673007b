"""scripts/sim/pipeline_timeline.py (the pipeline simulation of docs/ARCHITECTURE.md): runs, is fast and
deterministic, and its results keep the invariants a pipeline must have: without micro-batches a pp-stage pipeline
idles (pp-1)/pp of its stage-time; with pp micro-batches and balanced stages the bubble falls under 15%; a timeline has
one row per stage; a measured per-layer time replaces the roofline exactly; the 1/tp sliced send only pays between
nodes; per-rank weights are what `tessera plan` says (when TESSERA_BIN is given).
Usage: pipeline_sim_test.py SCRIPT [TESSERA_BIN]"""
import json
import os
import subprocess
import sys
import time

failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run(script, *args, expect=0):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    if p.returncode != expect:
        print(p.stdout[-3000:], p.stderr[-3000:])
    check(p.returncode == expect, f"{' '.join(args) or '(no arguments)'}: exit {p.returncode} (want {expect})")
    return p, elapsed


def run_json(script, *args):
    p, _ = run(script, *args, "--json")
    return json.loads(p.stdout) if p.returncode == 0 else {"results": [], "timelines": {}}


def by_mb(results):
    return {r["micro_batches"]: r for r in results}


def stage_rows(text):
    return [line for line in text.splitlines() if line.startswith("stage ")]


def main():
    script = sys.argv[1]
    tessera = sys.argv[2] if len(sys.argv) > 2 else None

    # --help documents the assumptions' flags.
    p, _ = run(script, "--help")
    for flag in ("--layer-us", "--micro-batches", "--send", "--hbm-eff", "--ib-latency-us", "--dtype", "--context"):
        check(flag in p.stdout, f"--help mentions {flag}")

    # The standard report: fast, deterministic, every scenario of issue 13, says what is not measured.
    p1, elapsed = run(script)
    p2, _ = run(script)
    check(elapsed < 5, f"the standard report runs in under 5 s ({elapsed:.2f} s)")
    check(p1.stdout == p2.stdout and p1.stdout, "two runs print the same report")
    for model, layout in (("Llama-3-70B", "8 x 2"), ("Llama-3.1-405B", "8 x 8")):
        for batch in (16, 64, 256):
            rows = [l for l in p1.stdout.splitlines() if l.startswith(f"| {model} | {layout} | {batch} |")]
            check(len(rows) == 2, f"report has {model} {layout} batch {batch} with 1 and pp micro-batches")
    check("roofline (not measured)" in p1.stdout, "report says its per-layer times are not measured")

    # 405B shapes on 128 layers: 8 balanced stages of 16 (the LM head still on the last).
    res = run_json(script, "--model", "llama3.1-405b", "--layers", "128", "--batch", "64", "--micro-batches", "1,pp",
                   "--timeline")
    r = by_mb(res["results"])
    if set(r) == {1, 8}:
        one, eight = r[1], r[8]
        check(abs(one["bubble"] - 7 / 8) < 0.01 and one["bubble"] >= 7 / 8 - 1e-9,
              f"1 micro-batch at pp=8: bubble {one['bubble']:.4f} = 7/8 (+ the gaps of the sends and plan)")
        check(eight["bubble"] < 0.15, f"8 micro-batches, balanced stages: bubble {eight['bubble']:.4f} < 0.15")
        for x in (one, eight):
            check(abs(x["tokens_per_s"] * x["step_ms"] / 1e3 - x["batch"]) < 1e-6 * x["batch"],
                  f"m={x['micro_batches']}: tokens/s x step time = batch")
        check(one["step_ms"] >= sum(one["stage_busy_ms"]) and one["step_ms"] < 1.05 * sum(one["stage_busy_ms"]),
              "1 micro-batch: the step is the stages one after another plus small gaps")
        check(eight["step_ms"] >= max(eight["stage_busy_ms"]),
              "8 micro-batches: the step is at least the busiest stage")
        check(one["layers_per_stage"] == [16] * 8, "128 layers: 16 per stage")
        check(one["bound_by"] == "loop" and eight["bound_by"] == "stage 7",
              f"1 micro-batch: the loop sets the step ({one['bound_by']}); 8: the last stage, with the LM head "
              f"({eight['bound_by']})")
    r = run_json(script, "--model", "llama3.1-405b", "--layers", "128", "--batch", "64", "--micro-batches", "8",
                 "--plan-us", "3000")["results"]
    if r:
        check(r[0]["bound_by"] == "loop" and r[0]["step_ms"] > 8 * 3.0,
              "a 3 ms plan for each of 8 micro-batches: the leader's loop sets the step, above 8 x 3 ms")
    timelines = res["timelines"]
    check(len(timelines) == 2, "one timeline per scenario")
    for name, text in timelines.items():
        rows = stage_rows(text)
        check(len(rows) == 8, f"timeline {name!r} has pp = 8 stage rows")
        letters = set("".join(row.split("|")[1] for row in rows)) - {"."}
        want = {"A"} if name.endswith("m1 full") else set("ABCDEFGH")
        check(letters == want, f"timeline {name!r} shows micro-batches {sorted(want)} (got {sorted(letters)})")

    # The real 405B (126 layers: 16 x 6 + 15 x 2) and 70B at pp=2.
    r = by_mb(run_json(script, "--model", "llama3.1-405b", "--batch", "256")["results"])
    if set(r) == {1, 8}:
        check(r[1]["layers_per_stage"] == [16] * 6 + [15] * 2, "126 layers over 8 stages as parallel::stage_layers")
        check(abs(r[1]["bubble"] - 7 / 8) < 0.01, f"405B pp=8, 1 micro-batch: bubble {r[1]['bubble']:.4f} ~ 7/8")
        check(r[8]["bubble"] < 0.15, f"405B pp=8, 8 micro-batches: bubble {r[8]['bubble']:.4f} < 0.15")
        check(r[8]["tokens_per_s"] > r[1]["tokens_per_s"], "405B batch 256: micro-batches raise tokens/s")
        check(all(r[1]["crosses_node"]), "405B tp=8 pp=8: every stage boundary crosses nodes")
    r = by_mb(run_json(script, "--model", "llama3-70b", "--batch", "64")["results"])
    if set(r) == {1, 2}:
        check(abs(r[1]["bubble"] - 1 / 2) < 0.01, f"70B pp=2, 1 micro-batch: bubble {r[1]['bubble']:.4f} ~ 1/2")
        check(r[2]["bubble"] < 0.15, f"70B pp=2, 2 micro-batches: bubble {r[2]['bubble']:.4f} < 0.15")

    # A measured per-layer time replaces the roofline: a middle stage (no embedding, no LM head) is busy exactly its
    # layers x that time; with a constant time per layer, micro-batches cannot raise tokens/s.
    r = by_mb(run_json(script, "--model", "llama3.1-405b", "--layers", "128", "--batch", "64",
                       "--layer-us", "350")["results"])
    if set(r) == {1, 8}:
        check(abs(r[1]["stage_busy_ms"][3] - 16 * 0.350) < 1e-9, "--layer-us 350: stage 3 busy 16 x 350 us")
        check(r[8]["tokens_per_s"] <= r[1]["tokens_per_s"] * 1.0001,
              "--layer-us constant: micro-batches do not raise tokens/s")
    r = by_mb(run_json(script, "--model", "llama3.1-405b", "--layers", "128", "--batch", "64", "--micro-batches", "8",
                       "--layer-us", "4:100,16:200")["results"])
    if set(r) == {8}:
        want = 8 * 16 * (100 + (8 - 4) * 100 / 12) * 1e-3  # 8 micro-batches of 8: 133.3 us per layer, interpolated
        check(abs(r[8]["stage_busy_ms"][3] - want) < 1e-9,
              f"--layer-us 4:100,16:200: stage 3 busy {r[8]['stage_busy_ms'][3]:.4f} ms = 8 x 16 x 133.3 us")

    # The sliced send: between nodes it cuts the IB time per hop at large batches; inside a node it never pays.
    res = run_json(script, "--model", "llama3.1-405b", "--batch", "256", "--micro-batches", "1", "--send", "both")
    s = {x["send"]: x for x in res["results"]}
    if set(s) == {"full", "sliced"}:
        check(s["sliced"]["send_us_per_hop"][0] < s["full"]["send_us_per_hop"][0] / 2,
              "405B batch 256 between nodes: the sliced send takes under half the full one's time per hop")
        check(s["sliced"]["step_ms"] < s["full"]["step_ms"], "405B batch 256, 1 micro-batch: sliced shortens the step")
    res = run_json(script, "--model", "llama3-70b", "--tp", "4", "--batch", "16,256", "--send", "both")
    if res["results"]:
        check(not any(x["crosses_node"][0] for x in res["results"]), "70B tp=4 pp=2 stays in one node")
        by = {(x["batch"], x["micro_batches"], x["send"]): x for x in res["results"]}
        check(all(by[(b, m, "sliced")]["step_ms"] >= by[(b, m, "full")]["step_ms"] for b, m, _ in by),
              "inside one node the sliced send never shortens the step")

    # Errors: impossible layouts and micro-batch counts are refused with a message.
    p, _ = run(script, "--model", "llama3-70b", "--tp", "3", expect=2)
    check("tp=3" in p.stderr, "tp=3 for 64 heads is refused, naming tp")
    run(script, "--model", "llama3-70b", "--batch", "4", "--micro-batches", "8", expect=2)
    run(script, "--model", "llama3-70b", "--micro-batches", "0", expect=2)

    # Per-rank weights equal `tessera plan`'s (launcher/layout_plan.cpp), bf16 and fp8.
    if tessera:
        check(os.path.exists(tessera), f"tessera binary {tessera} exists")
        layouts = (("llama3-70b", "llama3-70b", 2, 2), ("llama3-405b", "llama3.1-405b", 8, 8))
        for preset, sim_model, nodes, pp in layouts:
            for dtype in ("bf16", "fp8"):
                q = subprocess.run([tessera, "plan", preset, "--nodes", str(nodes), "--tp", "8", "--pp", str(pp),
                                    "--dtype", dtype, "--json"], capture_output=True, text=True, timeout=60)
                check(q.returncode == 0, f"tessera plan {preset} --dtype {dtype} runs")
                if q.returncode != 0:
                    print(q.stderr)
                    continue
                plan = [st["weight_bytes"] for st in json.loads(q.stdout)["layouts"][0]["stages"]]
                r = run_json(script, "--model", sim_model, "--batch", "16", "--micro-batches", "1",
                             "--dtype", dtype)["results"]
                sim = r[0]["stage_weight_bytes"] if r else None
                check(sim == plan, f"{preset} tp=8 pp={pp} {dtype}: per-rank weights {sim} = tessera plan's {plan}")

    print(f"{len(failures)} failure(s)" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
