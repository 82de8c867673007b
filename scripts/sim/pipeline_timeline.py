#!/usr/bin/env python3
"""Discrete-event simulation of decode steps through a tensor (tp) x pipeline (pp) parallel layout (issue 13).

Every micro-batch of a decode step goes: the leader builds its StepPlan and broadcasts it, stage 0 runs its layers,
the hidden states cross to stage 1 (InfiniBand between nodes), ..., the last stage runs the LM head, all-gathers the
logits and samples, and the sampled ids return to the leader, which plans the micro-batch's next step. Stages and
links are FIFO servers; a stage is busy while its GPUs compute (GEMMs, attention, its TP collectives, the LM head,
sampling) and idle while it waits for hidden states or a plan. Bubble = idle stage-time / total stage-time in the
steady state. Micro-batches 1 is `--micro-batches 1` (one step at a time: every other stage idles); m micro-batches split
the batch into m groups that are in flight at once (m = pp fills a balanced pipeline).

The per-layer times are NOT measured: they come from the roofline (bytes over achieved HBM bandwidth, FLOPs over
achieved tensor-core rate) with the efficiency factors below and published link bandwidths. `--layer-us` replaces
them with measured per-layer times. Standard library only; deterministic. `--help` lists every assumption's flag.
"""
import argparse
import json
import math
import struct
import sys
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Model:
    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int

    @property
    def head_dim(self):
        return self.hidden // self.heads


# The published configurations (also runtime/model/model_presets.cpp); both have untied embeddings.
MODELS = {
    # https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json
    "llama3-70b": Model("Llama-3-70B", layers=80, hidden=8192, intermediate=28672, heads=64, kv_heads=8, vocab=128256),
    # https://huggingface.co/meta-llama/Llama-3.1-405B/blob/main/config.json
    "llama3.1-405b": Model("Llama-3.1-405B", layers=126, hidden=16384, intermediate=53248, heads=128, kv_heads=8,
                           vocab=128256),
}
DEFAULT_PP = {"llama3-70b": 2, "llama3.1-405b": 8}

# The scenarios of issue 13: (model, tp, pp).
STANDARD_LAYOUTS = [("llama3-70b", 8, 2), ("llama3.1-405b", 8, 8)]
STANDARD_BATCHES = [16, 64, 256]

DTYPE_BYTES = {"bf16": 2, "fp8": 1}
ACT_BYTES = 2        # bf16 hidden states (TP all-reduces, stage-to-stage sends)
EMBED_BYTES = 2      # embedding, LM head and norms stay bf16 at any weight dtype (as launcher/layout_plan.cpp)
LOGIT_BYTES = 4      # fp32 logits, all-gathered over the TP group for sampling (ARCHITECTURE.md, "Sampling")
# StepPlan on the wire (parallel/step_plan_delta.h, the delta control plane): a decode step costs ~8 bytes per
# sequence (id, flags, position, one token as varints; a block id every block_size steps) plus a small header, as
# measured by build/benchmarks/tessera_bench_plan (docs/PERFORMANCE.md, "Control plane": 512 B at 64 sequences).
PLAN_HEADER_BYTES = 32
PLAN_SEQ_BYTES = 8
# StepPlanChannel (parallel/step_plan_channel.h) broadcasts one fixed frame per plan, and the rest in a second.
PLAN_FRAME_BYTES = 8192
# StepOutput wire format (runtime/engine/step_output.cpp), no logprobs: header, then id, sampled, token, flag, count.
OUTPUT_HEADER_BYTES = struct.calcsize("<II")
OUTPUT_SEQ_BYTES = struct.calcsize("<QBiBI")


