"""A real `tessera serve` under mpirun for the end-to-end tests: start it on a free loopback port, wait for the
ready line and /health, talk to it, stop it (drain with SIGUSR1 or stop with SIGTERM) and check that every rank
exited. Everything is bounded by timeouts; the server is killed if it does not stop in time."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_pids(port):
    """The tessera processes (ranks) of the `tessera serve` job on `port`."""
    out = subprocess.run(["pgrep", "-f", f"tessera serve .*--port {port}"], capture_output=True, text=True)
    pids = []
    for p in out.stdout.split():
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip() == "tessera":  # not mpirun, whose command line names the same port
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def rank_of(pid):
    """The MPI world rank of a process that mpirun started (from its environment), or None."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        return int(env[b"OMPI_COMM_WORLD_RANK"])
    except (OSError, KeyError, ValueError):
        return None


def mpirun(np):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


class Server:
    def __init__(self, binary, model, np=1, tp=1, pp=1, extra=(), ready_timeout=180, env=None, watch_loading=False,
                 ca_file=None, health_headers=None):
        """ca_file: the server speaks HTTPS (extra names its --tls-cert-file/--tls-key-file); trust this CA.
        health_headers: sent with /health (e.g. the API key, when /health needs one)."""
        self.port = free_port()
        self.ssl_context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self.health_headers = health_headers or {}
        self.url = f"{'https' if ca_file else 'http'}://127.0.0.1:{self.port}"
        self.cmd = mpirun(np) + [binary, "serve", "--model", model, "--tp", str(tp), "--pp", str(pp),
                                 "--port", str(self.port), *extra]
        self.lines = []
        self.ready_line = None
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=full_env, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.loading_statuses = []  # /health answers seen before the server was ready
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            if watch_loading and not self.ready_line:
                status = self.health()
                if status is not None:
                    self.loading_statuses.append(status)
                time.sleep(0.02)
                continue
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before it was ready:\n{self.output()}")
            if self.ready_line and self.health() == 200:
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server not ready within {ready_timeout} s:\n{self.output()}")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("tessera: serving "):
                self.ready_line = line.strip()

    def output(self):
        return "".join(self.lines)

    def health(self):
        try:
            req = urllib.request.Request(self.url + "/health", headers=self.health_headers)
            with urllib.request.urlopen(req, timeout=5, context=self.ssl_context) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def request(self, method, path, body=None, headers=None, timeout=120):
        """Raw HTTP: (status, headers, parsed JSON or text)."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None and "Content-Type" not in (headers or {}):
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context) as r:
                status, hdrs, raw = r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, dict(e.headers), e.read().decode()
        try:
            return status, hdrs, json.loads(raw)
        except json.JSONDecodeError:
            return status, hdrs, raw

    def metric(self, name):
        """The value of one tessera: metric (summed over its label sets)."""
        _, _, text = self.request("GET", "/metrics")
        total, found = 0.0, False
        for line in text.splitlines():
            if line.startswith("tessera:" + name + "{") or line.startswith("tessera:" + name + " "):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        if not found:
            raise KeyError(name)
        return total

    def pids(self):
        """The tessera processes (ranks) of this job."""
        return serve_pids(self.port)

    def stop(self, sig=signal.SIGUSR1, timeout=60):
        """Signals mpirun (which forwards to the ranks) and waits; returns mpirun's exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"server did not stop within {timeout} s:\n{self.output()}")
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            print(f"--- server output (the test failed with {exc_type.__name__}) ---\n{self.output()[-4000:]}")
        if self.proc.poll() is None:
            try:
                self.stop()
            except RuntimeError:
                pass


class Checks:
    """Collects failures so that one run reports all of them; exit code 1 if any failed."""

    def __init__(self):
        self.failures = 0
        self.passed = 0

    def check(self, condition, what, detail=""):
        if condition:
            self.passed += 1
            print(f"ok   {what}")
        else:
            self.failures += 1
            print(f"FAIL {what}{': ' + str(detail) if detail else ''}")
        sys.stdout.flush()
        return condition

    def finish(self):
        print(f"{self.passed} passed, {self.failures} failed")
        return 1 if self.failures else 0
