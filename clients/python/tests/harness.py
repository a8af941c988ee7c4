"""A real floatd server process for the Python tests and the conformance runner.

- ``FloatdServer``: ``node packages/server/dist/cli.js serve`` on a temp data dir (SQLite), or on a database of
  its own on PostgreSQL when FLOATD_TEST_STORE=postgres (created and dropped with the server's own test helper);
  optionally under libfaketime so tests can move the server's clock; ``kill()`` (SIGKILL) and ``start()`` again
  on the same data.
- ``Proxy``: a stable URL in front of the server; it can point at another server (an impostor), be down (every
  connection cut), or rewrite answers (a forged answer keeps the server's signature headers).
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable
from urllib.parse import urlsplit

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLI = os.path.join(ROOT, "packages", "server", "dist", "cli.js")
PG_HELPER = os.path.join(ROOT, "packages", "server", "dist", "testing", "pg.js")
TEST_KEY_ENCRYPTION_KEY = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="  # 32 bytes of 7, as testing/pg.ts
STORE = "postgres" if os.environ.get("FLOATD_TEST_STORE") == "postgres" else "sqlite"


def libfaketime() -> str | None:
    for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"):
        if os.path.exists(p):
            return p
    return None


def _node(script: str) -> str:
    r = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"node helper failed: {r.stderr}")
    return r.stdout.strip()


class FloatdServer:
    def __init__(self, *, faketime: bool = False, store: str = STORE) -> None:
        self.dir = tempfile.mkdtemp(prefix="floatd-py-")
        self.data_dir = os.path.join(self.dir, "data")
        self.offset_file = os.path.join(self.dir, "faketime")
        self.offset = 0.0
        self.faketime = faketime
        self.store = store
        self.db_url: str | None = None
        self.db_name: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.admin_token = ""
        self._out: list[str] = []
        if store == "postgres":
            out = json.loads(_node(f"import {{ createTempDatabase }} from {json.dumps(PG_HELPER)}; const d = await createTempDatabase(); console.log(JSON.stringify({{ url: d.url, name: d.name }}));"))
            self.db_url, self.db_name = out["url"], out["name"]
        with open(self.offset_file, "w") as f:
            f.write("+0\n")

    def start(self) -> "FloatdServer":
        env = {**os.environ, "FLOATD_RATE_LIMIT": "off"}
        if self.db_url:
            env["FLOATD_DATABASE_URL"] = self.db_url
            env["FLOATD_KEY_ENCRYPTION_KEY"] = TEST_KEY_ENCRYPTION_KEY
        if self.faketime:
            lib = libfaketime()
            if not lib:
                raise RuntimeError("libfaketime is not installed (apt-get install faketime)")
            env.update({"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": self.offset_file, "FAKETIME_NO_CACHE": "1"})
        self.proc = subprocess.Popen(["node", CLI, "serve", "--port", "0", "--data-dir", self.data_dir, "--log-level", "warn"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        assert self.proc.stdout
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("floatd exited before listening:\n" + "".join(self._out))
            self._out.append(line)
            m = re.search(r"listening on (http://[0-9.]+:\d+)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise RuntimeError("floatd did not start within 30 s")
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        tok = os.path.join(self.data_dir, "admin-token")
        for _ in range(400):
            if os.path.exists(tok) and open(tok).read().strip():
                self.admin_token = open(tok).read().strip()
                break
            time.sleep(0.025)
        return self

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout
        for line in proc.stdout:
            self._out.append(line)

    def kill(self) -> None:
        """SIGKILL: the server dies without a word (a crash, a pulled cable)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        self.kill()
        if self.db_name:
            _node(f"import postgres from 'postgres'; const a = postgres(process.env.FLOATD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', {{ max: 1, onnotice: () => {{}} }}); await a.unsafe('DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)'); await a.end();")
            self.db_name = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def advance(self, seconds: float) -> None:
        """Moves the server's clock forward (libfaketime); without faketime, an error."""
        if not self.faketime:
            raise RuntimeError("this server does not run under libfaketime")
        self.offset += seconds
        with open(self.offset_file, "w") as f:
            f.write(f"+{int(self.offset)}\n")

    # admin API (the harness's own calls; the SDK under test never uses these)
    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return _call(self.url, f"Bearer {self.admin_token}", method, path, body)

    def make_license(self, policy: dict[str, Any]) -> dict[str, Any]:
        s, product = self.admin("POST", "/v1/admin/products", {"name": "Conformance CAD"})
        assert s == 201, product
        s, lic = self.admin("POST", "/v1/admin/licenses", {"productId": product["id"], **policy})
        assert s == 201, lic
        return lic


def _call(base: str, auth: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    u = urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"authorization": auth, **({"content-type": "application/json"} if data else {})})
        r = c.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None
    finally:
        c.close()


Rewrite = Callable[[str, str, int, dict[str, str], bytes], "tuple[int, dict[str, str], bytes] | None"]


class Proxy:
    """Forwards every request to ``target`` byte for byte (headers included), unless down or rewriting."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = False
        self.rewrite: Rewrite | None = None
        self.requests: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                if proxy.down:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    proxy.requests.append((self.command, self.path, 0))
                    return
                u = urlsplit(proxy.target)
                try:
                    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                    hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                    c.request(self.command, self.path, body=body or None, headers=hdrs)
                    r = c.getresponse()
                    status, rh, raw = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
                    c.close()
                except OSError:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    proxy.requests.append((self.command, self.path, 0))
                    return
                if proxy.rewrite:
                    out = proxy.rewrite(self.command, self.path, status, rh, raw)
                    if out:
                        status, rh, raw = out
                proxy.requests.append((self.command, self.path, status))
                self.send_response(status)
                for k, v in rh.items():
                    if k not in ("connection", "transfer-encoding", "content-length", "keep-alive", "date", "server"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(raw)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(raw)
                self.close_connection = True

            do_GET = do_POST = do_PATCH = do_DELETE = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
