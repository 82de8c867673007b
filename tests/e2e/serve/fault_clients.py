"""Clients and observers for the fault-injection tests (serve_faults_test.py, serve_link_cut_test.py): requests
that are in flight when a fault strikes, each recording how it ended; a /health poller; and a wait for every rank
of a job to be gone. Raw HTTP (http.client), so that an explicit error event in a stream is told apart from a
connection that was merely cut: the latter is what a client must never see."""
import http.client
import json
import os
import threading
import time


class InFlightRequest(threading.Thread):
    """One completion, streaming or not, long enough to be in flight when the fault strikes. `outcome` ends as
    "completed", "error-event" (a stream that got an error event, then [DONE]), "http-error <status>" (an error
    response in OpenAI's shape) or "cut: ..." (no explicit answer)."""

    def __init__(self, host, port, stream, max_tokens=2000, timeout=60):
        super().__init__(daemon=True)
        self.host, self.port, self.stream, self.max_tokens, self.timeout = host, port, stream, max_tokens, timeout
        self.outcome = None
        self.detail = ""
        self.first_token = threading.Event()
        self.ended_at = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - every way of being cut off is an outcome to report
            self.outcome = self.outcome or f"cut: {type(e).__name__}: {e}"
        self.ended_at = time.time()
        self.first_token.set()

    def _run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        body = {"prompt": "Once upon a time", "max_tokens": self.max_tokens, "ignore_eos": True,
                "temperature": 0, "stream": self.stream}
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        if not self.stream:
            self.first_token.set()  # sent: the whole answer comes at the end
        r = conn.getresponse()
        if r.status != 200:
            payload = json.loads(r.read().decode())
            ok = isinstance(payload, dict) and "message" in payload.get("error", {})
            self.outcome = f"http-error {r.status}" if ok else f"cut: status {r.status} without an error body"
            self.detail = payload.get("error", {}).get("message", "") if ok else ""
            return
        if not self.stream:
            payload = json.loads(r.read().decode())
            self.outcome = "completed" if payload.get("choices") else "cut: 200 without choices"
            return
        saw_error = False
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                self.outcome = "error-event" if saw_error else "completed"
                return
            event = json.loads(data)
            if "error" in event:
                saw_error = True
                self.detail = event["error"].get("message", "")
            else:
                self.first_token.set()
        self.outcome = "cut: the stream ended without [DONE]"


class HealthPoller(threading.Thread):
    """Polls /health every 0.1 s and records (time, status or None when nothing answers)."""

    def __init__(self, host, port):
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.samples = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            status = None
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=1)
                conn.request("GET", "/health")
                status = conn.getresponse().status
                conn.close()
            except OSError:
                pass
            self.samples.append((time.time(), status))
            time.sleep(0.1)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=5)

    def healthy_after(self, t):
        """Whether /health said 200 after time t (it must not, once the fault is known)."""
        return any(s == 200 for at, s in self.samples if at > t)

    def first_unhealthy(self, after):
        for at, s in self.samples:
            if at > after and s != 200:
                return at, s
        return None, None


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]  # a zombie is gone: it only waits to be reaped
    except OSError:
        return False
    return True


def wait_gone(pids, timeout):
    """Seconds until none of `pids` lives, or None if some still live after `timeout`."""
    start = time.time()
    while time.time() - start < timeout:
        if not any(alive(p) for p in pids):
            return time.time() - start
        time.sleep(0.05)
    return None
