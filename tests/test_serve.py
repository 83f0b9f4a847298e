"""The HTTP scoring service: the same scores as the library, refusals with the library's words,
auth, metrics, reload with an atomic swap, and a real server (batching, SIGHUP, graceful stop)."""

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
with warnings.catch_warnings():  # starlette's TestClient asks for httpx2, which is not needed here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import ganad  # noqa: E402
from ganad.exceptions import InputError, ModelFileError  # noqa: E402
from ganad.serve import ServeSettings, create_app  # noqa: E402
from ganad.serve.batcher import MicroBatcher  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SRC = Path(__file__).resolve().parents[1] / "src"
KW = dict(epochs=2, latent_dim=4, width=8, batch_size=64, random_state=0, verbose=False, device="cpu")


def _vectors(n=300, d=6, seed=0):
    rng = np.random.RandomState(seed)
    return (rng.randn(n, d) @ rng.randn(d, d) * 0.5).astype(np.float32)


def _beats(n=200, length=32, seed=0):
    rng = np.random.RandomState(seed)
    t = np.linspace(0, 1, length)
    return (np.sin(2 * np.pi * t * rng.uniform(1, 2, (n, 1))) + 0.05 * rng.randn(n, length))[:, None].astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():  # tiny models: a second torch thread only contends (20x slower fits on a busy machine)
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    X = _vectors()
    vec = ganad.FAnoGAN(**KW).fit(X)
    vec.save(d / "vec")
    S = _beats()
    ser = ganad.FAnoGAN(**KW).fit(S)
    ser.save(d / "beats")
    return {"dir": d, "X": X, "vec": ganad.load(d / "vec"), "S": S, "beats": ganad.load(d / "beats")}


@pytest.fixture(scope="module")
def client(models):
    app = create_app([models["dir"] / "vec", models["dir"] / "beats"])
    with TestClient(app) as c:
        yield c


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _npy_header(shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _score(client, body, ct, name="vec", params=""):
    return client.post(f"/v1/models/{name}/score{params}", content=body, headers={"content-type": ct})


# ---------------------------------------------------------------------- same scores as the library
def test_every_body_format_gives_the_library_scores(client, models):
    X, det = models["X"][:20], models["vec"]
    want = det.decision_function(X)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    pq = io.BytesIO()
    df.to_parquet(pq)
    bodies = [(json.dumps(X.tolist()), "application/json"),
              (json.dumps({"instances": X.tolist()}), "application/json; charset=utf-8"),
              (df.to_csv(index=False), "text/csv"),
              (pq.getvalue(), "application/vnd.apache.parquet"),
              (_npy(X), "application/x-npy")]
    for body, ct in bodies:
        r = _score(client, body, ct)
        assert r.status_code == 200, (ct, r.text)
        out = r.json()
        np.testing.assert_allclose(out["scores"], want, rtol=1e-5, atol=1e-6, err_msg=ct)
        assert out["labels"] == (np.asarray(out["scores"]) > det.threshold_).astype(int).tolist()
        assert out["n"] == 20 and out["threshold"] == pytest.approx(det.threshold_) and out["model"] == "vec"
    r = _score(client, df.to_csv(index=False, header=False), "text/csv", params="?csv_header=false")
    np.testing.assert_allclose(r.json()["scores"], want, rtol=1e-5, atol=1e-6)


def test_components_and_map_on_request(client, models):
    X, det = models["X"][:5], models["vec"]
    ref = det.score_components(X, return_map=True)
    r = client.post("/v1/models/vec/score?components=true", json={"instances": X.tolist(), "map": True}).json()
    assert set(r["components"]) == set(ref.components)
    for k, v in ref.components.items():
        np.testing.assert_allclose(r["components"][k], v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["map"], ref.map, rtol=1e-5, atol=1e-6)
    plain = client.post("/v1/models/vec/score", json=X.tolist()).json()
    assert "components" not in plain and "map" not in plain


def test_series_rows_flat_or_nested(client, models):
    S, det = models["S"][:7], models["beats"]
    want = det.decision_function(S)
    for rows in (S.tolist(), S.reshape(7, -1).tolist()):
        r = client.post("/v1/models/beats/score", json=rows)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["scores"], want, rtol=1e-5, atol=1e-6)
    r = client.post("/v1/models/beats/score?map=true", content=_npy(S), headers={"content-type": "application/x-npy"})
    assert np.asarray(r.json()["map"]).shape == S.shape


def test_model_description_and_list(client, models):
    info = client.get("/v1/models/beats").json()
    det = models["beats"]
    assert info["method"] == "FAnoGAN" and info["input_shape"] == [1, 32] and info["n_features_in"] == 32
    assert info["threshold"] == pytest.approx(det.threshold_) and len(info["version"]) == 12
    assert info["params"]["latent_dim"] == 4
    # what `ganad info` reports, for whoever operates the service
    d = info["description"]
    assert d["kind"] == "detector" and d["method"] == "FAnoGAN" and d["input"]["shape"] == [1, 32]
    assert d["threshold"]["value"] == pytest.approx(det.threshold_, rel=1e-6) and "selection" in d["training"]
    names = [m["name"] for m in client.get("/v1/models").json()["models"]]
    assert names == ["vec", "beats"]
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/models/{name}/score"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv", "application/x-npy", "application/vnd.apache.parquet"} <= set(body)
    assert "ScoreResponse" in spec["components"]["schemas"]


# ---------------------------------------------------------------------- refusal without harm
def _library_message(det, X):
    with pytest.raises(InputError) as exc:
        det._validate_for_scoring(X, "request body")
    return str(exc.value)


def test_refusals_carry_the_library_message(client, models):
    det = models["vec"]
    X = models["X"][:3].copy()
    wrong = X[:, :5]
    r = client.post("/v1/models/vec/score", json=wrong.tolist())
    assert r.status_code == 422 and r.json()["error"]["message"] == _library_message(det, wrong)
    assert "expecting 6 features" in r.json()["error"]["message"]
    bad = X.copy()
    bad[1, 2] = np.nan
    rows = X.tolist()
    rows[1][2] = "NaN"  # JSON has no NaN literal; the library reads the string as NaN, and so does the service
    for body, ct in ((_npy(bad), "application/x-npy"), (json.dumps(rows), "application/json")):
        r = _score(client, body, ct)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"] == _library_message(det, bad), ct
    rows = X.tolist()
    rows[0][0] = "abc"
    r = client.post("/v1/models/vec/score", json=rows)
    assert r.status_code == 422 and "non-numeric" in r.json()["error"]["message"]


