#!/usr/bin/env python3
"""Access control, per-key rate limits and the audit log of a real `tessera serve` (one rank) with the official
`openai` client and raw HTTP on loopback:
  - without a key, with a wrong key, with another scheme: 401 in OpenAI's error shape, with X-Request-Id;
  - the right key works for chat, streaming and completions; /health and /metrics open by default, closed with
    `server.public_health_and_metrics: false` (set through a YAML config, so the schema's keys are exercised);
  - a key's rpm limit: the request after the limit gets 429 with Retry-After; tpm likewise; a request larger than
    the tpm limit is a 400; the anonymous bucket without keys; tessera:request_rejected_total by reason;
  - the audit log: every line is JSON; request ids equal the X-Request-Id the client saw, statuses 200/401/404/429
    are there, token counts equal the responses' usage, key names are there and keys never are, prompts and
    completions only with content logging (and then they are); `--audit-log -` writes to stderr;
  - a malformed key file stops the start with a message naming the file and the line.

Usage: serve_access_test.py TESSERA MODEL
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile

import openai

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, Server, mpirun  # noqa: E402

KEYS = {  # name -> key; bob has 2 requests per minute, carol 100 tokens per minute
    "alice": "sk-alice-0123456789abcdef",
    "bob": "sk-bob-0123456789abcdefgh",
    "carol": "sk-carol-0123456789abcdef",
}
KEY_FILE = f"""# the test's keys: NAME KEY [rpm=N] [tpm=N]
alice {KEYS['alice']}

bob   {KEYS['bob']} rpm=2
carol {KEYS['carol']} tpm=100
"""
MARKER = "zebra-umbrella-7431"  # a word of the prompts: in the audit log only with content logging
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def bearer(name):
    return {"Authorization": f"Bearer {KEYS[name]}"}


def error_shape(out):
    err = out.get("error") if isinstance(out, dict) else None
    return bool(err) and {"message", "type", "param", "code"} <= set(err)


class Ledger:
    """What the client saw, by request id: the status, the key's name and the usage, for the audit log check."""

    def __init__(self):
        self.requests = {}
        self.count = 0

    def next_id(self, what):
        self.count += 1
        return f"t{self.count}-{what}"

    def add(self, request_id, status, key_name, usage=None, route=None):
        self.requests[request_id] = {"status": status, "key_name": key_name, "usage": usage, "route": route}


def raw(c, server, ledger, method, path, body=None, key=None, headers=None, want=None, what=""):
    """A raw HTTP request with our own X-Request-Id; checks the id comes back and records what the client saw."""
    rid = ledger.next_id(path.strip("/").replace("/", "_") or "root")
    h = {"X-Request-Id": rid, **(bearer(key) if key else {}), **(headers or {})}
    status, hdrs, out = server.request(method, path, body, headers=h)
    c.check(hdrs.get("X-Request-Id") == rid, f"X-Request-Id on the {status} of {what or path}", hdrs)
    if want is not None:
        c.check(status == want, f"{want} {what or path}", (status, out))
    usage = out.get("usage") if isinstance(out, dict) else None
    ledger.add(rid, status, key, usage, path)
    return status, hdrs, out


