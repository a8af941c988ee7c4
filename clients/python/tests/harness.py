"""A real floatd server process for the Python tests and the conformance runner.

- ``FloatdServer``: ``node packages/server/dist/cli.js serve`` on a temp data dir (SQLite), or on a database of
  its own on PostgreSQL when FLOATD_TEST_STORE=postgres (created and dropped with the server's own test helper);
  optionally under libfaketime so tests can move the server's clock (on PostgreSQL the database then is a private
  PostgreSQL 15 cluster under the same libfaketime timestamp file, packages/server/src/testing/pgfaketime.ts, so the
  node's clock fence sees both clocks move together); ``kill()`` (SIGKILL) and ``start()`` again on the same data.
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
PG_FAKETIME_HELPER = os.path.join(ROOT, "packages", "server", "dist", "testing", "pgfaketime.js")
PROCESS_HELPER = os.path.join(ROOT, "packages", "server", "dist", "testing", "process.js")
TEST_KEY_ENCRYPTION_KEY = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="  # 32 bytes of 7, as testing/pg.ts
STORE = "postgres" if os.environ.get("FLOATD_TEST_STORE") == "postgres" else "sqlite"


def libfaketime() -> str | None:
    for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"):
        if os.path.exists(p):
            return p
    return None


def pg_cluster_unavailable() -> str | None:
    """Why a PostgreSQL cluster on a moved clock cannot run here (testing/pgfaketime.ts says), or None."""
    out = _node(f"import {{ faketimePostgresUnavailable }} from {json.dumps(PG_FAKETIME_HELPER)}; console.log(JSON.stringify(faketimePostgresUnavailable() ?? null));")
    why = json.loads(out)
    return str(why) if why else None


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
        self.cluster_dir: str | None = None
        self.server_env: dict[str, str] = {}
        with open(self.offset_file, "w") as f:
            f.write("+0\n")
        if store == "postgres" and faketime:
            # the node fences itself when its clock leaves the database's (service/clockFence.ts): a moved server
            # clock needs a database on the same moved clock (the cluster outlives the node helper: pg_ctl detaches it)
            out = json.loads(_node(f"import {{ startFaketimePostgres }} from {json.dumps(PG_FAKETIME_HELPER)}; const c = await startFaketimePostgres(); console.log(JSON.stringify({{ url: c.url, dir: c.dir, timestampFile: c.timestampFile, serverEnv: c.serverEnv }}));"))
            self.db_url, self.cluster_dir = out["url"], out["dir"]
            self.offset_file, self.server_env = out["timestampFile"], out["serverEnv"]
        elif store == "postgres":
            out = json.loads(_node(f"import {{ createTempDatabase }} from {json.dumps(PG_HELPER)}; const d = await createTempDatabase(); console.log(JSON.stringify({{ url: d.url, name: d.name }}));"))
            self.db_url, self.db_name = out["url"], out["name"]

    def start(self) -> "FloatdServer":
        env = {**os.environ, "FLOATD_RATE_LIMIT": "off"}
        if self.db_url:
            env["FLOATD_DATABASE_URL"] = self.db_url
            env["FLOATD_KEY_ENCRYPTION_KEY"] = TEST_KEY_ENCRYPTION_KEY
        if self.server_env:
            env.update(self.server_env)
        elif self.faketime:
            # (fakedClockEnv refuses when libfaketime is not installed) the server's monotonic clock moves with its wall clock: time passed, not a step (domain/clock.ts); the
            # environment is testing/process.ts's fakedClockEnv (libfaketime, and no event-loop delay histogram)
            env.update(json.loads(_node(f"import {{ fakedClockEnv }} from {json.dumps(PROCESS_HELPER)}; console.log(JSON.stringify(fakedClockEnv({json.dumps(self.offset_file)})));")))
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
        if self.cluster_dir:
            _node(f"import {{ stopFaketimePostgres }} from {json.dumps(PG_FAKETIME_HELPER)}; await stopFaketimePostgres({json.dumps(self.cluster_dir)});")
            self.cluster_dir = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def advance(self, seconds: float) -> None:
        """Moves the server's clock forward (libfaketime); without faketime, an error."""
        if not self.faketime:
            raise RuntimeError("this server does not run under libfaketime")
        self.offset += seconds
        # replaced, never rewritten in place: libfaketime reads the file at every clock read (FAKETIME_NO_CACHE),
        # and a read between the truncation and the write would see no offset (the real time) for an instant
        with open(self.offset_file + ".new", "w") as f:
            f.write(f"+{int(self.offset)}\n")
        os.replace(self.offset_file + ".new", self.offset_file)

    def settle(self) -> None:
        """After the harness moved the server's clock: waits until the server is done with what the move set off.

        Its timers run on its moved monotonic clock, so a move fires at once every timer it passed: keep-alive
        sockets close, background work starts, and on PostgreSQL a query in flight across moves can time out and
        be retried. /readyz answers 200 once the database answers, the node is not fenced and its storage is healthy.
        """
        time.sleep(0.1)
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = _call(self.url, "", "GET", "/readyz")
            except OSError as e:
                status = 0
                why: Any = e
            else:
                why = status
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server is not ready after its clock moved: {why}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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


def sdk_client(server: "FloatdServer", lic: dict[str, Any], state: Any, **kw: Any) -> Any:
    """A FloatingLicense on `lic` of `server`, with its own state directory under `state`, a fake clock and no exit hooks."""
    from floatd import FakeClock, FloatingLicense

    opts: dict[str, Any] = dict(server_url=server.url, license_key=lic["key"], state_dir=str(state / "state"), clock=FakeClock(),
                                handle_exit=False, random=lambda: 0.5)
    opts.update(kw)
    return FloatingLicense(**opts)
