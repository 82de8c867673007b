#!/usr/bin/env python3
"""Golden greedy generations of SmolLM2-135M-Instruct (Q4_1 GGUF) from Hugging Face transformers (CPU, f32).

transformers loads the same GGUF file Tessera reads (dequantized to f32, Q/K un-permuted), so Tessera's forward pass
must reproduce these tokens exactly and the logits within 1e-3 x max|logit|.

Writes tests/fixtures/smollm2/forward_golden.json:
{
  "model_sha256": str,
  "cases": [{
     "name": str, "chat": bool, "text": str,          # the prompt as given (chat: the user message)
     "prompt_ids": [int],                            # ids fed to the model (chat template applied when chat)
     "generated_ids": [int],                         # greedy, max_new_tokens, no early stop
     "step_top2_gap": [float],                       # logit(top1) - logit(top2) at every generated step
     "last_prompt_logits": {"max_abs": float, "ids": [int], "values": [float]}
                                                     # logits at the last prompt position, for the top-64 ids and
                                                     # 448 fixed pseudo-random ids
  }]
}
Usage: .venv/bin/python scripts/golden/smollm2_forward.py [--model PATH] [--new-tokens 32]
"""
import argparse
import hashlib
import json
import os
import pathlib

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_MODEL = pathlib.Path(os.environ.get("TESSERA_MODEL_DIR", pathlib.Path.home() / ".cache/tessera/models")) / \
    "SmolLM2-135M-Instruct.Q4_1.gguf"

CASES = [
    ("chat_capital", True, "What is the capital of France?"),
    ("chat_poem", True, "Write a haiku about GPUs."),
    ("chat_math", True, "What is 17 times 23? Explain step by step."),
    ("plain_story", False, "Once upon a time, in a small village by the sea,"),
    ("plain_code", False, "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("plain_list", False, "The three primary colors are"),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tests/fixtures/smollm2/forward_golden.json")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tokenizer = AutoTokenizer.from_pretrained(args.model.parent, gguf_file=args.model.name)
    model = AutoModelForCausalLM.from_pretrained(args.model.parent, gguf_file=args.model.name,
                                                 torch_dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(1234)
    fixed_ids = torch.randperm(vocab, generator=generator)[:448].tolist()

    cases = []
    for name, chat, text in CASES:
        if chat:
            prompt_ids = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                       add_generation_prompt=True, tokenize=True)
            if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "input_ids"):
                prompt_ids = prompt_ids["input_ids"]
        else:
            prompt_ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        prompt_ids = [int(i) for i in prompt_ids]
        ids = torch.tensor([prompt_ids])
        generated, gaps, first_logits = [], [], None
        with torch.no_grad():
            past = None
            step_input = ids
            for step in range(args.new_tokens):
                out = model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1].float()
                if first_logits is None:
                    first_logits = logits.clone()
                top2 = torch.topk(logits, 2)
                gaps.append(float(top2.values[0] - top2.values[1]))
                next_id = int(torch.argmax(logits))
                generated.append(next_id)
                step_input = torch.tensor([[next_id]])
        top = torch.topk(first_logits, 64).indices.tolist()
        chosen = top + [i for i in fixed_ids if i not in set(top)]
        cases.append({
            "name": name, "chat": chat, "text": text, "prompt_ids": prompt_ids, "generated_ids": generated,
            "step_top2_gap": gaps,
            "last_prompt_logits": {"max_abs": float(first_logits.abs().max()), "ids": chosen,
                                   "values": [float(first_logits[i]) for i in chosen]},
        })
        print(f"{name}: {tokenizer.decode(generated)!r}")

    sha = hashlib.sha256(args.model.read_bytes()).hexdigest()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model_sha256": sha, "cases": cases}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
