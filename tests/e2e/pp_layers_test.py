#!/usr/bin/env python3
"""--pp-layers (parallel.pp_layers) end to end, through the real binary (the errors are in layout_errors_test.py):
 1. generate on SmolLM2 at tp=1 pp=2 with --pp-layers 19,11 gives the greedy tokens transformers gave
    (tests/fixtures/smollm2/forward_golden.json), and the layout report shows ranks 0 and 1 on layers 0-18 and 19-29;
    `parallel: {pp: 2, pp_layers: auto}` in a config resolves to the same 19,11 (the LM head costs 8 layers) and the
    same tokens.
 2. tiny-qwen2 (4 layers, no tokenizer.json) at pp=2 with 1,3 gives transformers' ids; dummy:tiny at tp=2 pp=2 with
    3,1 gives the ids of tp=1 pp=1.
 3. bench reports the stages' ranges and decode costs (text and JSON) for --pp-layers auto, and with --stage-times
    each stage's own step time.
 4. inspect and plan take --pp-layers: per-rank layers from the partition, auto's split, counts that do not fit.

Usage: pp_layers_test.py TESSERA_BINARY MODEL_GGUF SOURCE_DIR (exit 77 when the model is absent: test_data.py)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

from test_data import missing_file_exit_code

TIMEOUT_S = 300
failures = []


def check(name, condition, detail=""):
    print(f"ok   {name}" if condition else f"FAIL {name}{': ' + str(detail) if detail else ''}")
    if not condition:
        failures.append(name)


def mpirun(np):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def run(cmd, np=None):
    full = (mpirun(np) if np else []) + cmd
    return subprocess.run(full, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))


def ids_of(stdout):
    found = re.findall(r"^ids:((?: \d+)+)$", stdout, re.M)
    return [int(x) for x in found[0].split()] if len(found) == 1 else None


def golden_match(case, ids):
    """Equal to transformers' tokens up to the first near tie (top-2 gap < 1e-4), as forward_golden_mpi_test.cpp."""
    if ids is None or len(ids) != len(case["generated_ids"]):
        return False
    for i, (got, want) in enumerate(zip(ids, case["generated_ids"])):
        if got != want:
            return case["step_top2_gap"][i] < 1e-4
    return True


def generate(binary, np, args):
    return run([binary, "generate"] + args + ["--ignore-eos", "--show-ids"], np)