@pytest.mark.parametrize("body, ct, status, words", [
    (b"[[0.1, 0.2", "application/json", 400, "is not valid JSON"),
    (b"", "application/json", 400, "is empty"),
    (b"[]", "application/json", 422, "holds no rows"),
    (b'{"rows": [[1]]}', "application/json", 422, "unknown key(s) ['rows']"),
    (b'{"instances": 3}', "application/json", 422, "where rows are expected"),
    (b'{"instances": [[1,2,3,4,5,6]], "map": "yes"}', "application/json", 422, "use true or false"),
    (b"[[1,2],[3]]", "application/json", 422, "request body"),
    (b"[[1,2,3,4,5,6]]", "text/plain", 415, "Content-Type: is 'text/plain'"),
    (b"[[1,2,3,4,5,6]]", None, 415, "Content-Type: is 'missing'"),
    (b"\x93NUMPY garbage", "application/x-npy", 400, "cannot be read as NPY"),
    (_npy(np.array([[1, "a"]], dtype=object)), "application/x-npy", 400, "object arrays are refused"),
    (b"not parquet", "application/vnd.apache.parquet", 400, "cannot be read as Parquet"),
    (_npy_header((10 ** 12, 6)) + b"\0" * 48, "application/x-npy", 400, "but the body holds 48 bytes"),
    (b"a,b\n1,x\n", "text/csv", 422, "non-numeric"),
    (b"a,b\n", "text/csv", 422, "no data rows"),
])
def test_bad_bodies_are_4xx_and_the_worker_survives(client, models, body, ct, status, words):
    headers = {} if ct is None else {"content-type": ct}
    r = client.post("/v1/models/vec/score", content=body, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["status"] == status and words in err["message"] and "Fix:" in err["message"]
    ok = client.post("/v1/models/vec/score", json=models["X"][:2].tolist())
    assert ok.status_code == 200 and client.get("/readyz").status_code == 200


def test_unknown_model_path_method_and_query(client):
    r = client.post("/v1/models/nope/score", json=[[1.0]])
    assert r.status_code == 404 and "model 'nope': is not served here" in r.json()["error"]["message"]
    assert client.get("/v1/models/nope").status_code == 404
    assert client.get("/v2/anything").status_code == 404
    assert client.get("/v1/models/vec/score").status_code == 405
    r = client.post("/v1/models/vec/score?components=maybe", json=[[1.0] * 6])
    assert r.status_code == 422 and "components" in r.json()["error"]["message"]


def test_oversized_body_is_413_before_scoring(models):
    app = create_app([models["dir"] / "vec"], ServeSettings(max_body_bytes=4000))
    with TestClient(app) as c:
        big = json.dumps(np.zeros((200, 6)).tolist())
        assert len(big) > 4000
        r = c.post("/v1/models/vec/score", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "larger than the server's limit of 4000 bytes" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit holds while the body streams in
            for _ in range(10):
                yield b"[" * 500
        r = c.post("/v1/models/vec/score", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        pq = io.BytesIO()  # 8,000 zeros compress below the body limit but expand over 8x of it
        pd.DataFrame(np.zeros((2000, 4)), columns=list("abcd")).to_parquet(pq)
        assert len(pq.getvalue()) < 4000
        r = c.post("/v1/models/vec/score", content=pq.getvalue(), headers={"content-type": "application/vnd.apache.parquet"})
        assert r.status_code == 413 and "once decoded" in r.json()["error"]["message"]
        assert c.post("/v1/models/vec/score", json=[[0.0] * 6]).status_code == 200


def test_bearer_token(models, tmp_path):
    app = create_app([models["dir"] / "vec"], ServeSettings(token="s3cret"))
    with TestClient(app) as c:
        rows = [[0.0] * 6]
        assert c.post("/v1/models/vec/score", json=rows).status_code == 401
        r = c.post("/v1/models/vec/score", json=rows, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/models/vec/score", json=rows, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/metrics").status_code == 401 and c.get("/v1/models").status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        # the bodies docs/serve.md gives (the schema's unset fields were sent as null)
        assert c.get("/healthz").json() == {"status": "ok"} and c.get("/readyz").json() == {"status": "ok", "models": ["vec"]}
        assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "http://evil.example"}).headers


def test_cors_only_for_the_origins_given(models):
    app = create_app([models["dir"] / "vec"], ServeSettings(cors_origins=["http://monitor.example"], token="t"))
    with TestClient(app) as c:
        ok = c.get("/v1/models", headers={"Origin": "http://monitor.example", "Authorization": "Bearer t"})
        assert ok.headers["access-control-allow-origin"] == "http://monitor.example"
        pre = c.options("/v1/models/vec/score", headers={"Origin": "http://monitor.example", "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200  # the preflight carries no token and is answered before the token check
        for method, headers in (("POST", "authorization,content-type,x-stream-id"), ("DELETE", "authorization")):  # series streams
            pre = c.options("/v1/models/vec/series/s1", headers={"Origin": "http://monitor.example", "Access-Control-Request-Method": method,
                                                                 "Access-Control-Request-Headers": headers})
            assert pre.status_code == 200, (method, pre.text)
        assert "access-control-allow-origin" not in c.get("/v1/models", headers={"Origin": "http://evil.example", "Authorization": "Bearer t"}).headers


def test_metrics_count_requests_errors_and_rows(models):
    app = create_app([models["dir"] / "vec"])
    with TestClient(app) as c:
        c.post("/v1/models/vec/score", json=models["X"][:4].tolist())
        c.post("/v1/models/vec/score", content=b"[[", headers={"content-type": "application/json"})
        text = c.get("/metrics").text
    assert 'ganad_http_requests_total{route="/v1/models/{name}/score",method="POST",status="200"} 1' in text
    assert 'ganad_http_requests_total{route="/v1/models/{name}/score",method="POST",status="400"} 1' in text
    assert 'ganad_http_errors_total{route="/v1/models/{name}/score",type="MalformedBody"} 1' in text
    assert 'ganad_rows_scored_total{model="vec"} 4' in text
    assert "ganad_http_requests_in_flight 1" in text  # the /metrics request itself
    assert 'ganad_http_request_duration_seconds_count{route="/v1/models/{name}/score"} 2' in text
    assert "# TYPE ganad_http_request_duration_seconds histogram" in text


# ---------------------------------------------------------------------- start-up and reload
def test_a_model_that_cannot_load_fails_startup(models, tmp_path):
    with pytest.raises(ModelFileError, match="is not a model directory"):
        create_app([tmp_path / "missing"])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match=r"model 'broken' .* is not valid JSON"):
        create_app([models["dir"] / "vec", tmp_path / "broken"])
    from ganad.cli import app as cli
    r = CliRunner().invoke(cli, ["serve", str(tmp_path / "broken"), "--port", "0"])
    assert r.exit_code != 0 and "is not valid JSON" in " ".join(r.output.split())
    r = CliRunner().invoke(cli, ["serve", str(models["dir"] / "vec"), f"other={models['dir'] / 'vec'}", "vec=" + str(models["dir"] / "beats")])
    assert r.exit_code != 0 and "same name 'vec'" in " ".join(r.output.split())
    for extra, words in ((["--recordings-save-every", "5"], "without --recordings-state"),
                         (["--warm-up", "30", "--recordings-state", str(tmp_path / "r.json"), "--recordings-save-every", "-1"], "recordings-save-every")):
        r = CliRunner().invoke(cli, ["serve", str(models["dir"] / "vec"), "--port", "0", *extra])
        assert r.exit_code != 0 and words in " ".join(r.output.split()) and not (tmp_path / "r.json").exists()


def test_serve_help_shows_an_example():
    from ganad.cli import app as cli
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "ganad serve" in r.output and "127.0.0.1" in r.output


def test_admin_reload_swaps_and_a_broken_reload_keeps_the_old_model(tmp_path):
    X = _vectors(seed=1)
    ganad.FAnoGAN(**KW).fit(X).save(tmp_path / "m")
    app = create_app([tmp_path / "m"])
    with TestClient(app) as c:
        v1 = c.get("/v1/models/m").json()["version"]
        s1 = c.post("/v1/models/m/score", json=X[:5].tolist()).json()
        new = ganad.FAnoGAN(**{**KW, "random_state": 3}).fit(X)
        new.save(tmp_path / "m")
        r = c.post("/v1/admin/reload")
        assert r.status_code == 200, r.text
        v2 = r.json()["reloaded"][0]["version"]
        assert v2 != v1 and c.get("/v1/models/m").json()["version"] == v2
        s2 = c.post("/v1/models/m/score", json=X[:5].tolist()).json()
        assert s2["version"] == v2 and s1["version"] == v1
        np.testing.assert_allclose(s2["scores"], new.decision_function(X[:5]), rtol=1e-5, atol=1e-6)
        assert not np.allclose(s1["scores"], s2["scores"])
        (tmp_path / "m" / "model.safetensors").write_bytes(b"truncated")
        r = c.post("/v1/admin/reload?model=m")
        assert r.status_code == 409 and "old model keeps serving" in r.json()["error"]["message"]
        s3 = c.post("/v1/models/m/score", json=X[:5].tolist()).json()
        assert s3["version"] == v2 and s3["scores"] == s2["scores"]
        assert c.post("/v1/admin/reload?model=nope").status_code == 404
        assert 'ganad_model_reloads_total{model="m",result="error"} 1' in c.get("/metrics").text


# ---------------------------------------------------------------------- the micro-batcher
class _Recorder:
    """A stand-in detector: score = row sum; raises on a row holding -1; records each pass's size."""

    def __init__(self):
        self.passes = []

    def decision_function(self, X):
        self.passes.append(len(X))
        if (X == -1).any():
            raise InputError("X: holds -1. Fix: do not")
        return X.sum(axis=1).astype(np.float64)


def test_concurrent_requests_share_one_pass_and_a_failure_stays_with_its_request():
    from concurrent.futures import ThreadPoolExecutor
    det = _Recorder()

    async def main():
        with ThreadPoolExecutor(1) as ex:
            b = MicroBatcher(det, ex, name="t", max_batch_rows=100, max_wait_ms=0)
            b.start()
            futs = [b.submit(np.full((2, 3), i, dtype=np.float32)) for i in range(10)]
            res = await asyncio.gather(*futs)
            assert [r.scores.tolist() for r in res] == [[3.0 * i, 3.0 * i] for i in range(10)]
            assert det.passes == [20]  # ten requests, one forward pass
            det.passes.clear()
            futs = [b.submit(np.full((1, 3), v, dtype=np.float32)) for v in (1, -1, 2)]
            out = await asyncio.gather(*futs, return_exceptions=True)
            assert out[0].scores.tolist() == [3.0] and out[2].scores.tolist() == [6.0]
            assert out[1].status == 422 and "holds -1" in out[1].message
            assert det.passes == [3, 1, 1, 1]  # the failed pass, then one request at a time
            det.passes.clear()
            futs = [b.submit(np.zeros((40, 3), dtype=np.float32)) for _ in range(5)]
            await asyncio.gather(*futs)
            assert det.passes == [80, 80, 40]  # max_batch_rows holds
            assert b.alive
            await b.close()
            assert not b.alive
    asyncio.run(main())


def test_a_full_queue_is_503_with_retry_after():
    from concurrent.futures import ThreadPoolExecutor
    from ganad.serve.errors import Refusal

    async def main():
        with ThreadPoolExecutor(1) as ex:
            b = MicroBatcher(_Recorder(), ex, name="t", max_queue=2)
            b.start()
            futs = [b.submit(np.zeros((1, 3), dtype=np.float32)) for _ in range(2)]
            with pytest.raises(Refusal) as exc:
                b.submit(np.zeros((1, 3), dtype=np.float32))
            assert exc.value.status == 503 and exc.value.headers["Retry-After"] == "1" and "--max-queue" in exc.value.message
            await asyncio.gather(*futs)
            await b.close()
    asyncio.run(main())


# ---------------------------------------------------------------------- a real server
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(model_dir, log, *args):
    """``ganad serve MODEL_DIR`` in a real process on a free port, once /readyz answers 200:
    (process, base URL). Its stderr goes to ``log`` (a file: an unread pipe fills up and stalls the server)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "ganad.cli", "serve", str(model_dir), "--port", str(port), *args],
                                stderr=fh, stdout=subprocess.DEVNULL, env=env, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, url


def test_real_server_batches_reloads_on_sighup_and_stops_gracefully(models, tmp_path):
    X = _vectors(seed=2)
    first = ganad.FAnoGAN(**KW).fit(X)
    first.save(tmp_path / "m")
    second = ganad.FAnoGAN(**{**KW, "random_state": 5}).fit(X)
    log = tmp_path / "server.log"
    proc, url = _start_server(tmp_path / "m", log, "--max-wait-ms", "300", "--access-log")
    try:
        rows = X[:16]
        want = {"old": first.decision_function(rows), "new": second.decision_function(rows)}
        # the server merges these single-row requests into passes of varying size; a component computed
        # with a batch-size-dependent algorithm (torch.cdist's matrix-multiply path) moves a score by up
        # to ~1e-3, so the check is at 2e-3: far below the gap between the two models, which it must tell apart
        tol = dict(rtol=0, atol=2e-3)
        assert np.abs(want["old"] - want["new"]).mean() > 0.05
        results = []

        def call(i):
            r = httpx.post(url + "/v1/models/m/score", json=rows[i:i + 1].tolist(), timeout=30)
            results.append((i, r.status_code, r.json()))
        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(s == 200 for _, s, _ in results)
        v_old = results[0][2]["version"]
        for i, _, out in results:
            np.testing.assert_allclose(out["scores"], want["old"][i:i + 1], **tol)
        m = httpx.get(url + "/metrics").text
        n_req = float(m.split('ganad_batch_requests_sum{model="m"} ')[1].split()[0])
        n_pass = float(m.split('ganad_batch_requests_count{model="m"} ')[1].split()[0])
        assert n_req / n_pass > 2  # 16 concurrent requests went through far fewer forward passes

        # SIGHUP while requests are in flight: each answer is wholly the old or wholly the new model
        second.save(tmp_path / "m")
        results.clear()
        threads = [threading.Thread(target=call, args=(i % 16,)) for i in range(24)]
        for k, t in enumerate(threads):
            t.start()
            if k == 8:
                proc.send_signal(signal.SIGHUP)
        for t in threads:
            t.join()
        for i, s, out in results:
            assert s == 200
            which = "old" if out["version"] == v_old else "new"
            np.testing.assert_allclose(out["scores"], want[which][i:i + 1], **tol)
        for _ in range(100):
            if httpx.get(url + "/v1/models/m").json()["version"] != v_old:
                break
            time.sleep(0.1)
        out = httpx.post(url + "/v1/models/m/score", json=rows[:1].tolist()).json()
        assert out["version"] != v_old
        np.testing.assert_allclose(out["scores"], want["new"][:1], **tol)

        assert httpx.post(url + "/v1/models/nope/score", json=[[0.0]]).status_code == 404  # logged as refused

        # SIGTERM with a request waiting in the batcher: it is answered before the process exits
        late = []
        t = threading.Thread(target=lambda: late.append(httpx.post(url + "/v1/models/m/score", json=rows[:2].tolist(), timeout=30)))
        t.start()
        for _ in range(200):  # until the request is in the server (the /metrics request is the other one)
            m = httpx.get(url + "/metrics").text
            if float(m.split("\nganad_http_requests_in_flight ")[1].split()[0]) >= 2:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        t.join()
        proc.wait(30)
        assert late and late[0].status_code == 200 and len(late[0].json()["scores"]) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logs = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    msgs = [rec["msg"] for rec in logs]
    assert "serving" in msgs and "model reloaded" in msgs and "stopped" in msgs
    assert any(rec.get("status") == 200 and rec.get("path") == "/v1/models/m/score" for rec in logs)
    assert any(rec["msg"] == "refused" and rec.get("type") == "UnknownModel" and "Fix:" in rec["error"] for rec in logs)


# ---------------------------------------------------------------------- the series endpoint
def _telemetry(T=1200, seed=0):
    rng = np.random.RandomState(seed)
    t = np.arange(T)
    return np.c_[np.sin(t / 20), np.cos(t / 33)] + 0.05 * rng.randn(T, 2)


@pytest.fixture(scope="module")
def series_model(tmp_path_factory):
    from ganad.series import SeriesDetector
    d = tmp_path_factory.mktemp("serve-series")
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={k: v for k, v in KW.items() if k != "batch_size"})
    sd.fit(_telemetry(), channel_names=["a", "b"]).save(d / "tele")
    Y = _telemetry(700, seed=1)
    Y[300:315, 1] += 3.0  # an anomaly in channel b
    return {"dir": d / "tele", "sd": ganad.load(d / "tele"), "Y": Y}


@pytest.fixture(scope="module")
def series_client(series_model, models):
    app = create_app([series_model["dir"], models["dir"] / "vec"], ServeSettings(max_streams=3))
    with TestClient(app) as c:
        yield c


def _chunk_request(kind, sid, pts):
    """A POST of ``pts`` to stream ``sid`` in one of the body formats the endpoint reads."""
    url = "/v1/models/tele/series"
    if kind == "json":
        return dict(url=url, json={"stream_id": sid, "points": pts.tolist()})
    if kind == "npy":
        return dict(url=url + f"?stream_id={sid}", content=_npy(pts), headers={"content-type": "application/x-npy"})
    if kind == "csv":  # extra columns and another order: the model's channel names pick the columns
        df = pd.DataFrame({"time": np.arange(len(pts)), "b": pts[:, 1], "a": pts[:, 0]})
        return dict(url=url, content=df.to_csv(index=False), headers={"content-type": "text/csv", "X-Stream-Id": sid})
    return dict(url=url + f"?stream_id={sid}", json=pts.tolist())  # a bare list of points


def _collect(outs):
    idx = np.concatenate([np.asarray(o["index"], dtype=int) for o in outs])
    s = np.concatenate([np.asarray(o["scores"], dtype=float) for o in outs])
    return idx, s, [e for o in outs for e in o["opened"]], [e for o in outs for e in o["closed"]]


def test_series_stream_in_random_chunks_equals_batch_scoring_on_a_real_server(series_model, tmp_path):
    sd, Y = series_model["sd"], series_model["Y"]
    batch = sd.score_series(Y)
    Z = Y[::-1].copy()  # a second stream, interleaved with the first
    batch_z = sd.score_series(Z)
    proc, url = _start_server(series_model["dir"], tmp_path / "server.log")
    try:
        info = httpx.get(url + "/v1/models/tele").json()
        assert info["kind"] == "series" and info["series"]["window"] == 16 and info["series"]["channels"] == ["a", "b"]
        assert info["series"]["event_gap"] == sd.event_gap_ == 16  # the resolved gap (the parameter says None: one window)
        rng = np.random.RandomState(0)
        outs = {"y": [], "z": []}
        pos, emitted = {"y": 0, "z": 0}, {"y": 0, "z": 0}
        kinds = ["json", "npy", "csv", "bare"]
        with httpx.Client(base_url=url, timeout=60) as c:
            k = 0
            while pos["y"] < len(Y) or pos["z"] < len(Z):
                for sid, data in (("y", Y), ("z", Z)):
                    if pos[sid] >= len(data):
                        continue
                    n = int(rng.randint(1, 60))
                    r = c.post(**_chunk_request(kinds[k % 4], sid, data[pos[sid]:pos[sid] + n]))
                    k += 1
                    assert r.status_code == 200, r.text
                    out = r.json()
                    assert out["new_stream"] == (pos[sid] == 0) and out["received"] == len(data[pos[sid]:pos[sid] + n])
                    pos[sid] += n
                    assert out["n_seen"] == min(pos[sid], len(data))
                    if out["index"]:
                        emitted[sid] = out["index"][-1] + 1
                    assert out["n_seen"] - emitted[sid] <= info["series"]["latency_points"] + 1  # a point waits at most this long
                    outs[sid].append(out)
            for sid in ("y", "z"):
                r = c.delete(f"/v1/models/tele/series/{sid}")
                assert r.status_code == 200 and r.json()["ended"], r.text
                outs[sid].append(r.json())
            assert c.delete("/v1/models/tele/series/y").status_code == 404  # ended streams are forgotten
            metrics = c.get("/metrics").text
        for sid, ref in (("y", batch), ("z", batch_z)):
            idx, s, opened, closed = _collect(outs[sid])
            np.testing.assert_array_equal(idx, np.arange(len(Y)))
            # the same windows and aggregation; float32 round-off of the network may depend on the
            # number of windows in one pass, hence the tolerance (as in tests/test_series.py)
            np.testing.assert_allclose(s, ref.scores, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref.scores).max())))
            labels = np.concatenate([o["labels"] for o in outs[sid]])
            np.testing.assert_array_equal(labels, ref.labels)
            assert [e["start"] for e in opened] == ref.events.start.tolist()
            assert [e["end"] for e in closed] == ref.events.end.tolist() and len(closed) >= 1
            assert [e["channels"] for e in closed] == ref.events.channels.tolist()
        hit = [e for e in _collect(outs["y"])[3] if e["start"] <= 314 and e["end"] >= 300]
        assert len(hit) == 1 and hit[0]["channels"].startswith("b=")
        assert f'ganad_stream_points_total{{model="tele"}} {2 * len(Y)}' in metrics
        assert 'ganad_streams{model="tele"} 0' in metrics
    finally:
        proc.terminate()
        proc.wait(30)


def test_series_refusals_carry_the_library_message(series_client, series_model):
    from ganad.series.stream import StreamScorer
    c, sd, Y = series_client, series_model["sd"], series_model["Y"]

    def lib(points):
        with pytest.raises(InputError) as exc:
            StreamScorer(sd).update(points)
        return str(exc.value)
    three = np.c_[Y[:5], Y[:5, :1]]
    r = c.post("/v1/models/tele/series", json={"stream_id": "r1", "points": three.tolist()})
    assert r.status_code == 422 and r.json()["error"]["message"] == lib(three) and "the model has 2" in r.text
    r = c.post("/v1/models/tele/series", json={"stream_id": "r1", "values": Y[:5, 0].tolist()})
    assert r.status_code == 422 and r.json()["error"]["message"] == lib(Y[:5, :1])
    bad = Y[:5].copy()
    bad[2, 1] = np.nan
    rows = Y[:5].tolist()
    rows[2][1] = "NaN"
    for req in (dict(json={"stream_id": "r1", "points": rows}),
                dict(url_q="?stream_id=r1", content=_npy(bad), headers={"content-type": "application/x-npy"})):
        q = req.pop("url_q", "")
        r = c.post("/v1/models/tele/series" + q, **req)
        assert r.status_code == 422 and r.json()["error"]["message"] == lib(bad), r.text
    assert "r1" not in c.app.state.registry.entries["tele"].streams.streams  # refused chunks start no stream
    cases = [
        (dict(json={"points": Y[:3].tolist()}), 422, "stream_id: is missing"),
        (dict(json={"stream_id": "a b", "points": Y[:3].tolist()}), 422, "letters, digits"),
        (dict(json={"stream_id": "s", "points": Y[:3].tolist(), "values": [1.0]}), 422, "both 'points' and 'values'"),
        (dict(json={"stream_id": "s", "rows": []}), 422, "unknown key(s) ['rows']"),
        (dict(json={"stream_id": "s", "points": []}), 422, "holds no points"),
        (dict(json={"stream_id": "s", "values": [[1.0, 2.0]]}), 422, "holds lists"),
        (dict(json={"stream_id": "s", "points": Y[:3].tolist(), "components": "yes"}), 422, "use true or false"),
        (dict(content=b'{"stream_id": "s", "points": [[1, 2]', headers={"content-type": "application/json"}), 400, "not valid JSON"),
        (dict(content=b"1,2", headers={"content-type": "text/plain"}), 415, "Content-Type"),
        (dict(json={"stream_id": "s", "points": Y[:3].tolist()}, headers={"X-Stream-Id": "t"}), 422, "differs between"),
        (dict(json={"stream_id": ["s"], "points": Y[:3].tolist()}), 422, "not a string"),  # was a 500 (unhashable)
        (dict(json={"stream_id": {"s": 1}, "points": Y[:3].tolist()}, headers={"X-Stream-Id": "s"}), 422, "not a string"),
        (dict(json={"stream_id": "s", "points": [[1.0, 2.0], [1.0]]}), 422, "cannot be read as numbers"),  # ragged: was a 500
    ]
    for req, status, words in cases:
        r = c.post("/v1/models/tele/series", **req)
        assert r.status_code == status and words in r.json()["error"]["message"] and "Fix:" in r.json()["error"]["message"], (words, r.text)
    r = c.post("/v1/models/vec/series", json={"stream_id": "s", "points": [[0.0] * 6]})
    assert r.status_code == 422 and r.json()["error"]["type"] == "NotASeriesModel" and "--window" in r.text
    r = c.post("/v1/models/tele/score", json=Y[:2].tolist())
    assert r.status_code == 422 and r.json()["error"]["type"] == "SeriesModel" and "/v1/models/tele/series" in r.text
    assert c.delete("/v1/models/tele/series/never").status_code == 404
    assert c.delete("/v1/models/vec/series/s").status_code == 422
    # a stream shorter than one window cannot be scored when it ends: the library's words, and it is gone
    assert c.post("/v1/models/tele/series", json={"stream_id": "short", "points": Y[:5].tolist()}).json()["index"] == []
    r = c.delete("/v1/models/tele/series/short")
    assert r.status_code == 422 and "shorter than the window (16)" in r.json()["error"]["message"]
    assert c.delete("/v1/models/tele/series/short").status_code == 404
    ok = c.post("/v1/models/tele/series?components=true", json={"stream_id": "ok", "points": Y[:40].tolist()}).json()
    assert np.asarray(ok["contributions"]).shape == (len(ok["index"]), 2) and len(ok["index"]) > 0
    c.delete("/v1/models/tele/series/ok")
    spec = c.get("/openapi.json").json()
    assert {"application/json", "application/x-npy", "text/csv"} <= set(spec["paths"]["/v1/models/{name}/series"]["post"]["requestBody"]["content"])
    assert "delete" in spec["paths"]["/v1/models/{name}/series/{stream_id}"] and "SeriesResponse" in spec["components"]["schemas"]


def test_streams_are_bounded_ordered_and_dropped_on_reload(series_model, tmp_path):
    import shutil
    from concurrent.futures import ThreadPoolExecutor
    from ganad.serve.errors import Refusal
    from ganad.serve.streams import StreamTable
    sd, Y = series_model["sd"], series_model["Y"]

    async def main():
        with ThreadPoolExecutor(1) as ex:
            t = StreamTable(sd, ex, name="tele", max_streams=2, idle_s=60)
            # chunks of one stream sent at once are scored in arrival order (one lock per stream)
            chunks = np.array_split(Y[:200], 9)
            res = await asyncio.gather(*(t.update("a", ch) for ch in chunks))
            idx = np.concatenate([u.index for u, _, _ in res])
            assert [n for _, _, n in res] == np.cumsum([len(ch) for ch in chunks]).tolist()
            ref = sd.stream()
            want = ref.update(Y[:200])
            np.testing.assert_array_equal(idx, want.index)
            np.testing.assert_allclose(np.concatenate([u.scores for u, _, _ in res]), want.scores, rtol=1e-5, atol=1e-5)
            await t.update("b", Y[:20])
            await t.update("a", Y[200:210])  # a is now the most recently used
            _, new, _ = await t.update("c", Y[:20])  # over max_streams: b (least recently used) is evicted
            assert new and list(t.streams) == ["a", "c"]
            _, new, n = await t.update("b", Y[20:30])
            assert new and n == 10 and list(t.streams) == ["c", "b"]
            # idle streams are dropped on the next request after stream_idle_s
            assert t.sweep(now=time.monotonic() + 61) == 2 and len(t) == 0
            # a new stream is refused (503) only when every stream has a chunk in flight
            t.max_streams = 1
            slow = asyncio.ensure_future(t.update("x", Y[:400]))
            await asyncio.sleep(0)
            with pytest.raises(Refusal) as exc:
                await t.update("y", Y[:5])
            assert exc.value.status == 503 and "--max-streams" in exc.value.message
            assert t.sweep(now=time.monotonic() + 61) == 0 and "x" in t.streams  # busy: never dropped as idle
            await slow
    asyncio.run(main())

    shutil.copytree(series_model["dir"], tmp_path / "tele")
    app = create_app([tmp_path / "tele"])
    with TestClient(app) as c:
        assert c.post("/v1/models/tele/series", json={"stream_id": "s", "points": Y[:50].tolist()}).json()["new_stream"]
        assert not c.post("/v1/models/tele/series", json={"stream_id": "s", "points": Y[50:60].tolist()}).json()["new_stream"]
        assert c.post("/v1/admin/reload").status_code == 200
        out = c.post("/v1/models/tele/series", json={"stream_id": "s", "points": Y[60:70].tolist()}).json()
        assert out["new_stream"] and out["n_seen"] == 10  # the reload dropped the stream: it starts again at 0
        assert 'ganad_streams_dropped_total{model="tele",reason="reload"} 1' in c.get("/metrics").text


def test_stream_settings_are_checked():
    from ganad.exceptions import GanadError
    with pytest.raises(GanadError, match="max-streams"):
        ServeSettings(max_streams=0)
    with pytest.raises(GanadError, match="stream-idle-s"):
        ServeSettings(stream_idle_s=-1)


def test_the_fast_validation_path_returns_what_the_library_would(models):
    from ganad.serve.app import prepare
    for name, X in (("vec", models["X"][:5]), ("beats", models["S"][:5])):
        det = models[name]
        flat = np.ascontiguousarray(X.reshape(len(X), -1), dtype=np.float32)
        got = prepare(det, flat)
        want = det._validate_for_scoring(X, "request body")
        assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
        bad = flat.copy()
        bad[1, 0] = np.inf  # not finite: the library's path and message
        with pytest.raises(InputError, match="NaN or infinite"):
            prepare(det, bad)
        with pytest.raises(InputError):
            prepare(det, flat[:, :-1])


def test_a_reload_that_changes_the_inputs_is_served_and_logged(tmp_path, caplog):
    import logging
    ganad.FAnoGAN(**KW).fit(_vectors(seed=1)).save(tmp_path / "m")
    app = create_app([tmp_path / "m"])
    with TestClient(app) as c:
        wider = np.random.RandomState(2).randn(len(_vectors(seed=1)), _vectors(seed=1).shape[1] + 2).astype(np.float32)
        ganad.FAnoGAN(**KW).fit(wider).save(tmp_path / "m")
        with caplog.at_level(logging.WARNING):
            assert c.post("/v1/admin/reload").status_code == 200
        assert "reloaded model takes other inputs" in caplog.text
        assert c.post("/v1/models/m/score", json=wider[:2].tolist()).status_code == 200


def test_workers_run_passes_at_once_and_all_stop_on_close():
    """--workers 2: two forward passes in flight at once (the second pass starts while the first
    waits for it), each request still gets its own rows' scores, and close() stops every worker."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from ganad.serve.errors import Refusal

    class Paired(_Recorder):
        def __init__(self):
            super().__init__()
            self.barrier = threading.Barrier(2, timeout=10)

        def decision_function(self, X):
            if len(self.passes) < 2:
                self.passes.append(len(X))
                self.barrier.wait()  # raises BrokenBarrierError unless a second pass runs meanwhile
            return X.sum(axis=1).astype(np.float64)

    det = Paired()

    async def main():
        with ThreadPoolExecutor(2) as ex:
            b = MicroBatcher(det, ex, name="t", max_batch_rows=4, workers=2)
            b.start()
            futs = [b.submit(np.full((4, 3), i, dtype=np.float32)) for i in range(6)]
            res = await asyncio.gather(*futs)
            assert [r.scores.tolist() for r in res] == [[3.0 * i] * 4 for i in range(6)]
            assert det.passes == [4, 4] and b.alive
            await b.close()
            assert not b.alive and all(t.done() for t in b._tasks)
            with pytest.raises(Refusal) as exc:
                b.submit(np.zeros((1, 3), dtype=np.float32))
            assert exc.value.status == 503
    asyncio.run(main())


def test_workers_setting_and_thread_share(monkeypatch):
    import torch
    from ganad.exceptions import GanadError
    from ganad.serve.server import share_threads
    with pytest.raises(GanadError, match="workers"):
        ServeSettings(workers=0)
    with pytest.raises(GanadError, match="at most 256"):
        ServeSettings(workers=100_000)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        monkeypatch.setenv("OMP_NUM_THREADS", "4")
        assert share_threads(2) == 4  # the user said how many: left alone
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert share_threads(1) == 4
        assert share_threads(2) == 2
        assert share_threads(8) == 1
    finally:
        torch.set_num_threads(before)


def test_real_server_with_two_workers_scores_like_the_library(models, tmp_path):
    det = models["beats"]
    proc, url = _start_server(models["dir"] / "beats", tmp_path / "w2.log", "--workers", "2")
    try:
        X = models["S"][:40]

        async def send():
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                rs = await asyncio.gather(*[c.post("/v1/models/beats/score", json=X[i:i + 4].reshape(4, -1).tolist())
                                            for i in range(0, 40, 4)])
            return rs
        rs = asyncio.run(send())
        assert all(r.status_code == 200 for r in rs)
        got = np.concatenate([r.json()["scores"] for r in rs])
        np.testing.assert_allclose(got, det.decision_function(X), rtol=1e-5, atol=1e-6)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # uvicorn re-raises SIGTERM after its graceful shutdown (exit status -15)
    assert '"msg": "stopped"' in (tmp_path / "w2.log").read_text()  # both workers drained and stopped


def test_workers_lose_no_request_when_batches_overflow():
    """Two workers, requests that do not fit one pass (one waits for the next): every request is
    answered with its own scores, whichever worker takes it (a worker waiting on the queue must not
    drop the request another worker held back for its next pass)."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    class Slow(_Recorder):
        def decision_function(self, X):
            time.sleep(random.random() * 0.002)
            return X.sum(axis=1).astype(np.float64)

    async def main():
        rnd = random.Random(0)
        with ThreadPoolExecutor(2) as ex:
            b = MicroBatcher(Slow(), ex, name="t", max_batch_rows=10, workers=2)
            b.start()
            futs = []
            for i in range(300):
                futs.append(b.submit(np.full((rnd.randint(1, 10), 3), i, dtype=np.float32)))
                if rnd.random() < 0.3:
                    await asyncio.sleep(rnd.random() * 0.002)
            res = await asyncio.wait_for(asyncio.gather(*futs), timeout=60)
            assert all((r.scores == 3.0 * i).all() for i, r in enumerate(res))
            await b.close()
    asyncio.run(main())


def test_a_cancelled_chunk_keeps_its_stream_locked_until_its_thread_is_done():
    """--workers 2 (two scoring threads), a series request cancelled while its chunk is scored (the
    client went away under a server that cancels, a timeout middleware): the stream's next chunk must
    not run on the same scorer at the same time (a StreamScorer is not safe for two threads at once;
    with one scoring thread the executor made them wait, with two only the stream's lock does)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace
    from ganad.serve.streams import StreamTable

    class Scorer:
        closed, n_seen = False, 0

        def __init__(self):
            self.active, self.overlap, self.lock = 0, False, threading.Lock()

        def update(self, pts):
            with self.lock:
                self.active += 1
                self.overlap |= self.active > 1
            time.sleep(0.3)
            with self.lock:
                self.active -= 1
                self.n_seen += len(pts)
            return SimpleNamespace(closed=[])

    scorer = Scorer()

    async def main():
        with ThreadPoolExecutor(2) as ex:
            t = StreamTable(SimpleNamespace(stream=lambda: scorer), ex, name="tele")
            first = asyncio.ensure_future(t.update("s", np.zeros((3, 2))))
            await asyncio.sleep(0.1)  # the first chunk is being scored on one thread
            first.cancel()
            await t.update("s", np.zeros((4, 2)))  # the other thread is free
            assert not scorer.overlap and scorer.n_seen == 7
    asyncio.run(main())


def test_series_csv_header_naming_other_columns_is_refused_not_read_by_position(series_client, series_model):
    # the model's channels are a, b: a header 'pressure,temp' (or 'a,c') was read by position as a, b,
    # silently scoring other sensors as the model's channels (`ganad stream` refuses such a header)
    Y = series_model["Y"][:40]
    for cols in (["pressure", "temp"], ["a", "c"]):
        df = pd.DataFrame(dict(zip(cols, Y.T)))
        r = series_client.post("/v1/models/tele/series", content=df.to_csv(index=False),
                               headers={"content-type": "text/csv", "X-Stream-Id": "hdr"})
        assert r.status_code == 422 and "the model's channels are ['a', 'b']" in r.json()["error"]["message"], r.text
        pq = io.BytesIO()
        df.to_parquet(pq)
        r = series_client.post("/v1/models/tele/series", content=pq.getvalue(),
                               headers={"content-type": "application/vnd.apache.parquet", "X-Stream-Id": "hdr"})
        assert r.status_code == 422 and "channels are ['a', 'b']" in r.text, r.text
    assert "hdr" not in series_client.app.state.registry.entries["tele"].streams.streams
    # without a header, the values are the channels in the model's order
    r = series_client.post("/v1/models/tele/series?csv_header=false", content=pd.DataFrame(Y).to_csv(index=False, header=False),
                           headers={"content-type": "text/csv", "X-Stream-Id": "hdr"})
    assert r.status_code == 200 and r.json()["n_seen"] == 40
    series_client.delete("/v1/models/tele/series/hdr")
    # a model without channel names (ch0, ch1) still reads every column by position
    from ganad.serve.decode import decode_series
    df, _, _ = decode_series(b"pressure,temp\n1,2\n", "text/csv", channels=["ch0", "ch1"])
    assert list(df.columns) == ["pressure", "temp"]


def test_stream_delete_after_idle_expiry_and_racing_chunks_and_a_refused_first_chunk(series_model):
    from concurrent.futures import ThreadPoolExecutor
    from ganad.serve.errors import Refusal
    from ganad.serve.streams import StreamTable
    sd, Y = series_model["sd"], series_model["Y"]

    class Failing:  # a model whose window scores fail (a non-finite score): the scorer refuses the chunk
        def __getattr__(self, k):
            return getattr(sd, k)

        def stream(self):
            from ganad.series.stream import StreamScorer
            return StreamScorer(self)

        def _score_windows(self, w):
            if np.abs(w).max() > 100:
                raise InputError("windows: non-finite score. Fix: none")
            return sd._score_windows(w)

        def _score_windows_at(self, w, *args, **kw):  # (the scorer's entry: windows and where they start)
            return self._score_windows(w)

    async def main():
        with ThreadPoolExecutor(1) as ex:
            t = StreamTable(sd, ex, name="tele", max_streams=10, idle_s=0.05)
            await t.update("idle", Y[:40])
            await asyncio.sleep(0.1)
            # DELETE of a stream idle past stream_idle_s: 404 as for any dropped stream (it was scored and
            # ended, while its next chunk would have started a new stream)
            with pytest.raises(Refusal) as exc:
                await t.end("idle")
            assert exc.value.status == 404
            # a chunk that waited while its too-short stream was ended (422): 409, not fed to the forgotten scorer
            t.idle_s = 0
            await t.update("short", Y[:5])
            res = await asyncio.gather(t.update("short", Y[5:8]), t.end("short"), t.update("short", Y[8:10]), return_exceptions=True)
            assert isinstance(res[1], InputError) and isinstance(res[2], Refusal) and res[2].status == 409, res
            assert "short" not in t.streams
            # a first chunk refused by the scorer starts no stream
            t2 = StreamTable(Failing(), ex, name="tele", max_streams=10, idle_s=0)
            bad = Y[:40].copy()
            bad[3, 0] = 1e3
            with pytest.raises(InputError):
                await t2.update("f", bad)
            assert "f" not in t2.streams
            _, new, n = await t2.update("f", Y[:40])
            assert new and n == 40
    asyncio.run(main())


def test_a_csv_header_naming_a_column_twice_is_refused(client, series_client, series_model):
    """pandas renames a repeated name's copy 'a.1': /series scored the first 'a' and dropped the copy,
    /score read the columns by position, where `ganad score` and `ganad stream` refuse such a header."""
    Y = series_model["Y"][:40]
    body = "a,b,a\n" + "\n".join(f"{u},{v},{u + 100}" for u, v in Y) + "\n"
    r = series_client.post("/v1/models/tele/series", content=body, headers={"content-type": "text/csv", "X-Stream-Id": "dup"})
    assert r.status_code == 422 and "duplicate column name(s) ['a']" in r.json()["error"]["message"], r.text
    X = _vectors()[:3]
    cols = [f"f{i}" for i in range(X.shape[1])]
    cols[-1] = cols[0]
    body = ",".join(cols) + "\n" + "\n".join(",".join(map(str, row)) for row in X) + "\n"
    r = client.post("/v1/models/vec/score", content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 422 and "duplicate column name(s) ['f0']" in r.json()["error"]["message"], r.text


def test_ending_an_unknown_stream_names_the_model_in_the_fix(series_client):
    r = series_client.delete("/v1/models/tele/series/nosuch")
    assert r.status_code == 404 and "/v1/models/tele/series" in r.json()["error"]["message"] and "{name}" not in r.text


def test_a_port_in_use_is_a_cli_error(models):
    """uvicorn exits (status 3) on an address it cannot bind; `ganad serve` says which address and the fix,
    with its own exit status, as every CLI error."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "ganad.cli", "serve", str(models["dir"] / "vec"), "--port", str(port)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert f"--port {port}: could not be bound" in r.stderr and "Fix: choose a free port" in r.stderr


def test_a_client_that_leaves_mid_body_is_a_499_not_a_logged_500():
    """A /series client that closed its connection before its body arrived was logged as "unexpected
    error" with a ClientDisconnect traceback and counted as a 500 (a bug in ganad, per serve.md)."""
    import asyncio
    from starlette.requests import ClientDisconnect
    from ganad.serve.app import _read_body
    from ganad.serve.errors import Refusal

    class Leaving:
        headers = {"content-length": "1000"}

        async def stream(self):
            yield b"[[1, 2]"
            raise ClientDisconnect()
    with pytest.raises(Refusal) as e:
        asyncio.run(_read_body(Leaving(), 10**6))
    assert e.value.status == 499 and e.value.type == "ClientDisconnect"


def test_nonfinite_components_and_maps_follow_on_nonfinite_in_the_library_and_the_service(tmp_path):
    """Maps audit (twenty-fifth session): one bright pixel (1e20, finite) overflowed the float32 networks
    while the default score (a float64 knn distance) stayed finite, so only the score was guarded: the
    components came back inf / NaN (AnoGAN's whole map NaN) and the service answered 200 with JSON null."""
    rng = np.random.RandomState(0)
    X = (0.3 + 0.1 * rng.rand(200, 1, 8, 8)).astype(np.float32)
    det = ganad.FAnoGAN(**KW).fit(X[:150])
    det.save(tmp_path / "img")
    T = X[150:153].copy()
    T[1, 0, 2, 2] = 1e20
    s = det.decision_function(T)  # the default score reads the knn distance alone: finite, the row most anomalous
    assert np.isfinite(s).all() and s.argmax() == 1
    with pytest.raises(InputError, match=r"row\(s\) \[1\] \(1 of 3\) get non-finite values \(NaN / inf\) in .*latent_norm"):
        det.score_components(T, return_map=True)
    det.on_nonfinite = "max"
    r = det.score_components(T, return_map=True)
    assert any(np.isinf(v[1]) for v in r.components.values())
    assert all(np.isfinite(v[[0, 2]]).all() and not np.isnan(v).any() for v in r.components.values())
    assert not np.isnan(r.map).any() and np.isfinite(r.map[[0, 2]]).all()
    with TestClient(create_app([tmp_path / "img"])) as c:
        b = io.BytesIO()
        np.save(b, T)
        resp = c.post("/v1/models/img/score?components=true", content=b.getvalue(), headers={"Content-Type": "application/x-npy"})
        assert resp.status_code == 422 and "non-finite values" in resp.json()["error"]["message"]
        ok = c.post("/v1/models/img/score", content=b.getvalue(), headers={"Content-Type": "application/x-npy"})
        assert ok.status_code == 200 and None not in ok.json()["scores"]
        # a map alone: the components nobody asked for do not refuse the row (review of this change)
        m = c.post("/v1/models/img/score?map=true", content=b.getvalue(), headers={"Content-Type": "application/x-npy"})
        assert m.status_code == 200 and np.asarray(m.json()["map"]).shape == T.shape
    del det.on_nonfinite  # 'raise' again
    assert det.explain(T).shape == T.shape  # explain reads the score's components only
    from ganad.cli import app
    from ganad.benchmark.runner import run_one
    np.save(tmp_path / "t.npy", T)
    r = CliRunner().invoke(app, ["score", str(tmp_path / "img"), str(tmp_path / "t.npy"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output  # the plain score: the row scored, the most anomalous
    assert pd.read_csv(tmp_path / "s.csv")["score"].idxmax() == 1
    r = CliRunner().invoke(app, ["score", str(tmp_path / "img"), str(tmp_path / "t.npy"), "--components", "-o", str(tmp_path / "s2.csv")])
    assert r.exit_code == 2 and "non-finite values" in r.output
    res = run_one("ganad", "fanogan", X[:150], T, seed=0, epochs=1, peer_epochs=1, log=lambda s: None)
    assert res["error"] is None and np.isfinite(res["scores"]).all()  # the diagnostic columns do not fail the run


def test_series_csv_header_with_spaces_after_commas_names_the_channels(series_client, series_model):
    """A header written with a space after each comma ('time, b, a') names ' b', ' a' (pandas keeps the
    spaces): /series refused it as naming other columns, where `ganad stream`, fit and score read it."""
    Y = series_model["Y"][:40]
    body = "time, b, a\n" + "\n".join(f"{i}, {v}, {u}" for i, (u, v) in enumerate(Y)) + "\n"
    r = series_client.post("/v1/models/tele/series", content=body, headers={"content-type": "text/csv", "X-Stream-Id": "sp"})
    assert r.status_code == 200 and r.json()["n_seen"] == 40, r.text
    series_client.delete("/v1/models/tele/series/sp")
    from ganad.serve.decode import decode_series
    df, _, _ = decode_series(body.encode(), "text/csv", channels=["a", "b"])
    assert list(df.columns) == ["a", "b"] and np.allclose(df.to_numpy(), Y)
    # every field quoted (csv.QUOTE_ALL), as pandas reads it
    df, _, _ = decode_series(b'"time","b","a"\n"0","2.5","1.5"\n', "text/csv", channels=["a", "b"])
    assert df.to_numpy().tolist() == [[1.5, 2.5]]


# ---------------------------------------------------------------------- per-recording thresholds (--warm-up)
def test_recordings_get_their_own_threshold_after_their_warm_up(models, tmp_path):
    """Two recordings sent in chunks, interleaved, one noisier than the training data: the answers' thresholds
    and warm-up flags are ganad.scoring.adaptive.prefix_threshold's on each whole recording; a recording over
    --max-streams evicts the least recently used one, which starts anew."""
    from ganad.scoring.adaptive import prefix_threshold
    det = models["vec"]
    rng = np.random.RandomState(3)
    rec = {"p1": (2.0 * rng.randn(90, 6)).astype(np.float32), "p2": rng.randn(70, 6).astype(np.float32)}
    app = create_app([models["dir"] / "vec"], ServeSettings(warm_up=30, warm_up_fpr=0.1, max_streams=2))
    got = {k: {"thresholds": [], "warm_up": [], "labels": [], "scores": []} for k in rec}
    with TestClient(app) as c:
        for start in range(0, 90, 20):
            for k, X in rec.items():
                part = X[start:start + 20]
                if not len(part):
                    continue
                params = f"?recording={k}" if k == "p1" else ""
                headers = {"content-type": "application/json", **({"x-recording-id": k} if k == "p2" else {})}
                r = c.post(f"/v1/models/vec/score{params}", content=json.dumps(part.tolist()), headers=headers)
                assert r.status_code == 200, r.text
                a = r.json()
                assert a["recording"] == k and a["new_recording"] == (start == 0)
                for f in got[k]:
                    got[k][f] += a[f]
        assert a["recording_state"] == {"threshold": a["thresholds"][-1]}
        s = np.concatenate([got[k]["scores"] for k in rec])
        g = np.concatenate([[k] * len(X) for k, X in rec.items()])
        tau, warm = prefix_threshold(s, g, None, 30, fpr=0.1, threshold=det.threshold_)
        np.testing.assert_allclose(np.concatenate([got[k]["thresholds"] for k in rec]), tau)
        np.testing.assert_array_equal(np.concatenate([got[k]["warm_up"] for k in rec]), warm.astype(int))
        np.testing.assert_array_equal(np.concatenate([got[k]["labels"] for k in rec]), (s > tau).astype(int))
        assert max(got["p1"]["thresholds"]) > det.threshold_  # the noisier recording's own threshold is raised
        # a request without a recording: the model's threshold, as before
        r = c.post("/v1/models/vec/score", content=json.dumps(rec["p1"][:3].tolist()), headers={"content-type": "application/json"})
        assert "thresholds" not in r.json() and r.json()["threshold"] == pytest.approx(det.threshold_)
        # a third recording evicts p2 (least recently used); p2 then starts a new warm-up
        r = c.post("/v1/models/vec/score?recording=p3", content=json.dumps(rec["p2"][:2].tolist()), headers={"content-type": "application/json"})
        assert r.json()["new_recording"] and r.json()["recording_state"] == {"warm_up": 2}
        r = c.post("/v1/models/vec/score?recording=p2", content=json.dumps(rec["p2"][:2].tolist()), headers={"content-type": "application/json"})
        assert r.json()["new_recording"] and r.json()["warm_up"] == [1, 1]
        assert 'reason="recording_evicted"' in c.get("/metrics").text
        # refusals: a bad id, two different ids, and (next server) a recording without --warm-up
        for params, headers, words in (("?recording=a%20b", {}, "recording"), ("?recording=a", {"x-recording-id": "b"}, "X-Recording-Id")):
            r = c.post(f"/v1/models/vec/score{params}", content=json.dumps(rec["p2"][:2].tolist()),
                       headers={"content-type": "application/json", **headers})
            assert r.status_code == 422 and words in r.json()["error"]["message"]
    with TestClient(create_app([models["dir"] / "vec"])) as c:
        r = c.post("/v1/models/vec/score?recording=p1", content=json.dumps(rec["p1"][:2].tolist()), headers={"content-type": "application/json"})
        assert r.status_code == 422 and "--warm-up" in r.json()["error"]["message"]


def test_recordings_of_a_multi_view_model(tmp_path):
    from ganad.scoring.adaptive import prefix_threshold
    rng = np.random.RandomState(0)
    Xtr = {"beat": rng.randn(200, 1, 16).astype(np.float32), "rhythm": rng.randn(200, 3).astype(np.float32)}
    mv = ganad.MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params=KW).fit(Xtr)
    mv.save(tmp_path / "mv")
    Xte = {"beat": rng.randn(40, 1, 16).astype(np.float32), "rhythm": (1.5 * rng.randn(40, 3)).astype(np.float32)}
    with TestClient(create_app([tmp_path / "mv"], ServeSettings(warm_up=10))) as c:
        thr, sc = [], []
        for start in (0, 15, 30):
            body = {"views": {v: a[start:start + 15].tolist() for v, a in Xte.items()}}
            r = c.post("/v1/models/mv/score?recording=bed-4", content=json.dumps(body), headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
            thr += r.json()["thresholds"]
            sc += r.json()["scores"]
    loaded = ganad.load(tmp_path / "mv")
    tau, _ = prefix_threshold(np.asarray(sc), np.zeros(len(sc)), None, 10, fpr=loaded.contamination, threshold=loaded.threshold_)
    np.testing.assert_allclose(thr, tau)


def test_recordings_state_is_saved_while_serving(models, tmp_path):
    """--recordings-save-every: the state reaches the file while the server runs (a crash, kill -9, loses at most
    that long's changes), only when it changed, and what is written restores exactly the live recordings."""
    import time as _time
    from ganad.serve.registry import read_recordings_state
    state = tmp_path / "rec.json"
    X = (2.0 * np.random.RandomState(5).randn(40, 6)).astype(np.float32)
    J = {"content-type": "application/json"}

    def wait_for(cond, what):
        for _ in range(400):
            if cond():
                return
            _time.sleep(0.01)
        raise AssertionError(f"not within 4 s: {what}")

    app = create_app([models["dir"] / "vec"], ServeSettings(warm_up=30, recordings_state=str(state), recordings_save_every=0.02))

    with TestClient(app) as c:
        _time.sleep(0.1)
        assert not state.exists()  # nothing changed yet: nothing written
        own = c.post("/v1/models/vec/score?recording=p1", content=json.dumps(X.tolist()), headers=J).json()["recording_state"]
        wait_for(state.is_file, "the state file written while serving")
        saved = read_recordings_state(state)["vec"]
        assert saved["order"] == ["p1"] and saved["thresholds"]["own"] == {"p1": own["threshold"]}
        first = state.stat().st_mtime_ns
        _time.sleep(0.15)  # several periods without a request: not written again
        assert state.stat().st_mtime_ns == first
        assert 'ganad_recordings_saves_total{result="ok"} 1' in c.get("/metrics").text
        c.post("/v1/models/vec/score?recording=p2", content=json.dumps(X[:5].tolist()), headers=J)
        wait_for(lambda: list(read_recordings_state(state)["vec"]["order"]) == ["p1", "p2"], "the second recording saved")
    # 0: at shutdown only
    state2 = tmp_path / "rec2.json"
    with TestClient(create_app([models["dir"] / "vec"], ServeSettings(warm_up=30, recordings_state=str(state2), recordings_save_every=0))) as c:
        c.post("/v1/models/vec/score?recording=p1", content=json.dumps(X[:5].tolist()), headers=J)
        _time.sleep(0.1)
        assert not state2.exists()
    assert read_recordings_state(state2)["vec"]["order"] == ["p1"]


@pytest.mark.parametrize("kw, words", [(dict(warm_up=1), "warm-up"), (dict(warm_up=-3), "warm-up"),
                                       (dict(warm_up_fpr=0.1), "without --warm-up"), (dict(warm_up=10, warm_up_fpr=1.0), "warm-up-fpr"),
                                       (dict(recordings_save_every=-1.0), "recordings-save-every"),
                                       (dict(recordings_save_every=float("nan")), "recordings-save-every")])
def test_warm_up_settings_are_checked(kw, words):
    from ganad.exceptions import GanadError
    with pytest.raises(GanadError, match=words):
        ServeSettings(**kw)


def test_recordings_state_survives_a_restart(models, tmp_path):
    """--recordings-state: the thresholds of recordings past their warm-up (and warm-ups in progress) are saved at
    shutdown and restored at the next start, for the same model file and settings; anything else starts anew."""
    from ganad.exceptions import GanadError
    state = tmp_path / "rec.json"
    rng = np.random.RandomState(4)
    X = (2.0 * rng.randn(50, 6)).astype(np.float32)
    J = {"content-type": "application/json"}
    settings = ServeSettings(warm_up=30, recordings_state=str(state))
    with TestClient(create_app([models["dir"] / "vec"], settings)) as c:
        own = c.post("/v1/models/vec/score?recording=p1", content=json.dumps(X[:40].tolist()), headers=J).json()["recording_state"]
        c.post("/v1/models/vec/score?recording=p2", content=json.dumps(X[:10].tolist()), headers=J)
    assert "threshold" in own and state.is_file()
    with TestClient(create_app([models["dir"] / "vec"], settings)) as c:
        a = c.post("/v1/models/vec/score?recording=p1", content=json.dumps(X[40:].tolist()), headers=J).json()
        assert not a["new_recording"] and a["thresholds"] == [own["threshold"]] * 10 and a["warm_up"] == [0] * 10
        b = c.post("/v1/models/vec/score?recording=p2", content=json.dumps(X[10:15].tolist()), headers=J).json()
        assert not b["new_recording"] and b["recording_state"] == {"warm_up": 15}
    # other settings (another warm-up): not restored, every recording starts anew (and the log says why)
    with TestClient(create_app([models["dir"] / "vec"], ServeSettings(warm_up=20, recordings_state=str(state)))) as c:
        a = c.post("/v1/models/vec/score?recording=p1", content=json.dumps(X[:5].tolist()), headers=J).json()
        assert a["new_recording"] and a["recording_state"] == {"warm_up": 5}
    # a damaged file stops the start-up, naming it; the option needs --warm-up
    state.write_text("{not json")
    with pytest.raises(GanadError, match="recordings-state"):
        create_app([models["dir"] / "vec"], settings)
    with pytest.raises(GanadError, match="without --warm-up"):
        ServeSettings(recordings_state=str(state))