def check_audit(c, lines, ledger, content, label):
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            c.check(False, f"{label}: audit line {i + 1} is JSON", f"{e}: {line[:200]}")
            return []
    c.check(len(records) > 0 and len(records) == len(lines), f"{label}: every audit line is one JSON object",
            len(records))
    by_id = {r["request_id"]: r for r in records}
    fields = {"time", "request_id", "key_name", "client", "method", "route", "status", "prompt_tokens",
              "completion_tokens", "queue_seconds", "first_token_seconds", "total_seconds", "finish_reason"}
    c.check(all(fields <= set(r) for r in records), f"{label}: every line has the documented fields",
            [sorted(fields - set(r)) for r in records if not fields <= set(r)][:3])
    c.check(all(ISO_TIME.match(r["time"]) for r in records), f"{label}: times are ISO-8601 UTC",
            [r["time"] for r in records][:3])
    c.check(all(r["client"].startswith("127.0.0.1:") for r in records), f"{label}: the client's address",
            {r["client"] for r in records})
    missing = [rid for rid in ledger.requests if rid not in by_id]
    c.check(not missing, f"{label}: every request the client made has its line, under the X-Request-Id it saw",
            missing[:5])
    wrong = []
    for rid, want in ledger.requests.items():
        r = by_id.get(rid)
        if r is None:
            continue
        if r["status"] != want["status"] or r["key_name"] != want["key_name"]:
            wrong.append((rid, r["status"], want["status"], r["key_name"], want["key_name"]))
        if want["route"] and r["route"] != want["route"]:
            wrong.append((rid, r["route"], want["route"]))
        u = want["usage"]
        if u and (r["prompt_tokens"] != u["prompt_tokens"] or r["completion_tokens"] != u["completion_tokens"]):
            wrong.append((rid, "tokens", r["prompt_tokens"], r["completion_tokens"], u))
        if u and not (r["finish_reason"] and r["first_token_seconds"] is not None and
                      0 <= r["queue_seconds"] <= r["first_token_seconds"] <= r["total_seconds"]):
            wrong.append((rid, "times/finish", r["finish_reason"], r["queue_seconds"], r["first_token_seconds"],
                          r["total_seconds"]))
    c.check(not wrong, f"{label}: statuses, key names, routes, token counts (= usage) and times as the client saw",
            wrong[:5])
    statuses = {r["status"] for r in records}
    text = "\n".join(lines)
    c.check(not any(k in text for k in KEYS.values()), f"{label}: no key appears in the audit log")
    if content:
        with_content = [r for r in records if r.get("prompts") is not None]
        c.check(with_content and all(any(MARKER in p for p in r["prompts"]) for r in with_content) and
                all(isinstance(r.get("completions"), list) for r in with_content),
                f"{label}: with content logging the prompts and completions are there", with_content[:1])
    else:
        c.check(MARKER not in text and not any("prompts" in r or "completions" in r for r in records),
                f"{label}: without content logging no prompt or completion text")
    return records, statuses