def main():
    binary, model, source = sys.argv[1:4]
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    fixtures = os.path.join(source, "tests", "fixtures")
    with open(os.path.join(fixtures, "smollm2", "forward_golden.json")) as f:
        golden = json.load(f)["cases"]

    # 1. SmolLM2, 19,11 by flag and auto by config: transformers' tokens, and the ranges in the layout report.
    case = next(c for c in golden if c["name"] == "plain_story")
    prompt = ["--prompt-ids", " ".join(map(str, case["prompt_ids"])), "--max-tokens", str(len(case["generated_ids"]))]
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "auto.yaml")
        with open(config, "w") as f:
            f.write(f"model: {model}\nparallel:\n  tp: 1\n  pp: 2\n  pp_layers: auto\n")
        for how, args in (("--pp-layers 19,11", ["--model", model, "--pp", "2", "--pp-layers", "19,11"]),
                          ("parallel.pp_layers: auto", ["--config", config])):
            r = generate(binary, 2, args + prompt)
            ids = ids_of(r.stdout)
            check(f"smollm2 pp=2 {how}: exit 0", r.returncode == 0, r.stderr[-2000:])
            check(f"smollm2 pp=2 {how}: the layout is tp=1 pp=2 layers=19,11", "on 2 ranks, tp=1 pp=2 layers=19,11"
                  in r.stdout, r.stdout[:1500])
            check(f"smollm2 pp=2 {how}: rank 0 runs layers 0-18, rank 1 layers 19-29",
                  re.search(r"rank 0: stage 0 tp_rank 0, layers 0-18,", r.stdout) is not None and
                  re.search(r"rank 1: stage 1 tp_rank 0, layers 19-29,", r.stdout) is not None, r.stdout[:1500])
            check(f"smollm2 pp=2 {how}: transformers' greedy tokens", golden_match(case, ids),
                  (ids, case["generated_ids"]))

    # 2. Uneven splits of the tiny models.
    tiny_qwen2 = os.path.join(fixtures, "tiny-models", "tiny-qwen2")
    with open(os.path.join(tiny_qwen2, "golden.json")) as f:
        tiny_case = json.load(f)["cases"][0]
    r = generate(binary, 2, ["--model", tiny_qwen2, "--pp", "2", "--pp-layers", "1,3", "--prompt-ids",
                             " ".join(map(str, tiny_case["prompt"])), "--max-tokens", str(len(tiny_case["generated"]))])
    check("tiny-qwen2 pp=2 --pp-layers 1,3: transformers' ids", ids_of(r.stdout) == tiny_case["generated"],
          (ids_of(r.stdout), tiny_case["generated"], r.stderr[-1000:]))
    check("tiny-qwen2 pp=2 --pp-layers 1,3: rank 1 runs layers 1-3", "rank 1: stage 1 tp_rank 0, layers 1-3," in r.stdout,
          r.stdout[:1000])
    # A prompt without near-ties in its greedy path (dummy_generate_test.py's TIE_FREE_PROMPT says why it matters).
    tiny = ["--model", "dummy:tiny", "--prompt-ids", "2 7 1 8 2 8", "--max-tokens", "16"]
    reference = ids_of(generate(binary, 1, tiny).stdout)
    split = ids_of(generate(binary, 4, tiny + ["--tp", "2", "--pp", "2", "--pp-layers", "3,1"]).stdout)
    check("dummy:tiny tp=2 pp=2 --pp-layers 3,1: the ids of tp=1 pp=1", reference is not None and split == reference,
          (split, reference))

    # 3. bench: the stages of auto, in text and JSON.
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        r = run([binary, "bench", "--model", "dummy:smollm2-135m", "--pp", "2", "--pp-layers", "auto", "--batch", "2",
                 "--prompt-len", "4", "--gen-len", "3", "--no-warmup", "--stage-times", "--json", out], 2)
        check("bench --pp-layers auto: exit 0", r.returncode == 0, r.stderr[-2000:])
        check("bench --pp-layers auto: the layout and the stages' costs",
              "(tp=1 pp=2 layers=19,11, 2 micro-batches in flight)" in r.stdout
              and "0: layers 0-18 19.0; 1: layers 19-29 + head 19.0;" in r.stdout,
              r.stdout[:1500])
        stages = json.load(open(out))["stages"] if r.returncode == 0 else []
        check("bench --json: stages", [(s["layers"]["begin"], s["layers"]["end"]) for s in stages] == [(0, 19), (19, 30)]
              and stages[0]["decode_cost_weights"] == stages[1]["decode_cost_weights"] == 19 * 3538944, stages)
        check("bench --stage-times: each stage's step, the head on the last only",
              "stage step ms (--stage-times" in r.stdout and len(stages) == 2 and
              all(s["step_ms"]["layers"] > 0 and s["step_ms"]["total"] > 0 for s in stages) and
              stages[0]["step_ms"]["head"] == 0 and stages[1]["step_ms"]["head"] > 0 and
              stages[1]["step_ms"]["embed"] == 0, stages)

    # 4. inspect and plan.
    r = run([binary, "inspect", model, "--tp", "3", "--pp", "2", "--pp-layers", "auto", "--json"])
    layout = json.loads(r.stdout)["layout"] if r.returncode == 0 else {}
    check("inspect --pp-layers auto: 19,11 and each rank's layers", layout.get("pp_layers") == [19, 11] and
          [(x["layers"]["begin"], x["layers"]["end"]) for x in layout.get("ranks", [])] == [(0, 19)] * 3 + [(19, 30)] * 3,
          r.stdout[:1500] + r.stderr)
    r = run([binary, "inspect", model, "--pp", "2", "--pp-layers", "20,10"])
    check("inspect --pp-layers 20,10: text", r.returncode == 0 and "layout tp=1 pp=2 layers=20,10" in r.stdout and
          re.search(r"^\s+1\s+1\s+0\s+20-29\s", r.stdout, re.M) is not None, r.stdout[-1500:])
    r = run([binary, "inspect", model, "--pp", "2", "--pp-layers", "20,11"])
    check("inspect --pp-layers 20,11: an invalid layout (exit 2) naming the sum",
          r.returncode == 2 and "--pp-layers 20,11: the counts sum to 31 layers but the model has 30" in r.stderr,
          (r.returncode, r.stderr))
    two_nodes = ["--nodes", "2", "--gpus-per-node", "8"]
    r = run([binary, "plan", "llama3-70b", "--tp", "8", "--pp", "2", "--pp-layers", "auto", "--json"] + two_nodes)
    plan = json.loads(r.stdout)["layouts"][0] if r.stdout.strip() else {}
    check("plan --pp-layers auto: llama3-70b at tp=8 pp=2 is 41,39", plan.get("pp_layers") == [41, 39] and
          [s["layers"] for s in plan.get("stages", [])] == [41, 39], plan)
    r = run([binary, "plan", "llama3-70b", "--tp", "8", "--pp", "2", "--pp-layers", "40,41", "--json"] + two_nodes)
    plan = json.loads(r.stdout)["layouts"][0] if r.stdout.strip() else {}
    check("plan --pp-layers 40,41: invalid, naming the sum", not plan.get("valid", True) and
          "the counts sum to 81 layers but the model has 80" in plan.get("invalid_reason", ""), plan)
    r = run([binary, "plan", "llama3-70b", "--pp-layers", "41,39"])
    check("plan --pp-layers counts without --tp/--pp: an error", r.returncode == 1 and "needs --tp and --pp" in r.stderr,
          r.stderr)
    r = run([binary, "plan", "llama3-70b", "--pp-layers", "auto", "--json"] + two_nodes)
    layouts = json.loads(r.stdout)["layouts"] if r.stdout.strip() else []
    check("plan --pp-layers auto: every candidate with pp > 1 balanced", len(layouts) > 3 and all(
        sum(x.get("pp_layers", [80])) == 80 and len(x.get("pp_layers", [0] * x["pp"])) == x["pp"] for x in layouts),
        layouts[:3])

    print(f"{'PASS' if not failures else f'FAIL: {len(failures)} check(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
