#!/usr/bin/env python3
"""Golden token ids for tests/runtime/test_tokenizer*.cpp, produced by Hugging Face `tokenizers`/`transformers`.

Writes tests/fixtures/tokenizer/:
  corpus.json             the test strings (generated here, deterministic)
  smollm2.json            ids of SmolLM2-135M-Instruct (tokenizer read from the GGUF by transformers, with the
                          pre-tokenizer of SmolLM2's own tokenizer.json: Digits(individual) then ByteLevel)
  llama_spm.json          ggml-vocab-llama-spm.gguf  (SentencePiece BPE, Llama 2)
  llama_bpe.json          ggml-vocab-llama-bpe.gguf  (byte-level BPE, Llama 3)
  qwen2.json              ggml-vocab-qwen2.gguf      (byte-level BPE, Qwen2)
  hf_bytelevel/           a small byte-level tokenizer.json trained here (+ tokenizer_config.json) and its ids
  hf_metaspace/           a small SentencePiece-style (Metaspace + byte fallback) tokenizer.json and its ids

The vocab GGUFs come from llama-cpp-python's source distribution (scripts/fetch-vocabs.sh puts them in
~/.cache/tessera/vocab). Run:  .venv/bin/python scripts/golden/tokenizer_golden.py
"""
import json
import os
import random
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "tokenizer"
MODEL = Path(os.environ.get("TESSERA_MODEL_PATH",
                            Path.home() / ".cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
VOCABS = Path.home() / ".cache/tessera/vocab"

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<|begin_of_text|>",
            "<|eot_id|>", "<|start_header_id|>", "<think>"]


def build_corpus():
    base = [
        "", " ", "  ", "\n", "\t", "a", "Hello world", " Hello", "Hello, world!", "  leading and trailing  ",
        "multiple   internal    spaces", "tabs\tand\nnewlines\r\nmixed", "I'm sure they'll say it's fine, don't you?",
        "WE'VE SEEN IT'S DONE", "Café naïve résumé façade Ångström", "e\u0301 combining acute", "Zoë and Chloë",
        "你好，世界！这是一个测试。", "日本語のテキストとカタカナ ー", "한국어 텍스트입니다", "Россия и Українa",
        "مرحبا بالعالم", "שלום עולם", "Ελληνικά γράμματα", "हिन्दी भाषा", "ภาษาไทย",
        "Emoji: 😀👍🏽🇺🇸 and ❤️", "👨‍👩‍👧‍👦 family", "👩🏾‍💻 coder", "🏳️‍🌈 flag", "🤦🏼‍♂️",
        "Numbers 12345 and 3.14159 and 1,000,000", "0", "007", "1234567890123456789012345678901234567890",
        "Punctuation!!! ??? ... --- (parens) [brackets] {braces}", "zero\u200bwidth\u200djoiner\u200cnon",
        "nbsp\u00a0here and\u2009thin\u3000ideographic", "replacement \ufffd char", "private \ue000\uf8ff use",
        "RTL mark \u200f and LTR \u200e", "BOM \ufeff inside", "\u2581 lower one eighth block", "math ∑∫√∞ ≠ ≤",
        "def foo(x):\n    return x ** 2\n", "if (a &&b) {\n\tprintf(\"%d\\n\", a);\n}\n",
        "    indented four", "\t\t\ttabs", " " * 17 + "x", "\n\n\n\n", "x" + " " * 40 + "y", "\r\n\r\n",
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "text<|endoftext|>more",
        "<s>[INST] hi [/INST]", "</s>", "<unk>", "<|begin_of_text|><|start_header_id|>user", "a<think>b</think>",
        "<|im_start|><|im_end|>", "<|im_start", "im_start|>", "<<|im_end|>>", "https://example.com/path?q=1&b=2",
        "user@example.com", "C:\\Users\\name\\file.txt", "$100.00 €50 £20 ¥1000", "#hashtag @mention",
        "CamelCaseIdentifier snake_case_name kebab-case", "ALLCAPS lowercase MiXeD", "'s 't 're 've 'm 'll 'd",
        "’s curly apostrophe", "«guillemets» „quotes“", "a\u0300\u0301\u0302\u0303 stacked marks",
        "\u0000nul\u0001soh", "bell\u0007 del\u007f", "x\u0085nel", "line\u2028sep\u2029para",
        "123abc456def", "abc 123 def 4567", "3.0e-10", "½ ¾ ² ³ ①②③ Ⅻ", "١٢٣ arabic digits", "۱۲۳ persian",
        "०१२ devanagari digits", "🙂" * 10, "ab" * 50, "." * 30, "-" * 25 + ">", "=" * 64,
    ]
    rng = random.Random(20240611)
    pools = [
        ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Tessera", "tokenizer", "MPI", "ranks"],
        ["é", "ñ", "ü", "ß", "ø", "Ω", "λ", "Ж", "ж", "ç"],
        ["中文", "日本", "한국", "字", "漢字", "ひらがな", "カタカナ"],
        ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "✨", "🤖", "👩🏻‍🔬"],
        [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "        "],
        ["0", "42", "1999", "3.14", "100000", "0x1F", "-7", "+33"],
        ["!", "?", ",", ".", ";", ":", "'", "\"", "(", ")", "{", "}", "<", ">", "/", "\\", "|", "_", "~", "`"],
        SPECIALS,
        ["\u200b", "\u200d", "\u0301", "\ufffd", "\ue001", "\u202e", "\u00a0", "\u2581"],
        ["I'm", "don't", "we'll", "they've", "it's", "O'Neil"],
    ]
    generated = []
    while len(generated) < 260:
        parts = []
        for _ in range(rng.randint(1, 9)):
            pool = pools[rng.randrange(len(pools))]
            parts.append(pool[rng.randrange(len(pool))])
        sep = rng.choice(["", " ", ""])
        generated.append(sep.join(parts))
    corpus = base + generated
    # A long mixed document and a long single line, for the long-input paths.
    corpus.append("\n".join(base[5:60]) * 3)
    corpus.append(" ".join(str(i) for i in range(400)))
    return corpus


