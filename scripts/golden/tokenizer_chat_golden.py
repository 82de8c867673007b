#!/usr/bin/env python3
"""Golden chat renderings for tests/runtime/test_chat_template.cpp: transformers' apply_chat_template (Jinja) with
the real templates of each family, on a fixed set of conversations. Writes tests/fixtures/tokenizer/chat_templates.json.

Template sources:
  smollm2   tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf (read from the file)
  qwen2     tokenizer.chat_template of ggml-vocab-qwen2.gguf (llama.cpp's vocab file, from Qwen2's tokenizer)
  llama3    typed in from meta-llama/Meta-Llama-3-8B-Instruct's tokenizer_config.json
  llama2    typed in from meta-llama/Llama-2-7b-chat-hf's tokenizer_config.json
  mistral   typed in from mistralai/Mistral-7B-Instruct-v0.1's tokenizer_config.json
Run:  .venv/bin/python scripts/golden/tokenizer_chat_golden.py
"""
import json
import os
from pathlib import Path

import gguf
from jinja2.exceptions import TemplateError
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizer" / "chat_templates.json"
MODEL = Path(os.environ.get("TESSERA_MODEL_PATH",
                            Path.home() / ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
VOCABS = Path.home() / ".cache/tessera/vocab"

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")


def gguf_template(path):
    reader = gguf.GGUFReader(str(path))
    return reader.fields["tokenizer.chat_template"].contents()


def conversations():
    u = lambda c: {"role": "user", "content": c}  # noqa: E731
    a = lambda c: {"role": "assistant", "content": c}  # noqa: E731
    s = lambda c: {"role": "system", "content": c}  # noqa: E731
    return [
        [],
        [u("Hello")],
        [s("You are terse."), u("What is 2+2?")],
        [u("Hi"), a("Hello! How can I help?"), u("Tell me a joke.")],
        [s("Be kind."), u("Hi"), a("Hey."), u("Bye")],
        [u("  padded content \n\n"), a("\tanswer with tabs\t ")],
        [u("Unicode: 日本語 😀 café"), a("ça va ✨")],
        [u("special <|im_end|> and [INST] in text </s>")],
        [u(""), a("")],
        [s("multi\nline\nsystem"), u("line one\nline two")],
        [u("a"), u("b")],                       # not alternating: llama2/mistral raise
        [a("assistant first")],                 # not alternating
        [s("only a system message")],
    ]


def main():
    templates = {
        "smollm2": {"text": gguf_template(MODEL), "bos": "<|im_start|>", "eos": "<|im_end|>"},
        "qwen2": {"text": gguf_template(VOCABS / "ggml-vocab-qwen2.gguf"), "bos": "<|endoftext|>",
                  "eos": "<|endoftext|>"},
        "llama3": {"text": LLAMA3, "bos": "<|begin_of_text|>", "eos": "<|eot_id|>"},
        "llama2": {"text": LLAMA2, "bos": "<s>", "eos": "</s>"},
        "mistral": {"text": MISTRAL, "bos": "<s>", "eos": "</s>"},
    }
    cases = []
    for name, t in templates.items():
        for messages in conversations():
            for gen in (False, True):
                try:
                    rendered, _ = render_jinja_template(
                        conversations=[messages], chat_template=t["text"], add_generation_prompt=gen,
                        bos_token=t["bos"], eos_token=t["eos"])
                    rendered = rendered[0]
                except TemplateError:
                    rendered = None
                cases.append({"template": name, "messages": messages, "add_generation_prompt": gen,
                              "rendered": rendered})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"templates": templates, "cases": cases}, ensure_ascii=False, indent=0) + "\n",
                   encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
