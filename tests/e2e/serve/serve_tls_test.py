#!/usr/bin/env python3
"""HTTPS on a real `tessera serve` (one rank, loopback): a certificate chain made here with the openssl CLI (a CA and
a server certificate for 127.0.0.1 signed by it). The official `openai` client over an httpx client that trusts only
that CA: chat, streaming; keep-alive; a request over a limit (413) and a slow sender (408) over TLS; a client that
disconnects mid-stream over TLS (with and without close_notify) has its request cancelled; TLS 1.2 and 1.3 are
accepted, a TLS 1.1-only client is refused; plain HTTP to the TLS port gets a 400 and a close (bounded), the server
stays healthy; wrong TLS options and files fail the start with a message naming the file; the server drains with 0.

Usage: serve_tls_test.py TESSERA MODEL
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import httpx
import openai

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_data import missing_file_exit_code  # noqa: E402
from serve_harness import Checks, Server, free_port, mpirun  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(tmp):
    """ca.pem (the CA), chain.pem (server certificate + CA), key.pem (server key), other-key.pem (a key of no cert)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=tessera test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=tmp)
    with open(os.path.join(tmp, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=tmp)
    openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other-key.pem",
            cwd=tmp)
    with open(os.path.join(tmp, "chain.pem"), "w") as out:
        for name in ("server.pem", "ca.pem"):
            with open(os.path.join(tmp, name)) as f:
                out.write(f.read())
    with open(os.path.join(tmp, "garbage.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    return {name: os.path.join(tmp, name) for name in
            ("ca.pem", "chain.pem", "key.pem", "other-key.pem", "garbage.pem")}


def start_fails(binary, model, extra):
    """`tessera serve` with bad TLS options: (exit code, output); bounded."""
    cmd = mpirun(1) + [binary, "serve", "--model", model, "--port", str(free_port()), *extra]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        return "timeout", str(e.stdout) + str(e.stderr)


def tls_client(ca, maximum=None, minimum=None, seclevel0=False):
    ctx = ssl.create_default_context(cafile=ca)
    if seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS 1.0/1.1 only at security level 0
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def handshake(port, ctx, timeout=10):
    """(negotiated version, None) or (None, the error)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return s.version(), None
    except (ssl.SSLError, OSError) as e:
        return None, e


def wait_idle(server, idle_usage, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline and (server.metric("num_requests_running") > 0 or
                                      server.metric("kv_cache_usage_perc") > idle_usage):
        time.sleep(0.2)
    return server.metric("num_requests_running") == 0 and server.metric("kv_cache_usage_perc") == idle_usage


def main():
    binary, model = sys.argv[1], sys.argv[2]
    absent = missing_file_exit_code(model)
    if absent is not None:
        return absent
    if not shutil.which("openssl"):
        print("FAIL: the openssl command is absent (scripts/install-deps.sh installs it)")
        return 1
    c = Checks()
    tmp = tempfile.mkdtemp(prefix="tessera-tls-")
    try:
        f = make_certificates(tmp)
        run_checks(c, binary, model, f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return c.finish()


def run_checks(c, binary, model, f):
    # Wrong options and files: every rank exits non-zero, the message names the file (before the model loads).
    missing = os.path.join(os.path.dirname(f["ca.pem"]), "no-such-cert.pem")
    cases = [
        (["--tls-cert-file", f["chain.pem"]], ["--tls-cert-file and --tls-key-file go together"]),
        (["--tls-cert-file", missing, "--tls-key-file", f["key.pem"]], ["cannot read the TLS certificate file", missing]),
        (["--tls-cert-file", f["garbage.pem"], "--tls-key-file", f["key.pem"]], ["certificate file", f["garbage.pem"]]),
        (["--tls-cert-file", f["chain.pem"], "--tls-key-file", f["chain.pem"]], ["key file", f["chain.pem"]]),
        (["--tls-cert-file", f["chain.pem"], "--tls-key-file", f["other-key.pem"]],
         ["does not match the certificate", f["other-key.pem"]]),
    ]
    for extra, wanted in cases:
        code, out = start_fails(binary, model, extra)
        c.check(code not in (0, "timeout") and all(w in out for w in wanted),
                f"bad TLS start {wanted[0]!r}: exit {code}, message names it", out[-600:])

    tls_flags = ["--tls-cert-file", f["chain.pem"], "--tls-key-file", f["key.pem"], "--http-read-timeout", "3",
                 "--max-stream-backlog", "64KiB"]
    with Server(binary, model, extra=tls_flags, ca_file=f["ca.pem"]) as server:
        c.check(server.ready_line and f"at https://127.0.0.1:{server.port}/v1" in server.ready_line,
                "the ready line says https://", server.ready_line)
        http_client = httpx.Client(verify=f["ca.pem"], timeout=120)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, http_client=http_client)
        name = client.models.list().data[0].id
        chat = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "Say hello."}],
                                              max_tokens=12, temperature=0)
        c.check(chat.choices[0].message.content and chat.usage.completion_tokens > 0,
                "openai client over TLS (trusting only the test CA): chat", chat.choices[0].message.content)
        chunks = list(client.chat.completions.create(model=name, messages=[{"role": "user", "content": "Count."}],
                                                     max_tokens=16, temperature=0, stream=True))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        c.check(len(chunks) > 3 and text and chunks[-1].choices[0].finish_reason == "length",
                f"openai client over TLS: streaming ({len(chunks)} chunks)", text)
        try:
            openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                          http_client=httpx.Client(timeout=30)).models.list()
            c.check(False, "a client that does not trust the CA is refused")
        except openai.APIConnectionError as e:
            c.check("CERTIFICATE_VERIFY_FAILED" in repr(e.__cause__) or "certificate" in repr(e.__cause__).lower(),
                    "a client that does not trust the CA is refused (certificate verify failed)", repr(e.__cause__))

        # Keep-alive: two requests on one TLS connection.
        ctx = tls_client(f["ca.pem"])
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=30, context=ctx)
        conn.request("GET", "/health")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        conn.request("GET", "/v1/models")
        second = conn.getresponse()
        body = json.loads(second.read())
        c.check(first.status == 200 and second.status == 200 and conn.sock is sock and body["data"],
                "keep-alive: two requests on one TLS connection")
        conn.close()

        # Limits over TLS: a body over the limit gets 413; a slow sender gets 408 after the read timeout.
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=30, context=ctx)
        conn.request("POST", "/v1/completions", b"x" * (9 * 1024 * 1024), {"Content-Type": "application/json"})
        status = conn.getresponse().status
        conn.close()
        c.check(status == 413, "over TLS: a 9 MiB body gets 413", status)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=15)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
        started = time.time()
        answer = b""
        try:
            while True:
                part = s.recv(4096)
                if not part:
                    break
                answer += part
        except (OSError, ssl.SSLError):
            pass
        took = time.time() - started
        s.close()
        c.check(answer.startswith(b"HTTP/1.1 408") and 2 <= took <= 10,
                f"over TLS: an unfinished body gets 408 after the read timeout ({took:.1f} s)", answer[:60])

        # Disconnects over TLS cancel the request: a plain close (FIN) and a close_notify first.
        idle_usage = server.metric("kv_cache_usage_perc")
        for how in ("close", "close_notify"):
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            body = json.dumps({"model": name, "messages": [{"role": "user", "content": "Count to a thousand."}],
                               "max_tokens": 2000, "ignore_eos": True, "stream": True}).encode()
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            got = b""
            while got.count(b"data: ") < 5:
                got += s.recv(4096)
            running = server.metric("num_requests_running")
            if how == "close_notify":
                s.settimeout(1)
                try:
                    s.unwrap()  # sends close_notify; the server sends none back mid-stream
                except (OSError, ssl.SSLError):
                    pass
            s.close()
            c.check(running == 1 and wait_idle(server, idle_usage),
                    f"over TLS: a client that disconnects mid-stream ({how}) has its request cancelled, KV freed",
                    (running, server.metric("num_requests_running"), server.metric("kv_cache_usage_perc")))

        # Protocol versions: 1.3 and 1.2 are accepted; a client that offers at most TLS 1.1 is refused.
        v13, _ = handshake(server.port, tls_client(f["ca.pem"]))
        v12, _ = handshake(server.port, tls_client(f["ca.pem"], maximum=ssl.TLSVersion.TLSv1_2))
        c.check(v13 == "TLSv1.3" and v12 == "TLSv1.2", f"TLS 1.3 and 1.2 are accepted ({v13}, {v12})")
        old = tls_client(f["ca.pem"], minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1, seclevel0=True)
        v11, error = handshake(server.port, old)
        local = error is not None and "NO_PROTOCOLS_AVAILABLE" in str(error)
        c.check(v11 is None and not local, f"a TLS 1.1-only client is refused by the server: {error}")

        # Plain HTTP on the TLS port: a 400 in plain text, then the connection closes; no hang.
        started = time.time()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            try:
                while True:
                    part = s.recv(4096)
                    if not part:
                        break
                    answer += part
            except OSError:
                pass
        took = time.time() - started
        c.check(answer.startswith(b"HTTP/1.1 400") and b"HTTPS" in answer and took < 8,
                f"plain HTTP to the TLS port: 400 naming HTTPS, closed in {took:.1f} s", answer[:120])
        # A client that connects and says nothing is closed after the read timeout (the handshake's limit).
        started = time.time()
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
            try:
                closed = s.recv(1) == b""
            except OSError:
                closed = True
        took = time.time() - started
        c.check(closed and 2 <= took <= 10, f"a silent client on the TLS port is closed after {took:.1f} s")
        c.check(server.health() == 200, "the TLS server stays healthy")
        code = server.stop()
        c.check(code == 0, "SIGUSR1 drains the TLS server and every rank exits 0", code)


if __name__ == "__main__":
    sys.exit(main())