def case_list(tok, corpus):
    cases = []
    for text in corpus:
        ids = tok.encode(text, add_special_tokens=False)
        with_special = tok.encode(text, add_special_tokens=True)
        cases.append({
            "ids": ids,
            "ids_with_special": with_special,
            "decoded": tok.decode(with_special, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(with_special, skip_special_tokens=True),
        })
    return cases


def write(name, payload):
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def gguf_reference(path, fix=None):
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if fix is not None:
        return fix(tok) or tok
    return tok


def smollm2_pre(tok):
    # SmolLM2's tokenizer.json (HuggingFaceTB/SmolLM2-135M-Instruct) has
    #   "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
    #                     {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}
    # while transformers' GGUF loader gives it plain GPT-2 ByteLevel; use the model's own.
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    assert "Digits" in tok.backend_tokenizer.pre_tokenizer.__getstate__().decode()


class BackendReference:
    """A `tokenizers.Tokenizer` with the encode/decode calls this script uses (same meaning as transformers')."""

    def __init__(self, backend):
        self.backend = backend

    def encode(self, text, add_special_tokens):
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens):
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)


def llama3_reference(tok):
    """Meta-Llama-3's tokenizer.json, rebuilt from what transformers read out of the GGUF: its BPE model has
    "ignore_merges": true and its post-processor prepends <|begin_of_text|> (the GGUF loader does neither), and
    it has no "<|endoftext|>" (GPT2Tokenizer adds one as id 128256, past the model's vocabulary)."""
    data = json.loads(tok.backend_tokenizer.to_str())
    size = len(data["model"]["vocab"])
    data["added_tokens"] = [t for t in data["added_tokens"] if t["id"] < size]
    data["model"]["ignore_merges"] = True
    bos = "<|begin_of_text|>"
    data["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [data["model"]["vocab"][bos]], "tokens": [bos]}}}
    return BackendReference(Tokenizer.from_str(json.dumps(data)))


def train_small(corpus, metaspace):
    """A small real tokenizer trained on the corpus, exercised through its tokenizer.json."""
    special = ["<unk>", "<s>", "</s>"] if metaspace else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    if metaspace:
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
        alphabet = []
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=special, initial_alphabet=alphabet,
                                  show_progress=False, limit_alphabet=120 if metaspace else 1000)
    tok.train_from_iterator(corpus * 3, trainer=trainer)
    data = json.loads(tok.to_str())
    if metaspace:
        # Like Llama 2's: 256 byte-fallback tokens, one pre-token for the whole text, the Llama decoder chain.
        vocab = data["model"]["vocab"]
        for b in range(256):
            vocab.setdefault(f"<0x{b:02X}>", len(vocab))
        data["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                                 "split": False}
        data["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
        data["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [vocab["<s>"]], "tokens": ["<s>"]}}}
        # The older "a b" string form of merges, so both forms are covered by the fixtures.
        data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    else:
        data["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
        # A user-defined (not special) added token.
        data["added_tokens"].append({"id": len(data["model"]["vocab"]), "content": "<think>", "single_word": False,
                                     "lstrip": False, "rstrip": False, "normalized": False, "special": False})
        data["model"]["vocab"]["<think>"] = len(data["model"]["vocab"])
        data["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in data["model"]["merges"]]
    return Tokenizer.from_str(json.dumps(data)), data


def hf_json_fixture(name, corpus, metaspace):
    tok, data = train_small(corpus, metaspace)
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    config = ({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>"} if metaspace else
              {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
               "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                                "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
                                "%}{{ '<|im_start|>assistant\\n' }}{% endif %}"})
    (folder / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
    cases = []
    for text in corpus:
        enc = tok.encode(text, add_special_tokens=False).ids
        full = tok.encode(text, add_special_tokens=True).ids
        cases.append({"ids": enc, "ids_with_special": full,
                      "decoded": tok.decode(full, skip_special_tokens=False),
                      "decoded_skip_special": tok.decode(full, skip_special_tokens=True)})
    write(f"{name}/golden.json", {"source": f"tokenizers {__import__('tokenizers').__version__}, trained here",
                                  "cases": cases})


def main():
    corpus = build_corpus()
    assert len(corpus) >= 300 and len(set(corpus)) > 250
    write("corpus.json", {"strings": corpus})

    hf_json_fixture("hf_bytelevel", corpus, metaspace=False)
    hf_json_fixture("hf_metaspace", corpus, metaspace=True)

    targets = [("smollm2.json", MODEL, smollm2_pre),
               ("llama_spm.json", VOCABS / "ggml-vocab-llama-spm.gguf", None),
               ("llama_bpe.json", VOCABS / "ggml-vocab-llama-bpe.gguf", llama3_reference),
               ("qwen2.json", VOCABS / "ggml-vocab-qwen2.gguf", None)]
    for name, path, fix in targets:
        if not path.exists():
            sys.exit(f"missing {path}: run scripts/fetch-model.sh and scripts/fetch-vocabs.sh")
        tok = gguf_reference(path, fix)
        write(name, {"source": f"transformers {__import__('transformers').__version__} from {path.name}",
                     "file": path.name, "cases": case_list(tok, corpus)})


if __name__ == "__main__":
    main()