@dataclass(frozen=True)
class Hardware:
    """H100 SXM nodes of 8 GPUs on NVSwitch with one 400 Gb/s NDR NIC per GPU. Peaks are published numbers; the
    *_eff factors (what good engines reach) and the latencies are assumptions, each a flag."""
    hbm_tbps: float = 3.35          # H100 SXM5 HBM3, NVIDIA datasheet
    bf16_tflops: float = 989.0      # dense bf16 tensor cores, datasheet (1979 is with sparsity)
    fp8_tflops: float = 1979.0      # dense fp8, datasheet; used for the GEMMs when weights are fp8 (W8A8)
    nvlink_gbps: float = 450.0      # NVLink 4: 900 GB/s per GPU both directions, 450 per direction, via NVSwitch
    ib_gbps: float = 50.0           # 400 Gb/s InfiniBand NDR per GPU (ConnectX-7, one per GPU as in DGX H100)
    gpus_per_node: int = 8
    gpu_memory_gib: float = 80.0
    hbm_eff: float = 0.7            # decode GEMMs and paged attention stream weights / KV at 70% of peak HBM
    compute_eff: float = 0.6        # skinny decode GEMMs reach less of the tensor-core peak than square ones
    nvlink_eff: float = 0.8         # ring all-reduce bus bandwidth ~360 of 450 GB/s
    ib_eff: float = 0.9             # ~45 of 50 GB/s on a large send
    nvlink_latency_us: float = 5.0  # one NCCL collective (or p2p) launch + sync inside a node, small message
    ib_latency_us: float = 10.0     # one NCCL send/recv between nodes: kernel, proxy thread, NIC, wire
    ctrl_latency_us: float = 3.0    # one host MPI message over IB (the plan, the sampled ids): UCX verbs
    plan_us: float = 30.0           # the leader's scheduler building and encoding one plan (CPU)
    sample_fixed_us: float = 10.0   # sampling kernel launch; plus two passes over the logits at achieved HBM rate


@dataclass(frozen=True)
class Scenario:
    model: Model
    tp: int
    pp: int
    batch: int
    micro_batches: int
    context: int = 4096
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    send: str = "full"              # full: every TP rank sends [b, hidden]; sliced: 1/tp each + all-gather on arrival
    block_size: int = 16            # KV block size (Tessera's default), for the plan's block tables
    layer_us: tuple = ()            # measured per-layer times: ((micro-batch size, us), ...); empty: roofline


# ---------------------------------------------------------------------------------------------------------------
# Cost model: seconds of one piece of work on one rank (every rank of a TP group does the same at the same time).

def stage_layers(num_layers, pp, stage):
    """parallel::stage_layers: contiguous ranges, the first num_layers % pp stages take one more."""
    base, extra = divmod(num_layers, pp)
    return base + (1 if stage < extra else 0)


def local_kv_heads(m, tp):
    return m.kv_heads // tp if m.kv_heads >= tp else 1  # replicated when tp > kv heads


def layer_matrix_elems(m, tp):
    q_local = m.heads // tp * m.head_dim
    kv_local = local_kv_heads(m, tp) * m.head_dim
    return m.hidden * q_local + 2 * m.hidden * kv_local + q_local * m.hidden + 3 * m.hidden * m.intermediate // tp


def layer_weight_bytes(m, tp, dtype):
    return layer_matrix_elems(m, tp) * DTYPE_BYTES[dtype] + 2 * m.hidden * EMBED_BYTES  # + two RMSNorm weights


