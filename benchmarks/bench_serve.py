"""Load test of ``ganad serve``: a real uvicorn process on a free loopback port, driven by an httpx async client.

Trains a small f-AnoGAN on synthetic 256-sample beats (conv1d, ``benchmarks/common.py``), saves it,
starts ``python -m ganad.cli serve`` in a subprocess and measures, for each scenario:

- requests/s, rows/s and p50 / p99 latency at concurrency 1, 16 and 64 for single-row JSON requests
  and for 1,000-row requests (JSON rows and NPY bodies);
- a mixed run at concurrency 16 where every 10th request is malformed (bad JSON, wrong feature
  count, NaN, wrong content type, unknown model, empty body, oversized body): counts of 5xx, of
  valid requests that did not get 200 and of malformed ones that did not get a 4xx.

Client and server share this machine's cores, so the figures are a floor for the server alone.
Writes benchmarks/out/serve.json and benchmarks/out/serve.md and prints the table.

    python benchmarks/bench_serve.py                 # about 2 minutes
    python benchmarks/bench_serve.py --seconds 3     # shorter runs per scenario
    python benchmarks/bench_serve.py --client httpx  # the httpx client (about 5x the client CPU per request)
    python benchmarks/bench_serve.py --scenarios series --concurrency 1,16   # the series endpoint
    python benchmarks/bench_serve.py --scenarios multiview --concurrency 1,16   # a two-view model ({"views": ...} bodies)
    python benchmarks/bench_serve.py --scenarios multiview --server-src /tmp/old/src   # the same against an older server
    OMP_NUM_THREADS=1 python benchmarks/bench_serve.py --workers 2   # two forward passes at once, one thread each
    # per-recording thresholds: the server with --warm-up 300, single rows with and without ?recording= (100 recordings)
    python benchmarks/bench_serve.py --warm-up 300 --scenarios single,recording --concurrency 1,16
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, machine, markdown_table, synthetic_beats, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, port: int, extra=(), env=None, log: Path | None = None) -> subprocess.Popen:
    """The server's JSON log goes to ``log`` (a file: an unread pipe would fill up and stall the server)."""
    import httpx
    cmd = [sys.executable, "-m", "ganad.cli", "serve", str(model_dir), "--port", str(port), *extra]
    log = log or OUT / "serve_server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh, text=True, env=env)
    t0 = time.time()
    while time.time() - t0 < 120:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (a graceful shutdown), SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: one connection, one request at a time.

    It writes the request line, headers and body and reads the status line, the headers and a
    Content-Length (or chunked) body, reconnecting when the server closes the connection. Its CPU
    cost per request is a fraction of httpx's, which matters when client and server share two cores."""

    def __init__(self, url: str):
        from urllib.parse import urlsplit
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.r = self.w = None

    async def _connect(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    async def post(self, url: str, content: bytes, headers: dict, method: str = "POST"):
        if self.w is None:
            await self._connect()
        head = [f"{method} {url} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(content)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)
        try:
            line = await self.r.readline()
            if not line:
                raise ConnectionResetError("closed")
            status = int(line.split()[1])
            length, chunked, close = None, False, False
            while True:
                h = await self.r.readline()
                if h in (b"\r\n", b""):
                    break
                k, _, v = h.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"transfer-encoding" and b"chunked" in v.lower():
                    chunked = True
                elif k == b"connection" and b"close" in v.lower():
                    close = True
            if chunked:
                parts = []
                while True:
                    n = int((await self.r.readline()).split(b";")[0], 16)
                    parts.append(await self.r.readexactly(n + 2))
                    if n == 0:
                        break
                body = b"".join(p[:-2] for p in parts)
            else:
                body = await self.r.readexactly(length or 0)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            await self.aclose()
            return 0, b""  # no answer: counted as a failure (not 200, not 4xx)
        if close:
            await self.aclose()
        return status, body

    async def aclose(self):
        if self.w is not None:
            self.w.close()
            try:
                await self.w.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.r = self.w = None


class HttpxClient:
    def __init__(self, url: str):
        import httpx
        self.c = httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1))

    async def post(self, url, content, headers, method="POST"):
        r = await self.c.request(method, url, content=content, headers=headers)
        return r.status_code, r.content

    async def aclose(self):
        await self.c.aclose()


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}