def run_keyed(c, binary, model, tmp):
    """Keys from a file given by flag, public /health and /metrics, per-key limits from the file."""
    key_file = os.path.join(tmp, "keys.txt")
    with open(key_file, "w") as f:
        f.write(KEY_FILE)
    audit = os.path.join(tmp, "audit.jsonl")
    ledger = Ledger()
    server = Server(binary, model, extra=["--api-key-file", key_file, "--audit-log", audit])
    try:
        out = server.output()
        c.check("tessera: access: 3 API key(s)" in out and not any(k in out for k in KEYS.values()),
                "the start names the key count, never a key", out[-600:])
        name = server.request("GET", "/v1/models", headers=bearer("alice"))[2]["data"][0]["id"]
        chat = {"model": name, "messages": [{"role": "user", "content": f"Say {MARKER}"}], "max_tokens": 4}

        # 401s, each in the error shape, with X-Request-Id and WWW-Authenticate.
        for path, method, body in (("/v1/models", "GET", None), ("/v1/chat/completions", "POST", chat),
                                   ("/tokenize", "POST", {"prompt": "hi"}), ("/detokenize", "POST", {"tokens": [1]}),
                                   ("/v1/nothing", "GET", None)):
            status, hdrs, out = raw(c, server, ledger, method, path, body, want=401, what=f"{path} without a key")
            c.check(error_shape(out) and out["error"]["code"] == "missing_api_key" and
                    hdrs.get("WWW-Authenticate") == "Bearer", f"401 of {path}: OpenAI's shape, WWW-Authenticate",
                    (out, hdrs))
        status, _, out = raw(c, server, ledger, "GET", "/v1/models", headers={"Authorization": "Bearer sk-wrong-key-0000000000"},
                             want=401, what="a wrong key")
        c.check(error_shape(out) and out["error"]["code"] == "invalid_api_key" and "sk-wrong" not in json.dumps(out),
                "a wrong key: invalid_api_key, the key not echoed", out)
        raw(c, server, ledger, "GET", "/v1/models", headers={"Authorization": "Basic " + KEYS["alice"]}, want=401,
            what="another scheme than Bearer")
        raw(c, server, ledger, "GET", "/v1/models",
            headers={"Authorization": "Bearer " + KEYS["alice"][:-1]}, want=401, what="a prefix of a key")
        raw(c, server, ledger, "GET", "/v1/nothing", key="alice", want=404, what="an unknown route with a key")
        raw(c, server, ledger, "GET", "/health", want=200, what="/health without a key (public by default)")
        status, _, text = raw(c, server, ledger, "GET", "/metrics", want=200, what="/metrics without a key")
        raw(c, server, ledger, "POST", "/tokenize", {"prompt": "hi"}, key="alice", want=200, what="/tokenize with a key")

        # The official client: wrong key, then the right one for chat, a stream and completions.
        bad = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-not-a-key-000000000", max_retries=0, timeout=60)
        try:
            bad.models.list()
            c.check(False, "openai client with a wrong key: AuthenticationError")
        except openai.AuthenticationError as e:
            c.check(e.status_code == 401 and e.body and e.body.get("code") == "invalid_api_key",
                    "openai client with a wrong key: AuthenticationError (401)", e.body)
            ledger.add(e.response.headers.get("x-request-id"), 401, None, route="/v1/models")
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEYS["alice"], max_retries=0, timeout=120)
        r = client.chat.completions.with_raw_response.create(model=name, messages=chat["messages"], max_tokens=6,
                                                               temperature=0)
        rid, resp = r.headers.get("x-request-id"), r.parse()
        c.check(rid and resp.choices[0].message.content is not None and resp.usage.completion_tokens > 0,
                "openai client with the key: chat", resp)
        ledger.add(rid, 200, "alice", resp.usage.model_dump(), "/v1/chat/completions")
        r = client.chat.completions.with_raw_response.create(model=name, messages=chat["messages"], max_tokens=6,
                                                               temperature=0, stream=True,
                                                               stream_options={"include_usage": True})
        rid = r.headers.get("x-request-id")
        text, usage = "", None
        for chunk in r.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage.model_dump()
        c.check(rid and usage and usage["completion_tokens"] > 0, "openai client with the key: a stream", (text, usage))
        ledger.add(rid, 200, "alice", usage, "/v1/chat/completions")
        r = client.completions.with_raw_response.create(model=name, prompt=f"The {MARKER} is", max_tokens=5)
        resp = r.parse()
        ledger.add(r.headers.get("x-request-id"), 200, "alice", resp.usage.model_dump(), "/v1/completions")
        c.check(resp.usage.completion_tokens > 0, "openai client with the key: completions", resp)

        # bob: 2 requests per minute. The third gets 429 with Retry-After, in the error shape.
        completion = {"model": name, "prompt": [100] * 10, "max_tokens": 2}
        for i in range(2):
            raw(c, server, ledger, "POST", "/v1/completions", completion, key="bob", want=200, what=f"bob's request {i + 1}")
        status, hdrs, out = raw(c, server, ledger, "POST", "/v1/completions", completion, key="bob", want=429,
                                what="bob's third request in a minute (rpm=2)")
        retry = int(hdrs.get("Retry-After", "0"))
        c.check(1 <= retry <= 30, "the rpm 429 says Retry-After: when the next request fits (<= 30 s at 2/min)", hdrs)
        c.check(error_shape(out) and out["error"]["type"] == "rate_limit_exceeded" and
                out["error"]["code"] == "requests_per_minute", "the rpm 429 in OpenAI's shape", out)
        raw(c, server, ledger, "POST", "/v1/completions", completion, key="alice", want=200,
            what="another key is not limited by bob's bucket")
        bob = openai.OpenAI(base_url=server.url + "/v1", api_key=KEYS["bob"], max_retries=0, timeout=60)
        try:
            bob.completions.create(model=name, prompt=[100] * 10, max_tokens=2)
            c.check(False, "openai client over the limit: RateLimitError")
        except openai.RateLimitError as e:
            c.check(e.status_code == 429 and e.response.headers.get("retry-after"),
                    "openai client over the limit: RateLimitError with Retry-After", e.body)
            ledger.add(e.response.headers.get("x-request-id"), 429, "bob", route="/v1/completions")

        # carol: 100 tokens per minute; each request costs 10 prompt + 30 max_tokens = 40 at admission.
        tokens = {"model": name, "prompt": [100] * 10, "max_tokens": 30}
        for i in range(2):
            raw(c, server, ledger, "POST", "/v1/completions", tokens, key="carol", want=200, what=f"carol's request {i + 1}")
        status, hdrs, out = raw(c, server, ledger, "POST", "/v1/completions", tokens, key="carol", want=429,
                                what="carol's third 40-token request (tpm=100)")
        retry = int(hdrs.get("Retry-After", "0"))
        # 20 tokens left and 40 needed: 20 more at 100/min take 12 s (less what refilled meanwhile).
        c.check(1 <= retry <= 12, "the tpm 429 says Retry-After: the seconds until 40 tokens are back (<= 12)", hdrs)
        c.check(error_shape(out) and out["error"]["code"] == "tokens_per_minute", "the tpm 429 in OpenAI's shape", out)
        status, _, out = raw(c, server, ledger, "POST", "/v1/completions", dict(tokens, max_tokens=200), key="carol",
                             want=400, what="a request larger than the tpm limit (never fits)")
        c.check(error_shape(out) and out["error"]["code"] == "request_too_large", "too large: request_too_large", out)

        # Refused by the HTTP layer before the API saw it (headers over 16 KiB): still an id, still an audit line.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 << 10) + b"\r\n\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        head = reply.split(b"\r\n\r\n")[0].decode(errors="replace")
        refused_id = re.search(r"(?im)^X-Request-Id: (\S+)", head)
        c.check(head.startswith("HTTP/1.1 431") and refused_id is not None,
                "431 from the HTTP layer carries X-Request-Id", head[:200])
        if refused_id:
            ledger.add(refused_id.group(1), 431, None)

        rejected = {}
        for line in server.request("GET", "/metrics")[2].splitlines():
            m = re.match(r'tessera:request_rejected_total\{.*reason="(\w+)".*\} (\S+)', line)
            if m:
                rejected[m.group(1)] = float(m.group(2))
        c.check(rejected.get("missing_key", 0) >= 5 and rejected.get("invalid_key", 0) >= 4 and
                rejected.get("rate_limit_requests", 0) >= 2 and rejected.get("rate_limit_tokens", 0) >= 1 and
                rejected.get("rate_limit_too_large", 0) >= 1,
                "tessera:request_rejected_total counts the refusals by reason", rejected)
    finally:
        code = server.stop()
        c.check(code == 0, "the keyed server drains and exits 0", f"exit {code}")
    with open(audit) as f:
        lines = f.read().splitlines()
    records, statuses = check_audit(c, lines, ledger, content=False, label="audit (keys, no content)")
    c.check({200, 401, 404, 429, 400, 431} <= statuses, "the audit log has 200, 400, 401, 404, 429 and 431", statuses)
    c.check(any(r["key_name"] == "alice" for r in records) and any(r["key_name"] == "bob" for r in records),
            "the audit log names the keys")
    c.check(oct(os.stat(audit).st_mode & 0o777) == "0o600", "the audit log is 0600", oct(os.stat(audit).st_mode))