def vocab_local(m, tp):
    return -(-m.vocab // tp)


def stage_weight_bytes(sc, stage):
    """What one rank of the stage holds (the same sum as launcher/layout_plan.cpp, i.e. `tessera plan`)."""
    m = sc.model
    w = stage_layers(m.layers, sc.pp, stage) * layer_weight_bytes(m, sc.tp, sc.dtype)
    if stage == 0:
        w += vocab_local(m, sc.tp) * m.hidden * EMBED_BYTES
    if stage == sc.pp - 1:
        w += vocab_local(m, sc.tp) * m.hidden * EMBED_BYTES + m.hidden * EMBED_BYTES
    return w


def kv_bytes_per_token_layer(sc):
    return 2 * local_kv_heads(sc.model, sc.tp) * sc.model.head_dim * DTYPE_BYTES[sc.kv_dtype]


def all_reduce_s(hw, nbytes, n):
    """Ring all-reduce inside a node: one launch latency + 2(n-1)/n of the data over each NVLink."""
    if n <= 1:
        return 0.0
    return hw.nvlink_latency_us * 1e-6 + 2 * (n - 1) / n * nbytes / (hw.nvlink_gbps * hw.nvlink_eff * 1e9)


def all_gather_s(hw, shard_bytes, n):
    if n <= 1:
        return 0.0
    return hw.nvlink_latency_us * 1e-6 + (n - 1) * shard_bytes / (hw.nvlink_gbps * hw.nvlink_eff * 1e9)


def hbm_s(hw, nbytes):
    return nbytes / (hw.hbm_tbps * hw.hbm_eff * 1e12)


def flops_s(hw, flops, dtype):
    peak = hw.fp8_tflops if dtype == "fp8" else hw.bf16_tflops
    return flops / (peak * hw.compute_eff * 1e12)


def interpolate(points, x):
    """Piecewise-linear through (x, y) points, extended linearly past the ends; a single point is a constant."""
    pts = sorted(points)
    if len(pts) == 1:
        return pts[0][1]
    i = next((i for i in range(1, len(pts) - 1) if x <= pts[i][0]), len(pts) - 1)  # the segment holding x
    (x0, y0), (x1, y1) = pts[i - 1], pts[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def layer_parts(hw, sc, b):
    """One decoder layer for a micro-batch of b sequences on one rank: {part: seconds}."""
    m = sc.model
    if sc.layer_us:
        return {"layer (measured)": interpolate(sc.layer_us, b) * 1e-6}
    gemm = max(hbm_s(hw, layer_weight_bytes(m, sc.tp, sc.dtype)),
               flops_s(hw, 2.0 * layer_matrix_elems(m, sc.tp) * b, sc.dtype))
    # Attention reads every cached K and V of every sequence once (memory bound: ~8 FLOPs per byte with GQA's 8
    # query heads per KV head, far under the H100's ~300 FLOPs/byte ridge, so its FLOPs are not counted).
    kv = hbm_s(hw, b * sc.context * kv_bytes_per_token_layer(sc))
    ar = 2 * all_reduce_s(hw, b * m.hidden * ACT_BYTES, sc.tp)  # after attention and after the MLP
    return {"weights/GEMM": gemm, "KV read": kv, "TP all-reduce": ar}


def crosses_node(hw, sc, stage):
    """Does the send from `stage` to `stage + 1` leave the node (rank = stage * tp + tp_rank)?"""
    last_rank, next_rank = (stage + 1) * sc.tp - 1, (stage + 1) * sc.tp
    return last_rank // hw.gpus_per_node != next_rank // hw.gpus_per_node


def transfer_parts(hw, sc, stage, b):
    """The hidden states of b sequences from `stage` to `stage + 1`: (link seconds, receiver all-gather seconds).
    Every TP rank sends to the same tp_rank of the next stage, all in parallel, each over its own NIC (or NVLink)."""
    full = b * sc.model.hidden * ACT_BYTES
    if crosses_node(hw, sc, stage):
        lat, bw = hw.ib_latency_us * 1e-6, hw.ib_gbps * hw.ib_eff * 1e9
    else:
        lat, bw = hw.nvlink_latency_us * 1e-6, hw.nvlink_gbps * hw.nvlink_eff * 1e9
    if sc.send == "full":
        return lat + full / bw, 0.0
    shard = full / sc.tp
    return lat + shard / bw, all_gather_s(hw, shard, sc.tp)


def stage_parts(hw, sc, stage, b):
    """What stage `stage` computes for a micro-batch of b sequences: {part: seconds} (its busy time)."""
    m = sc.model
    parts = {}
    if stage == 0:  # vocab-parallel embedding lookup (a few KB read) completed by an all-reduce
        parts["embedding all-reduce"] = all_reduce_s(hw, b * m.hidden * ACT_BYTES, sc.tp)
    elif sc.send == "sliced":
        parts["receive all-gather"] = transfer_parts(hw, sc, stage - 1, b)[1]
    n = stage_layers(m.layers, sc.pp, stage)
    for k, v in layer_parts(hw, sc, b).items():
        parts[k] = n * v
    if stage == sc.pp - 1:
        vl = vocab_local(m, sc.tp)
        parts["LM head"] = max(hbm_s(hw, vl * m.hidden * EMBED_BYTES), flops_s(hw, 2.0 * vl * m.hidden * b, "bf16"))
        parts["logits all-gather"] = all_gather_s(hw, b * vl * LOGIT_BYTES, sc.tp)
        parts["sampling"] = hw.sample_fixed_us * 1e-6 + hbm_s(hw, 2 * b * m.vocab * LOGIT_BYTES)
    return parts


def plan_bytes(sc, seqs):
    return PLAN_HEADER_BYTES + seqs * PLAN_SEQ_BYTES


def ctrl_message_s(hw, nbytes):
    return hw.ctrl_latency_us * 1e-6 + nbytes / (hw.ib_gbps * hw.ib_eff * 1e9)


def plan_broadcast_s(hw, sc, seqs):
    """StepPlanChannel: one broadcast of a fixed frame over the world (a second for what does not fit), a binomial
    tree of ceil(log2(world)) rounds; every round priced as a host message over IB (conservative inside a node)."""
    world = sc.tp * sc.pp
    rounds = math.ceil(math.log2(world)) if world > 1 else 0
    nbytes = plan_bytes(sc, seqs)
    per_round = ctrl_message_s(hw, PLAN_FRAME_BYTES)
    if nbytes > PLAN_FRAME_BYTES - 8:
        per_round += ctrl_message_s(hw, nbytes - (PLAN_FRAME_BYTES - 8))
    return rounds * per_round


def ids_return_s(hw, sc, seqs):
    """The sampling rank (last stage, tp_rank 0) sends the step's outputs to the leader (rank 0)."""
    if sc.pp == 1:
        return 0.0
    return ctrl_message_s(hw, OUTPUT_HEADER_BYTES + seqs * OUTPUT_SEQ_BYTES)


def micro_batch_sizes(batch, m):
    base, extra = divmod(batch, m)
    return [base + (1 if k < extra else 0) for k in range(m)]


def gpu_memory_bytes(sc):
    """Fullest GPU: its weights + the KV cache of `batch` sequences of `context` tokens (activations not counted)."""
    return max(stage_weight_bytes(sc, s) + sc.batch * sc.context * stage_layers(sc.model.layers, sc.pp, s)
               * kv_bytes_per_token_layer(sc) for s in range(sc.pp))


# ---------------------------------------------------------------------------------------------------------------
# The simulation. Resources: the leader's CPU (plans), each stage (its TP group's GPUs), each stage-to-stage link.
# Each serves micro-batches in the order (round, micro-batch), which the dependencies force anyway, so the event
# times follow from one pass in that order: start = max(resource free, inputs ready).

def simulate(hw, sc, rounds):
    mb = micro_batch_sizes(sc.batch, sc.micro_batches)
    if min(mb) < 1:
        raise ValueError(f"{sc.micro_batches} micro-batches need a batch of at least as many sequences")
    busy = [[sum(stage_parts(hw, sc, s, b).values()) for b in mb] for s in range(sc.pp)]
    xfer = [[transfer_parts(hw, sc, s, b)[0] for b in mb] for s in range(sc.pp - 1)]
    events = []  # (resource, micro-batch, round, start, end, kind)
    ids_ready = [0.0] * len(mb)
    leader_free = 0.0
    stage_free = [0.0] * sc.pp
    link_free = [0.0] * (sc.pp - 1)
    for r in range(rounds):
        for k, b in enumerate(mb):
            p0 = max(ids_ready[k], leader_free)
            leader_free = p0 + hw.plan_us * 1e-6
            plan_ready = leader_free + plan_broadcast_s(hw, sc, b)
            events.append(("ctrl", k, r, p0, plan_ready, "plan"))
            ready = plan_ready
            for s in range(sc.pp):
                start = max(ready, stage_free[s], plan_ready)
                stage_free[s] = start + busy[s][k]
                events.append((f"stage {s}", k, r, start, stage_free[s], "compute"))
                if s + 1 < sc.pp:
                    t0 = max(stage_free[s], link_free[s])
                    link_free[s] = t0 + xfer[s][k]
                    events.append((f"link {s}", k, r, t0, link_free[s], "send"))
                    ready = link_free[s]
            ids_ready[k] = stage_free[-1] + ids_return_s(hw, sc, b)
            events.append(("ctrl", k, r, stage_free[-1], ids_ready[k], "ids"))
    return events, busy


def steady_state(hw, sc, rounds=12):
    """Step time (every sequence gets one token; = time per output token), tokens/s and the bubble in the steady
    state: simulate `rounds` steps, doubled until the last 4 steps took as long as the 4 before them (a start with
    idle stages can leave slack that takes many steps to be used up)."""
    window = 4
    while True:
        events, busy = simulate(hw, sc, max(rounds, 3 * window))
        starts = [e[3] for e in events if e[0] == "stage 0" and e[1] == 0]
        last, before = starts[-1] - starts[-1 - window], starts[-1 - window] - starts[-1 - 2 * window]
        if abs(last - before) <= 1e-9 * last:
            break
        if rounds >= 4096:
            raise RuntimeError(f"no steady state after {rounds} steps: the last {window} took {last:.6g} s, the "
                               f"{window} before {before:.6g} s")
        rounds *= 2
    step = last / window
    stage_busy = [sum(row) for row in busy]  # per step, every stage runs every micro-batch once
    bubble = max(0.0, 1.0 - sum(stage_busy) / (sc.pp * step))  # max: float rounding when never idle
    # What sets the step: a stage busy all the time, or else the loop of a micro-batch (its stages, sends, the ids'
    # return, the next plan and its broadcast), which the first stage then waits for.
    busiest = max(range(sc.pp), key=lambda s: stage_busy[s])
    bound = f"stage {busiest}" if stage_busy[busiest] >= step * (1 - 1e-9) else "loop"
    return {"step_s": step, "tokens_per_s": sc.batch / step, "bubble": bubble, "stage_busy_s": stage_busy,
            "bound_by": bound}, events


def breakdown(hw, sc):
    """One step of one micro-batch on the critical path, part by part (with micro-batches 1 these add up to the
    step time exactly)."""
    b = sc.batch if sc.micro_batches == 1 else micro_batch_sizes(sc.batch, sc.micro_batches)[0]
    out = {"plan (leader CPU)": hw.plan_us * 1e-6, "plan broadcast": plan_broadcast_s(hw, sc, b)}
    for s in range(sc.pp):
        for k, v in stage_parts(hw, sc, s, b).items():
            out[k] = out.get(k, 0.0) + v
        if s + 1 < sc.pp:
            key = "IB sends" if crosses_node(hw, sc, s) else "NVLink sends"
            out[key] = out.get(key, 0.0) + transfer_parts(hw, sc, s, b)[0]
    out["ids return"] = ids_return_s(hw, sc, b)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Output.

def ascii_timeline(sc, events, width=100, rounds=3, links=True):
    """Stages as rows (a letter per micro-batch: A, B, ...; '.' idle), with the link after each stage (lowercase
    letter while it carries that micro-batch) and the control plane (p: plan built and broadcast, r: ids return).
    Link and control marks show activity of any length in a column, so they can look longer than they are."""
    shown = [e for e in events if e[2] < rounds]
    t_end = max(e[4] for e in shown)
    dt = t_end / width
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def row(resource, mark_any):
        evs = [e for e in shown if e[0] == resource]
        cells = []
        for c in range(width):
            lo, hi = c * dt, (c + 1) * dt
            best, best_ov = None, -1.0
            for e in evs:
                touches = e[3] < hi and (e[4] > lo or (e[4] == e[3] and e[3] >= lo))
                ov = min(hi, e[4]) - max(lo, e[3])
                if touches and ov > best_ov:
                    best, best_ov = e, ov
            if best is None or (not mark_any and best_ov < dt / 2):
                cells.append(" " if mark_any else ".")
            elif resource == "ctrl":
                cells.append("p" if best[5] == "plan" else "r")
            else:
                letter = letters[best[1] % 26]
                cells.append(letter.lower() if mark_any else letter)
        return "".join(cells)

    lines = [f"{sc.model.name} tp={sc.tp} pp={sc.pp}, batch {sc.batch}, {sc.micro_batches} micro-batch(es), "
             f"{rounds} steps; 1 column = {dt * 1e3:.3f} ms"]
    label_w = 9
    for s in range(sc.pp):
        lines.append(f"{'stage ' + str(s):<{label_w}}|{row(f'stage {s}', False)}|")
        if s + 1 < sc.pp and links:
            lines.append(f"{'  ' + str(s) + '>' + str(s + 1):<{label_w}}|{row(f'link {s}', True)}|")
    lines.append(f"{'ctrl':<{label_w}}|{row('ctrl', True)}|")
    ticks = [" "] * (width + 1)
    for c in range(0, width + 1, 20):
        label = f"{c * dt * 1e3:.0f} ms" if c else "0"
        if c + len(label) <= width + 1:
            ticks[c:c + len(label)] = label
    lines.append(" " * (label_w + 1) + "".join(ticks).rstrip())
    return "\n".join(lines)


def result_row(hw, sc, rounds):
    res, _ = steady_state(hw, sc, rounds)
    mb = micro_batch_sizes(sc.batch, sc.micro_batches)
    return {
        "model": sc.model.name, "tp": sc.tp, "pp": sc.pp, "batch": sc.batch, "micro_batches": sc.micro_batches,
        "micro_batch_size": mb[0], "dtype": sc.dtype, "kv_dtype": sc.kv_dtype, "context": sc.context,
        "send": sc.send, "step_ms": res["step_s"] * 1e3, "tokens_per_s": res["tokens_per_s"],
        "bubble": res["bubble"], "bound_by": res["bound_by"], "stage_busy_ms": [t * 1e3 for t in res["stage_busy_s"]],
        "stage_ms_per_micro_batch": [sum(stage_parts(hw, sc, s, mb[0]).values()) * 1e3 for s in range(sc.pp)],
        "layers_per_stage": [stage_layers(sc.model.layers, sc.pp, s) for s in range(sc.pp)],
        "stage_weight_bytes": [stage_weight_bytes(sc, s) for s in range(sc.pp)],
        "send_us_per_hop": [sum(p) * 1e6 for p in (transfer_parts(hw, sc, s, mb[0]) for s in range(sc.pp - 1))],
        "crosses_node": [crosses_node(hw, sc, s) for s in range(sc.pp - 1)],
        "plan_bytes": plan_bytes(sc, mb[0]),
        "gpu_memory_gib": gpu_memory_bytes(sc) / 2**30,
        "fits": gpu_memory_bytes(sc) <= hw.gpu_memory_gib * 2**30,
        "layer_times": "measured (--layer-us)" if sc.layer_us else "roofline",
    }


def markdown_table(rows):
    base = {}
    for r in rows:
        if r["micro_batches"] == 1:
            base[(r["model"], r["tp"], r["pp"], r["batch"], r["send"])] = r["tokens_per_s"]
    out = ["| model | tp x pp | batch | micro-batches (size) | step ms | tokens/s | vs 1 micro-batch | bubble | "
           "step set by | plan KB / micro-batch | send us / hop | GiB / GPU |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        b0 = base.get((r["model"], r["tp"], r["pp"], r["batch"], r["send"]))
        vs = f"{r['tokens_per_s'] / b0:.2f}x" if b0 else "-"
        hop = f"{max(r['send_us_per_hop']):.0f}" if r["send_us_per_hop"] else "-"
        out.append(f"| {r['model']} | {r['tp']} x {r['pp']} | {r['batch']} | {r['micro_batches']} "
                   f"({r['micro_batch_size']}) | {r['step_ms']:.2f} | {r['tokens_per_s']:.0f} | {vs} | "
                   f"{100 * r['bubble']:.1f}% | {r['bound_by']} | {r['plan_bytes'] / 1000:.1f} | {hop} | "
                   f"{r['gpu_memory_gib']:.1f}{'' if r['fits'] else ' (does not fit)'} |")
    return "\n".join(out)


def send_table(hw, base_sc, layouts, batches, rounds):
    out = ["| model | tp x pp | stage link | batch | micro-batches | send us/hop: full / sliced | "
           "step ms: full / sliced | sliced pays |",
           "|---|---|---|---:|---:|---:|---:|---|"]
    for name, tp, pp in layouts:
        for b in batches:
            for m in sorted({1, pp}):
                r = {}
                for send in ("full", "sliced"):
                    sc = replace(base_sc, model=MODELS[name], tp=tp, pp=pp, batch=b, micro_batches=m, send=send)
                    r[send] = result_row(hw, sc, rounds)
                link = "IB (inter-node)" if r["full"]["crosses_node"][0] else "NVLink (one node)"
                f, s = r["full"], r["sliced"]
                out.append(f"| {f['model']} | {tp} x {pp} | {link} | {b} | {m} | {f['send_us_per_hop'][0]:.1f} / "
                           f"{s['send_us_per_hop'][0]:.1f} | {f['step_ms']:.3f} / {s['step_ms']:.3f} | "
                           f"{'yes' if s['step_ms'] < f['step_ms'] else 'no'} |")
    return "\n".join(out)


def breakdown_table(hw, scenarios):
    cols = ["plan (leader CPU)", "plan broadcast", "embedding all-reduce", "weights/GEMM", "KV read",
            "TP all-reduce", "layer (measured)", "LM head", "logits all-gather", "sampling", "IB sends",
            "NVLink sends", "receive all-gather", "ids return"]
    parts = [breakdown(hw, sc) for sc in scenarios]
    cols = [c for c in cols if any(c in p for p in parts)]
    out = ["| model | batch | " + " | ".join(cols) + " | step ms |", "|---|---:|" + "---:|" * (len(cols) + 1)]
    for sc, p in zip(scenarios, parts):
        out.append(f"| {sc.model.name} tp{sc.tp} pp{sc.pp} | {sc.batch} | "
                   + " | ".join(f"{p.get(c, 0.0) * 1e3:.3f}" for c in cols) + f" | {sum(p.values()) * 1e3:.3f} |")
    return "\n".join(out)


def assumptions_text(hw, sc):
    lat = (f"latencies: NVLink collective {hw.nvlink_latency_us:g} us, IB send {hw.ib_latency_us:g} us, "
           f"control message {hw.ctrl_latency_us:g} us, plan build {hw.plan_us:g} us, "
           f"sampling {hw.sample_fixed_us:g} us + 2 passes over the logits")
    return "\n".join([
        f"H100 SXM: HBM {hw.hbm_tbps:g} TB/s x {hw.hbm_eff:g}, bf16 {hw.bf16_tflops:g} / fp8 {hw.fp8_tflops:g} "
        f"TFLOP/s dense x {hw.compute_eff:g}, NVLink {hw.nvlink_gbps:g} GB/s x {hw.nvlink_eff:g}, "
        f"IB {hw.ib_gbps:g} GB/s x {hw.ib_eff:g} per GPU, {hw.gpus_per_node} GPUs per node",
        lat,
        f"weights {sc.dtype}, KV cache {sc.kv_dtype}, context {sc.context} tokens per sequence, "
        f"stage-to-stage send: {sc.send}; per-layer times: "
        + ("measured (--layer-us " + ",".join(f"{b:g}:{u:g}" for b, u in sc.layer_us) + ")" if sc.layer_us
           else "roofline (not measured)"),
    ])


def parse_layer_us(text):
    if not text:
        return ()
    points = []
    for item in text.split(","):
        if ":" in item:
            b, us = item.split(":")
            points.append((float(b), float(us)))
        else:
            points.append((1.0, float(item)))
    if len({b for b, _ in points}) != len(points):
        raise argparse.ArgumentTypeError("--layer-us: one time per micro-batch size")
    return tuple(points)


def main(argv=None):
    hw0 = Hardware()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Without --model: the standard report (Llama-3-70B at tp=8 pp=2 and Llama-3.1-405B at tp=8 pp=8; "
               "batches 16, 64, 256; 1 and pp micro-batches; send variants; step breakdown; timelines), as written "
               "in docs/ARCHITECTURE.md. Example of one scenario with its timeline: "
               "pipeline_timeline.py --model llama3.1-405b --batch 64 --micro-batches 1,pp --timeline")
    g = p.add_argument_group("scenario")
    g.add_argument("--model", choices=sorted(MODELS), help="one model (default: the standard report)")
    g.add_argument("--layers", type=int, help="override the model's layer count (what-if; e.g. balanced stages)")
    g.add_argument("--tp", type=int, help="tensor-parallel size (default 8)")
    g.add_argument("--pp", type=int, help="pipeline stages (default: 2 for 70B, 8 for 405B)")
    g.add_argument("--batch", default="16,64,256", help="concurrent sequences, comma-separated (default 16,64,256)")
    g.add_argument("--micro-batches", default="1,pp",
                   help="micro-batches in flight, comma-separated; 'pp' = the stage count (default 1,pp)")
    g.add_argument("--context", type=int, default=4096, help="tokens in each sequence's KV cache (default 4096)")
    g.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="bf16",
                   help="layer weights: bf16 (2 bytes, bf16 GEMMs) or fp8 (1 byte, fp8 GEMMs); default bf16")
    g.add_argument("--kv-dtype", choices=sorted(DTYPE_BYTES), default="bf16", help="KV cache (default bf16)")
    g.add_argument("--send", choices=["full", "sliced", "both"], default="full",
                   help="stage-to-stage send: full hidden states from every TP rank (--pp-transfer full), sliced (1/tp "
                        "each, all-gathered over NVLink on arrival), or both (default full)")
    g.add_argument("--block-size", type=int, default=16, help="KV block size, for the plan's block tables (16)")
    g.add_argument("--layer-us", type=parse_layer_us, default=(),
                   help="measured per-layer decode time on one rank, us, including its two TP all-reduces, as "
                        "'SIZE:US,SIZE:US' by micro-batch size (linear in between and beyond; one plain number = "
                        "any size); replaces the roofline for the layers (context is then in the measurement)")
    h = p.add_argument_group("hardware (published peaks; the efficiencies and latencies are assumptions)")
    for field, helptext in [
        ("hbm_tbps", "HBM bandwidth, TB/s"), ("bf16_tflops", "dense bf16 TFLOP/s"),
        ("fp8_tflops", "dense fp8 TFLOP/s"), ("nvlink_gbps", "NVLink GB/s per GPU per direction"),
        ("ib_gbps", "InfiniBand GB/s per GPU per direction"), ("gpus_per_node", "GPUs per node"),
        ("gpu_memory_gib", "GPU memory, GiB (the fits check)"),
        ("hbm_eff", "achieved fraction of HBM bandwidth (weights, KV)"),
        ("compute_eff", "achieved fraction of tensor-core peak"), ("nvlink_eff", "achieved fraction of NVLink"),
        ("ib_eff", "achieved fraction of IB"), ("nvlink_latency_us", "one NVLink collective or send, us"),
        ("ib_latency_us", "one IB send/recv between GPUs, us"),
        ("ctrl_latency_us", "one host MPI message (plan, ids), us"), ("plan_us", "leader's time to build a plan, us"),
        ("sample_fixed_us", "sampling launch, us (plus two passes over the logits)")]:
        default = getattr(hw0, field)
        h.add_argument("--" + field.replace("_", "-"), type=type(default), default=default,
                       help=f"{helptext} (default {default:g})")
    o = p.add_argument_group("output")
    o.add_argument("--timeline", action="store_true", help="print an ASCII timeline of each scenario")
    o.add_argument("--no-links", action="store_true", help="timelines without the stage-to-stage link rows")
    o.add_argument("--timeline-steps", type=int, default=3, help="steps shown in a timeline (default 3)")
    o.add_argument("--width", type=int, default=100, help="timeline columns (default 100)")
    o.add_argument("--rounds", type=int, default=12, help="steps simulated at first, doubled until the step time is steady (default 12)")
    o.add_argument("--json", action="store_true", help="print the results (and timelines) as JSON")
    a = p.parse_args(argv)

    hw = Hardware(**{f: getattr(a, f) for f in hw0.__dataclass_fields__})
    try:
        batches = [int(x) for x in a.batch.split(",")]
    except ValueError:
        p.error(f"--batch: comma-separated integers, got {a.batch!r}")
    if a.model:
        model = MODELS[a.model]
        if a.layers:
            model = replace(model, layers=a.layers, name=f"{model.name} ({a.layers} layers)")
        layouts = [(model, a.tp or 8, a.pp or DEFAULT_PP[a.model])]
    else:
        if a.layers or a.pp or a.tp:
            p.error("--layers, --tp and --pp need --model")
        layouts = [(MODELS[n], tp, pp) for n, tp, pp in STANDARD_LAYOUTS]
    sends = ["full", "sliced"] if a.send == "both" else [a.send]
    base = Scenario(model=layouts[0][0], tp=layouts[0][1], pp=layouts[0][2], batch=1, micro_batches=1,
                    context=a.context, dtype=a.dtype, kv_dtype=a.kv_dtype, block_size=a.block_size,
                    layer_us=a.layer_us)
    scenarios = []
    for model, tp, pp in layouts:
        m = model
        if m.heads % tp or m.intermediate % tp or not (m.kv_heads % tp == 0 or tp % m.kv_heads == 0):
            p.error(f"tp={tp} does not divide {m.name}'s heads / FFN")
        if pp > m.layers or pp < 1:
            p.error(f"pp={pp} must be in [1, {m.layers}]")
        for b in batches:
            for mbs in a.micro_batches.split(","):
                mbs = pp if mbs.strip() == "pp" else int(mbs)
                if mbs < 1 or mbs > b:
                    p.error(f"{mbs} micro-batches for a batch of {b}")
                for send in sends:
                    scenarios.append(replace(base, model=model, tp=tp, pp=pp, batch=b, micro_batches=mbs, send=send))
    # Keep the order (layout, batch, micro-batches) but drop duplicates (e.g. 1,pp at pp=1).
    scenarios = list(dict.fromkeys(scenarios))

    rows = [result_row(hw, sc, a.rounds) for sc in scenarios]
    timelines = {}
    if a.timeline or (not a.model and not a.json):
        picks = scenarios if a.model else [sc for sc in scenarios if sc.batch == 64]
        for sc in picks:
            _, events = steady_state(hw, sc, a.rounds)
            timelines[f"{sc.model.name} tp{sc.tp} pp{sc.pp} b{sc.batch} m{sc.micro_batches} {sc.send}"] = \
                ascii_timeline(sc, events, a.width, a.timeline_steps, not a.no_links)
    if a.json:
        json.dump({"hardware": hw.__dict__, "results": rows, "timelines": timelines}, sys.stdout, indent=1)
        print()
        return 0
    print(assumptions_text(hw, base))
    print()
    print(markdown_table(rows))
    if not a.model:
        print()
        print("Stage-to-stage send, full hidden states from every TP rank vs 1/tp slices + all-gather on arrival "
              "(Llama-3-70B at tp=4 pp=2 puts both stages on one node):")
        print()
        print(send_table(hw, base, STANDARD_LAYOUTS + [("llama3-70b", 4, 2)], [16, 256], a.rounds))
        print()
        print("One step without micro-batches on its critical path, ms (sums over the stages; adds up to the step):")
        print()
        print(breakdown_table(hw, [sc for sc in scenarios if sc.micro_batches == 1]))
    for name, text in timelines.items():
        print()
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