async def drive(url: str, make_request, concurrency: int, seconds: float, warmup: float = 0.5, pid: int | None = None,
                client: str = "raw"):
    """``concurrency`` workers, each with its own keep-alive connection, send requests back to back
    for ``seconds``; returns latencies, statuses, kinds, rows and the CPU seconds of server and client meanwhile."""
    lat, statuses, kinds, rows = [], [], [], 0
    clients = [CLIENTS[client](url) for _ in range(concurrency)]
    cpu = [0.0, 0.0, 0.0, 0.0]
    try:
        t_start = time.perf_counter()
        t_measure = t_start + warmup
        t_end = t_measure + seconds
        counter = [0]

        async def worker(c):
            nonlocal rows
            while True:
                now = time.perf_counter()
                if now >= t_end:
                    return
                i = counter[0]
                counter[0] += 1
                kind, n, kw = make_request(i)
                t = time.perf_counter()
                status, _ = await c.post(kw["url"], kw.get("content", b""), kw.get("headers", {}), kw.get("method", "POST"))
                dt = time.perf_counter() - t
                if t >= t_measure:
                    lat.append(dt)
                    statuses.append(status)
                    kinds.append(kind)
                    if status == 200:
                        rows += n

        async def cpu_probe():
            await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))
            cpu[0], cpu[2] = (cpu_seconds(pid) if pid else float("nan")), time.process_time()
            await asyncio.sleep(max(0.0, t_end - time.perf_counter()))
            cpu[1], cpu[3] = (cpu_seconds(pid) if pid else float("nan")), time.process_time()
        await asyncio.gather(cpu_probe(), *(worker(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    return np.array(lat), np.array(statuses), kinds, rows, (cpu[1] - cpu[0], cpu[3] - cpu[2])


def summarise(name, concurrency, seconds, lat, statuses, rows, cpu, kinds=None):
    n = len(lat)
    server_cpu, client_cpu = cpu
    row = {"scenario": name, "concurrency": concurrency, "requests": n, "req/s": n / seconds, "rows/s": rows / seconds,
           "p50 ms": float(np.percentile(lat, 50) * 1e3) if n else float("nan"),
           "p99 ms": float(np.percentile(lat, 99) * 1e3) if n else float("nan"),
           "server CPU %": 100 * server_cpu / seconds,
           "server CPU ms/req": 1e3 * server_cpu / n if n else float("nan"),
           "client CPU ms/req": 1e3 * client_cpu / n if n else float("nan"),
           "5xx": int((statuses >= 500).sum()), "no answer": int((statuses == 0).sum()),
           "load avg": round(os.getloadavg()[0], 2)}
    if kinds is not None:
        kinds = np.array(kinds)
        valid = kinds == "valid"
        row["malformed"] = int((~valid).sum())
        row["valid not 200"] = int((statuses[valid] != 200).sum())
        row["malformed not 4xx"] = int(((statuses[~valid] < 400) | (statuses[~valid] >= 500)).sum())
    return row


def model_ceiling(det, X, seconds: float = 1.0) -> list[dict]:
    """Rows/s of ``det.decision_function`` in this process (one torch thread), the server's upper bound;
    also per CPU-second, which depends less on what else the machine runs."""
    out = []
    for n in (1, 16, 1000):
        batch = X[:n]
        det.decision_function(batch)
        t, c, k = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - t < seconds:
            det.decision_function(batch)
            k += 1
        dt, dc = (time.perf_counter() - t) / k, (time.process_time() - c) / k
        out.append({"rows per call": n, "ms per call": 1e3 * dt, "rows/s": n / dt, "CPU ms per call": 1e3 * dc,
                    "rows per CPU-second": n / dc, "load avg": round(os.getloadavg()[0], 2)})
    return out


def series_data() -> np.ndarray:
    t = np.arange(20000)
    return np.c_[np.sin(t / 20), np.cos(t / 33)] + 0.05 * np.random.RandomState(0).randn(len(t), 2)


def train_series(path: str, epochs: int) -> None:
    import torch

    from ganad.series import SeriesDetector
    torch.set_num_threads(1)
    sd = SeriesDetector("fanogan", window=64, stride=16, detector_params={"epochs": epochs, "random_state": 0, "verbose": False})
    sd.fit(series_data()[:6000]).save(path)


def series_scenarios(args, env, conc, me):
    """Streams of a 2-channel series model (window 64, stride 16): 100-point chunks, one stream per worker."""
    import orjson
    S = series_data()
    tmp = Path(tempfile.mkdtemp(prefix="ganad-bench-serve-series-"))
    subprocess.run(me + ["--train-series-only", str(tmp / "tele")], check=True, env=env)
    port = free_port()
    proc = start_server(tmp / "tele", port, [], env=env, log=OUT / "serve_series_server.log")
    url = f"http://127.0.0.1:{port}"
    chunks = [orjson.dumps({"points": S[i:i + 100].tolist()}) for i in range(6000, 20000 - 100, 100)]
    pos = {}
    J = {"content-type": "application/json"}

    def chunk(i):
        w = i % conc_now[0]
        k = pos.get(w, 0)
        pos[w] = k + 1
        return "valid", 100, dict(url=f"/v1/models/tele/series?stream_id=w{w}-{args.seed}", content=chunks[k % len(chunks)], headers=J)
    rows = []
    try:
        for c in conc:
            conc_now = [c]
            lat, st, _, n, cpu = asyncio.run(drive(url, chunk, c, args.seconds, pid=proc.pid, client=args.client))
            rows.append(summarise("series: 100-point JSON chunks (points/s in rows/s)", c, args.seconds, lat, st, n, cpu))
            print(rows[-1], flush=True)
    finally:
        stop_server(proc)
    return rows


def rhythm_data(n: int, seed: int = 0) -> np.ndarray:
    """Four RR-like features per beat (the rhythm view's shape)."""
    return (0.1 * np.random.RandomState(seed).randn(n, 4)).astype(np.float32)


def train_multiview(path: str, epochs: int) -> None:
    import torch

    import ganad
    torch.set_num_threads(1)
    X = synthetic_beats(3000)
    fast = {"epochs": epochs, "batch_size": 256, "random_state": 0, "verbose": False}
    ganad.MultiViewDetector({"beat": ganad.FAnoGAN(**fast), "rhythm": ganad.FAnoGAN(**fast)}).fit(
        {"beat": X, "rhythm": rhythm_data(3000)}).save(path)


def multiview_scenarios(args, env, senv, conc, me):
    """A two-view model (the f-AnoGAN beat model's view + a 4-feature rhythm view): JSON bodies
    {"views": {"beat": rows, "rhythm": rows}} of 1 and 1,000 samples, and NPZ bodies of 1,000."""
    import orjson
    X, R = synthetic_beats(4000)[3000:], rhythm_data(1000, seed=1)
    tmp = Path(tempfile.mkdtemp(prefix="ganad-bench-serve-mv-"))
    subprocess.run(me + ["--train-multiview-only", str(tmp / "mv")], check=True, env=env)
    port = free_port()
    proc = start_server(tmp / "mv", port, ["--max-body-mb", "16", "--max-wait-ms", str(args.max_wait_ms)], env=senv,
                        log=OUT / "serve_multiview_server.log")
    url = f"http://127.0.0.1:{port}"
    score = "/v1/models/mv/score"
    J = {"content-type": "application/json"}
    one = [orjson.dumps({"views": {"beat": X[i].reshape(1, -1).tolist(), "rhythm": R[i:i + 1].tolist()}}) for i in range(1000)]
    thousand = orjson.dumps({"views": {"beat": X.reshape(1000, -1).tolist(), "rhythm": R.tolist()}})
    buf = io.BytesIO()
    np.savez(buf, beat=X, rhythm=R)
    thousand_npz, Z = buf.getvalue(), {"content-type": "application/x-npz"}
    makers = [("multi-view single-row JSON", lambda i: ("valid", 1, dict(url=score, content=one[i % 1000], headers=J))),
              ("multi-view 1000-row JSON", lambda i: ("valid", 1000, dict(url=score, content=thousand, headers=J))),
              ("multi-view 1000-row NPZ", lambda i: ("valid", 1000, dict(url=score, content=thousand_npz, headers=Z)))]
    rows = []
    try:
        for name, make in makers:
            for c in conc:
                lat, st, _, n, cpu = asyncio.run(drive(url, make, c, args.seconds, pid=proc.pid, client=args.client))
                rows.append(summarise(name, c, args.seconds, lat, st, n, cpu))
                print(rows[-1], flush=True)
    finally:
        stop_server(proc)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-wait-ms", type=float, default=0.0)
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers (forward passes at once)")
    ap.add_argument("--client", choices=sorted(CLIENTS), default="raw",
                    help="raw: a minimal asyncio HTTP/1.1 client (low CPU per request); httpx: httpx.AsyncClient")
    ap.add_argument("--knn-weight", type=float, default=None, help="the model's knn_weight (default: the method's)")
    ap.add_argument("--knn-space", default=None, help="the model's knn_space (default: the method's, 'feature+input' since the nineteenth session)")
    ap.add_argument("--scenarios", default="single,json,npy,mixed",
                    help="comma-separated: single, json, npy, mixed, series, multiview")
    ap.add_argument("--server-src", default=None,
                    help="src/ folder the server runs (default: this checkout's), e.g. an older checkout for a before/after table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warm-up", type=int, default=0, help="the server's --warm-up (per-recording thresholds; scenario 'recording')")
    ap.add_argument("--train-only", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ceiling-only", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--train-series-only", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--train-multiview-only", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.train_series_only:
        train_series(args.train_series_only, args.epochs)
        return
    if args.train_multiview_only:
        train_multiview(args.train_multiview_only, args.epochs)
        return
    X = synthetic_beats(4000)

    if args.train_only:  # run in a subprocess: training leaves threads and memory the client must not share
        import torch

        import ganad
        torch.set_num_threads(1)
        extra = {} if args.knn_weight is None else {"knn_weight": args.knn_weight}
        if args.knn_space is not None:
            extra["knn_space"] = args.knn_space
        ganad.FAnoGAN(epochs=args.epochs, batch_size=256, random_state=0, verbose=False, **extra).fit(X[:3000]).save(args.train_only)
        return
    if args.ceiling_only:  # the model alone, in a fresh process like the server's
        import json

        import torch

        import ganad
        torch.set_num_threads(1)
        det = ganad.load(args.ceiling_only)
        print("CEILING " + json.dumps(model_ceiling(det, X[3000:])))
        return
    conc = [int(c) for c in args.concurrency.split(",")]
    wanted = set(args.scenarios.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="ganad-bench-serve-"))
    model_dir = tmp / "beats"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    me = [sys.executable, str(Path(__file__).resolve()), "--epochs", str(args.epochs)]
    if args.knn_weight is not None:
        me += ["--knn-weight", str(args.knn_weight)]
    if args.knn_space is not None:
        me += ["--knn-space", args.knn_space]
    subprocess.run(me + ["--train-only", str(model_dir)], check=True, env=env)
    senv = env if args.server_src is None else {  # the server's code (the models are trained by this checkout's)
        **env, "PYTHONPATH": os.pathsep.join([str(Path(args.server_src).resolve()), os.environ.get("PYTHONPATH", "")])}

    def ceiling_run():
        import json
        out = subprocess.run(me + ["--ceiling-only", str(model_dir)], check=True, env=env, capture_output=True, text=True).stdout
        return json.loads(next(ln for ln in out.splitlines() if ln.startswith("CEILING "))[8:])
    ceiling = ceiling_run()
    print("model alone (before):", ceiling, flush=True)
    port = free_port()
    proc = start_server(model_dir, port, ["--max-body-mb", "16", "--max-wait-ms", str(args.max_wait_ms)]
                        + (["--workers", str(args.workers)] if args.workers != 1 else [])
                        + (["--warm-up", str(args.warm_up)] if args.warm_up else []), env=senv)
    url = f"http://127.0.0.1:{port}"
    score = "/v1/models/beats/score"
    import orjson
    one = [orjson.dumps(X[3000 + i].reshape(1, -1).tolist()) for i in range(1000)]
    thousand_json = orjson.dumps(X[3000:4000].reshape(1000, -1).tolist())
    buf = io.BytesIO()
    np.save(buf, X[3000:4000])
    thousand_npy = buf.getvalue()
    J, N = {"content-type": "application/json"}, {"content-type": "application/x-npy"}
    bad_row = X[3000].reshape(-1).tolist()
    malformed = [
        ("bad json", dict(url=score, content=b"[[0.1, 0.2", headers=J)),
        ("wrong feature count", dict(url=score, content=orjson.dumps([bad_row[:255]]), headers=J)),
        ("nan", dict(url=score, content=orjson.dumps([["NaN"] + bad_row[1:]]), headers=J)),
        ("wrong content type", dict(url=score, content=one[0], headers={"content-type": "text/plain"})),
        ("unknown model", dict(url="/v1/models/nope/score", content=one[0], headers=J)),
        ("empty body", dict(url=score, content=b"", headers=J)),
        ("oversized body", dict(url=score, content=b"[" * (17 * 1024 * 1024), headers=J)),
        ("not rows", dict(url=score, content=b'{"instances": 3}', headers=J)),
    ]

    def single(i):
        return "valid", 1, dict(url=score, content=one[i % 1000], headers=J)

    def single_recording(i):  # 100 recordings in turn, each past its warm-up after 300 of its rows
        return "valid", 1, dict(url=f"{score}?recording=r{i % 100}", content=one[i % 1000], headers=J)

    def batch_json(i):
        return "valid", 1000, dict(url=score, content=thousand_json, headers=J)

    def batch_npy(i):
        return "valid", 1000, dict(url=score, content=thousand_npy, headers=N)

    def mixed(i):
        if i % 10 == 9:
            k = (i // 10) % len(malformed)
            if malformed[k][0] == "oversized body" and (i // 10) % (4 * len(malformed)) >= len(malformed):
                k = 0  # the 17 MiB body only every 4th round: it costs the client more than the server
            return malformed[k][0], 0, malformed[k][1]
        return single(i)

    rows = []
    batches = []
    try:
        known = {k: (k, name, make) for k, name, make in (("single", "single-row JSON", single), ("json", "1000-row JSON", batch_json),
                                                          ("npy", "1000-row NPY", batch_npy),
                                                          ("recording", "single-row JSON, ?recording= (--warm-up)", single_recording))}
        scenarios = [known[k] for k in args.scenarios.split(",") if k in known]  # in the order given
        if "recording" in wanted and not args.warm_up:
            raise SystemExit("scenario 'recording' needs --warm-up N (the server's per-recording thresholds)")
        for _, name, make in scenarios:
            for c in conc:
                lat, st, _, nrows, cpu = asyncio.run(drive(url, make, c, args.seconds, pid=proc.pid, client=args.client))
                rows.append(summarise(name, c, args.seconds, lat, st, nrows, cpu))
                print(rows[-1], flush=True)
        if "mixed" in wanted:
            lat, st, kinds, nrows, cpu = asyncio.run(drive(url, mixed, 16, args.seconds, pid=proc.pid, client=args.client))
            rows.append(summarise("single-row JSON, 10 % malformed", 16, args.seconds, lat, st, nrows, cpu, kinds))
            print(rows[-1], flush=True)
        import httpx
        metrics = httpx.get(url + "/metrics").text
        batches = [ln for ln in metrics.splitlines() if ln.startswith(("ganad_batch_requests_sum", "ganad_batch_requests_count"))]
    finally:
        stop_server(proc)
    if "series" in wanted:
        rows += series_scenarios(args, senv, conc, me)
    if "multiview" in wanted:
        rows += multiview_scenarios(args, env, senv, conc, me)
    after = ceiling_run()
    print("model alone (after):", after, flush=True)
    cols = ["scenario", "concurrency", "requests", "req/s", "rows/s", "p50 ms", "p99 ms", "server CPU %", "server CPU ms/req",
            "client CPU ms/req", "5xx", "no answer", "malformed", "valid not 200", "malformed not 4xx", "load avg"]
    table = markdown_table(rows, cols)
    ceil_rows = [{"when": w, **r} for w, rs in (("before", ceiling), ("after", after)) for r in rs]
    ceil_table = markdown_table(ceil_rows, ["when", "rows per call", "ms per call", "rows/s", "CPU ms per call", "rows per CPU-second",
                                             "load avg"])
    print(table)
    print("\nmodel alone (decision_function in a fresh process, 1 torch thread):\n" + ceil_table)
    print("\n".join(batches))
    write_json("serve.json", {"machine": machine(), "seconds": args.seconds, "epochs": args.epochs, "client": args.client,
                              "knn_weight": args.knn_weight, "knn_space": args.knn_space, "max_wait_ms": args.max_wait_ms, "workers": args.workers, "rows": rows,
                              "model_alone": ceil_rows, "batch_metrics": batches, "server_exit_code": proc.returncode})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serve.md").write_text(table + "\n\n" + ceil_table + "\n")
    print(f"server exit code after SIGTERM: {proc.returncode}")


if __name__ == "__main__":
    main()