def run_closed_health_with_content(c, binary, model, tmp):
    """From a YAML config: a key alone on its line, /health and /metrics need it, a default rpm, content logging."""
    key = "kkkkkkkkkkkkkkkkkkkkkkkkkkkk-only"
    key_file = os.path.join(tmp, "keys2.txt")
    with open(key_file, "w") as f:
        f.write(f"\n# one key, no name: it is called line-3\n{key}\n")
    audit = os.path.join(tmp, "audit-content.jsonl")
    config = os.path.join(tmp, "serve.yaml")
    with open(config, "w") as f:
        f.write(f"server:\n  api_key_file: {key_file}\n  public_health_and_metrics: false\n  rate_limit_rpm: 3\n"
                f"  audit_log: {audit}\n  audit_log_content: true\n")
    ledger = Ledger()
    KEYS["line-3"] = key
    server = Server(binary, model, extra=["--config", config], health_headers={"Authorization": f"Bearer {key}"})
    try:
        raw(c, server, ledger, "GET", "/health", want=401, what="/health without a key when it is not public")
        raw(c, server, ledger, "GET", "/metrics", want=401, what="/metrics without a key when it is not public")
        raw(c, server, ledger, "GET", "/health", key="line-3", want=200, what="/health with the key")
        raw(c, server, ledger, "GET", "/metrics", key="line-3", want=200, what="/metrics with the key")
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)
        name = client.models.list().data[0].id
        texts = {}
        for i in range(3):  # the default rpm (3) from the YAML: three fit, the fourth does not
            r = client.chat.completions.with_raw_response.create(
                model=name, messages=[{"role": "user", "content": f"Repeat: {MARKER}"}], max_tokens=5, temperature=0)
            resp = r.parse()
            texts[r.headers.get("x-request-id")] = resp.choices[0].message.content
            ledger.add(r.headers.get("x-request-id"), 200, "line-3", resp.usage.model_dump(), "/v1/chat/completions")
        raw(c, server, ledger, "POST", "/v1/chat/completions",
            {"model": name, "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}, key="line-3", want=429,
            what="the YAML's default rpm applies to a key without its own")
    finally:
        code = server.stop()
        c.check(code == 0, "the config-file server drains and exits 0", f"exit {code}")
    with open(audit) as f:
        lines = f.read().splitlines()
    records, _ = check_audit(c, lines, ledger, content=True, label="audit (YAML, content)")
    by_id = {r["request_id"]: r for r in records}
    c.check(all(by_id.get(rid, {}).get("completions") == [t] for rid, t in texts.items()),
            "with content logging the completions equal the responses' texts",
            [(by_id.get(rid, {}).get("completions"), t) for rid, t in texts.items()])


def run_anonymous(c, binary, model):
    """No keys: any client works, a limit applies to everyone together; the audit log on stderr."""
    ledger = Ledger()
    server = Server(binary, model, extra=["--rate-limit-rpm", "1", "--audit-log", "-"])
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="anything", max_retries=0, timeout=120)
        name = client.models.list().data[0].id
        r = client.completions.with_raw_response.create(model=name, prompt="Hi", max_tokens=2)
        ledger.add(r.headers.get("x-request-id"), 200, None, r.parse().usage.model_dump(), "/v1/completions")
        raw(c, server, ledger, "POST", "/v1/completions", {"model": name, "prompt": "Hi", "max_tokens": 2}, want=429,
            what="without keys the rpm limit is one anonymous bucket")
    finally:
        code = server.stop()
        c.check(code == 0, "the anonymous server drains and exits 0", f"exit {code}")
    lines = [line for line in server.output().splitlines() if line.startswith("{")]
    check_audit(c, lines, ledger, content=False, label="audit on stderr (no keys)")


def run_bad_key_files(c, binary, model, tmp):
    cases = {
        "empty.txt": ("# nothing\n\n", "empty.txt: holds no key"),
        "dup.txt": (f"a {KEYS['alice']}\nb {KEYS['alice']}\n", "dup.txt:2: the same key as line 1"),
        "bad.txt": (f"a {KEYS['alice']}\nb short\n", "bad.txt:2: the key has 5 characters"),
    }
    for name, (text, expected) in cases.items():
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(mpirun(1) + [binary, "serve", "--model", model, "--port", "0", "--api-key-file", path],
                           capture_output=True, text=True, timeout=180)
        out = r.stdout + r.stderr
        c.check(r.returncode != 0 and expected in out and KEYS["alice"] not in out,
                f"a bad key file stops the start: {expected}", out[-500:])


def main():
    binary, model = sys.argv[1:3]
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="tessera-access-") as tmp:
        run_bad_key_files(c, binary, model, tmp)
        run_keyed(c, binary, model, tmp)
        run_closed_health_with_content(c, binary, model, tmp)
        run_anonymous(c, binary, model)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
