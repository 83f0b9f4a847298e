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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def drive(url: str, make_request, concurrency: int, seconds: float, warmup: float = 0.5, pid: int | None = None):
    """``concurrency`` workers, each with its own keep-alive connection (an httpx pool shared by many
    connections costs the client more CPU than the server spends), send requests back to back for
    ``seconds``; returns latencies, statuses, kinds, rows and the CPU seconds of server and client meanwhile."""
    import httpx
    lat, statuses, kinds, rows = [], [], [], 0
    clients = [httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(concurrency)]
    cpu = [0.0, 0.0, 0.0, 0.0]
    try:
        t_start = time.perf_counter()
        t_measure = t_start + warmup
        t_end = t_measure + seconds
        counter = [0]

        async def worker(client):
            nonlocal rows
            while True:
                now = time.perf_counter()
                if now >= t_end:
                    return
                i = counter[0]
                counter[0] += 1
                kind, n, kw = make_request(i)
                t = time.perf_counter()
                r = await client.post(**kw)
                dt = time.perf_counter() - t
                if t >= t_measure:
                    lat.append(dt)
                    statuses.append(r.status_code)
                    kinds.append(kind)
                    if r.status_code == 200:
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
           "5xx": int((statuses >= 500).sum())}
    if kinds is not None:
        kinds = np.array(kinds)
        valid = kinds == "valid"
        row["malformed"] = int((~valid).sum())
        row["valid not 200"] = int((statuses[valid] != 200).sum())
        row["malformed not 4xx"] = int(((statuses[~valid] < 400) | (statuses[~valid] >= 500)).sum())
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-wait-ms", type=float, default=0.0)
    args = ap.parse_args(argv)
    import torch

    import ganad

    conc = [int(c) for c in args.concurrency.split(",")]
    X = synthetic_beats(4000)
    torch.set_num_threads(1)
    det = ganad.FAnoGAN(epochs=args.epochs, batch_size=256, random_state=0, verbose=False).fit(X[:3000])
    tmp = Path(tempfile.mkdtemp(prefix="ganad-bench-serve-"))
    model_dir = tmp / "beats"
    det.save(model_dir)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = start_server(model_dir, port, ["--max-body-mb", "16", "--max-wait-ms", str(args.max_wait_ms)], env=env)
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
    try:
        scenarios = [("single-row JSON", single), ("1000-row JSON", batch_json), ("1000-row NPY", batch_npy)]
        for name, make in scenarios:
            for c in conc:
                lat, st, _, nrows, cpu = asyncio.run(drive(url, make, c, args.seconds, pid=proc.pid))
                rows.append(summarise(name, c, args.seconds, lat, st, nrows, cpu))
                print(rows[-1], flush=True)
        lat, st, kinds, nrows, cpu = asyncio.run(drive(url, mixed, 16, args.seconds, pid=proc.pid))
        rows.append(summarise("single-row JSON, 10 % malformed", 16, args.seconds, lat, st, nrows, cpu, kinds))
        print(rows[-1], flush=True)
        import httpx
        metrics = httpx.get(url + "/metrics").text
        batches = [ln for ln in metrics.splitlines() if ln.startswith(("ganad_batch_requests_sum", "ganad_batch_requests_count"))]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    cols = ["scenario", "concurrency", "requests", "req/s", "rows/s", "p50 ms", "p99 ms", "server CPU %", "server CPU ms/req", "client CPU ms/req", "5xx", "malformed",
            "valid not 200", "malformed not 4xx"]
    table = markdown_table(rows, cols)
    print(table)
    print("\n".join(batches))
    write_json("serve.json", {"machine": machine(), "seconds": args.seconds, "epochs": args.epochs,
                              "max_wait_ms": args.max_wait_ms, "rows": rows, "batch_metrics": batches,
                              "server_exit_code": proc.returncode})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serve.md").write_text(table + "\n")
    print(f"server exit code after SIGTERM: {proc.returncode}")


if __name__ == "__main__":
    main()
