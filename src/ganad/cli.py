"""The ganad command line: fit, score, evaluate, calibrate, export, demo."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ganad.exceptions import GanadError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="ganad: anomaly detection with generative adversarial networks.\n\n"
                       "Train on normal data with [bold]fit[/], score new data with [bold]score[/], "
                       "measure with [bold]evaluate[/]. Try [bold]ganad demo[/] first.")
console = Console(stderr=True)
out = Console()


def _fail(exc: Exception, code: int = 2):
    from rich.markup import escape
    console.print(f"[bold red]error:[/] {escape(str(exc))}")  # escaped: "[...]" in messages is text, not markup
    raise typer.Exit(code)


def _methods():
    from ganad.detectors import DETECTORS
    return DETECTORS


@app.command(epilog="Example:\n\n  ganad fit train.csv -o model/ --method anogan --epochs 30 --exclude id")
def fit(
    data: Path = typer.Argument(..., help="Training data of normal samples: CSV, Parquet, NPY or NPZ."),
    output: Path = typer.Option(..., "-o", "--output", help="Model directory to write."),
    method: str = typer.Option("ganomaly", help="Detector: " + ", ".join(sorted(["anogan", "fanogan", "bigan", "alad", "ganomaly", "vaegan"])) + " (those installed). Default ganomaly: the best of the encoder methods on held-out MIT-BIH DS1 records (benchmarks/RESULTS.md)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default: the method's)."),
    latent_dim: Optional[int] = typer.Option(None, help="Latent dimension (default: the method's)."),
    net: Optional[str] = typer.Option(None, help="Network family: auto, mlp, conv1d, lstm, dcgan (default: auto)."),
    batch_size: Optional[int] = typer.Option(None, help="Mini-batch size (default: the method's, auto: n/32 as a power of two in 32-256)."),
    objective: Optional[str] = typer.Option(None, help="bce, wgan-gp or hinge (default: the method's: wgan-gp for fanogan, bce for the others)."),
    contamination: Optional[float] = typer.Option(None, help="Expected anomaly fraction; sets the threshold (default: the method's)."),
    seed: int = typer.Option(0, help="random_state: the same seed gives the same model on CPU."),
    exclude: List[str] = typer.Option([], help="Column to leave out (CSV/Parquet), e.g. an id or label column. Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file (default: 'X' or the only array)."),
    window: Optional[int] = typer.Option(None, help="Series mode: DATA is one long series (rows = time points); points per window. See docs/series.md."),
    stride: Optional[int] = typer.Option(None, help="Series: step between window starts (default window // 4)."),
    time_column: Optional[str] = typer.Option(None, help="Series: the time column (default: a column named timestamp/time/datetime/date/ts, if any)."),
    channels: Optional[str] = typer.Option(None, help="Series: comma-separated channel columns (default: all but time and series id)."),
    series_id: Optional[str] = typer.Option(None, help="Series: column naming the series each row belongs to (several series in one file)."),
    gaps: str = typer.Option("split", help="Series: a time gap (> 3x the median step) splits the series (split), is ignored (ignore) or refused (error)."),
    point_contamination: float = typer.Option(0.01, help="Series: fraction of training points above the point threshold."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    sep: Optional[str] = typer.Option(None, help="CSV column separator (default ',', tab for .tsv), e.g. ';'."),
    decimal: str = typer.Option(".", help="CSV decimal mark, e.g. ',' for 1,5."),
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint directory: the training state is written there atomically (every 60 s, or see --checkpoint-every) so that --resume can continue after a crash or a kill. See docs/training.md."),
    checkpoint_every: Optional[int] = typer.Option(None, help="With --checkpoint: write a checkpoint every N optimisation steps (default: every 60 s)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --checkpoint DIR (same data and options required; on CPU the model is the same as an uninterrupted run's)."),
):
    """Train a detector on normal data and save it to a model directory."""
    from ganad.data.io import csv_columns, read_array
    methods = _methods()
    if method not in methods:
        _fail(ValueError(f"--method: unknown method {method!r}. Fix: use one of {', '.join(sorted(methods))}"))
    if (checkpoint_every is not None or resume) and checkpoint is None:
        _fail(ValueError(f"{'--resume' if resume else '--checkpoint-every'}: needs --checkpoint DIR. Fix: pass the checkpoint directory, "
                         "e.g. ganad fit data.csv -o model/ --checkpoint ckpt/ --resume"))
    if checkpoint is not None and window is not None:
        _fail(ValueError("--checkpoint: not supported in series mode (--window) yet. Fix: train without --checkpoint"))
    if window is not None:  # series mode (issue 12): windows -> point scores -> events
        from ganad.series.commands import fit_series
        try:
            t0 = time.perf_counter()
            sd, tab = fit_series(data, output, method, dict(epochs=epochs, latent_dim=latent_dim, net=net, batch_size=batch_size,
                                 objective=objective, random_state=seed, device=device, verbose=not quiet),
                                 window, stride, time_column, channels, series_id, gaps, point_contamination)
        except (GanadError, ValueError) as exc:
            _fail(exc)
        console.print(f"[green]fitted[/] series {type(sd.detector_).__name__} on {len(tab.values)} points x {len(tab.columns)} channel(s) "
                      f"(window {sd.window_}, stride {sd.stride_}) in {time.perf_counter() - t0:.1f}s; point threshold {sd.threshold_:.4g}; saved to {output}")
        return
    try:
        from ganad.io import check_model_path
        check_model_path(output, "-o/--output")  # before training, not after
        X = read_array(data, exclude=exclude, key=key, sep=sep, decimal=decimal)
        names = csv_columns(data, exclude=exclude, sep=sep, decimal=decimal)
        cls = methods[method]
        # only what the user gave overrides the method's own defaults (f-AnoGAN's WGAN-GP, ...)
        given = dict(epochs=epochs, latent_dim=latent_dim, net=net, batch_size=batch_size, contamination=contamination,
                     objective=objective)
        params = {**{k: v for k, v in given.items() if v is not None}, "random_state": seed, "device": device,
                  "verbose": not quiet}
        det = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
        t0 = time.perf_counter()
        if checkpoint is not None:
            det.fit(X, checkpoint_dir=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
        else:
            det.fit(X)
        if names is not None and len(names) == det.n_features_in_:
            det.feature_names_in_ = np.asarray(names, dtype=object)  # checked when scoring
        det.save(output)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    console.print(f"[green]fitted[/] {type(det).__name__} on {X.shape[0]} samples of shape {X.shape[1:]} "
                  f"in {time.perf_counter() - t0:.1f}s; threshold {det.threshold_:.4g}; saved to {output}")


@app.command(epilog="Example:\n\n  ganad score model/ new.csv -o scores.csv --components")
def score(
    model_dir: Path = typer.Argument(..., help="Model directory written by `ganad fit`."),
    data: Path = typer.Argument(..., help="Data to score: CSV, Parquet, NPY or NPZ, same columns as at fit time."),
    output: Path = typer.Option(..., "-o", "--output", help="CSV to write with columns index, score, label."),
    chunk_rows: int = typer.Option(65536, help="Rows read and scored at a time (bounded memory for large files)."),
    events: Optional[Path] = typer.Option(None, help="Series models: events CSV to write (default: OUTPUT with .events.csv)."),
    components: bool = typer.Option(False, help="Also write each score component."),
    exclude: List[str] = typer.Option([], help="Column to leave out, as at fit time. Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file."),
    sep: Optional[str] = typer.Option(None, help="CSV column separator (default ',', tab for .tsv), e.g. ';'."),
    decimal: str = typer.Option(".", help="CSV decimal mark, e.g. ',' for 1,5."),
    nonfinite: str = typer.Option("raise", help="A row whose score overflows to NaN/inf: raise (error naming it) or max (most anomalous)."),
):
    """Score data with a saved model; streams the input in chunks and writes score and label per row."""
    from ganad.series import is_series_model
    if is_series_model(model_dir):  # issue 12: a series model writes a score per time point and an events file
        from ganad.series.commands import score_series_file
        try:
            n, n_ev, ev_path = score_series_file(model_dir, data, output, events, components)
        except (GanadError, ValueError) as exc:
            _fail(exc)
        console.print(f"[green]scored[/] {n} time points -> {output}; {n_ev} event(s) -> {ev_path}")
        return
    import ganad
    from ganad.data.io import csv_columns, iter_chunks
    try:
        if nonfinite not in ("raise", "max"):
            raise GanadError(f"--nonfinite: is {nonfinite!r}. Fix: use raise or max")
        from ganad.io import check_output_file
        check_output_file(output)
        det = ganad.load(model_dir)
        det.on_nonfinite = nonfinite
        det._check_feature_names(csv_columns(data, exclude=exclude, sep=sep, decimal=decimal), str(data))
        output.parent.mkdir(parents=True, exist_ok=True)
        from ganad.io import output_temp
        fd, tmp = output_temp(output)  # removes the temporaries of killed runs
        n = 0
        try:
            with os.fdopen(fd, "w") as fh:
                header = None
                for chunk in iter_chunks(data, chunk_rows, exclude=exclude, key=key, sep=sep, decimal=decimal):
                    if len(chunk) == 0:
                        continue
                    try:
                        r = det.score_components(chunk)
                    except InputError as exc:
                        raise InputError(f"{data}, rows {n} to {n + len(chunk) - 1} (row numbers below count from {n}): {exc}") from exc
                    lab = (r.scores > det.threshold_).astype(np.int64)
                    cols = {"index": np.arange(n, n + len(chunk)), "score": r.scores, "label": lab}
                    if components:
                        cols.update(r.components)
                    if header is None:
                        header = list(cols)
                        fh.write(",".join(header) + "\n")
                    block = np.column_stack([np.asarray(cols[k], dtype=np.float64) for k in header])
                    fmt = ["%d", "%.9g", "%d"] + ["%.9g"] * (len(header) - 3)
                    np.savetxt(fh, block, fmt=fmt, delimiter=",")
                    n += len(chunk)
            if n == 0:
                raise GanadError(f"{data}: has no samples. Fix: pass a non-empty file")
            os.replace(tmp, output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    console.print(f"[green]scored[/] {n} samples -> {output}")


def _read_labels(path: Path, column: Optional[str], n: int):
    from ganad.data.io import read_array
    from ganad.data.validation import check_labels
    import pandas as pd
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        try:
            df = pd.read_csv(path)
        except Exception as exc:
            raise GanadError(f"{path}: cannot be read as CSV ({exc}). Fix: pass a CSV with a label column") from exc
        if column is None:
            if df.shape[1] != 1:
                raise GanadError(f"{path}: has columns {list(df.columns)[:8]}; which holds the labels? Fix: pass --label-column NAME")
            column = df.columns[0]
        if column not in df.columns:
            raise GanadError(f"{path}: has no column {column!r}. Fix: use one of {list(df.columns)[:8]}")
        y = df[column].to_numpy()
    else:
        y = read_array(path).reshape(-1)
    return check_labels(y, n, f"labels ({path})")


@app.command(epilog="Example:\n\n  ganad evaluate scores.csv --labels test_labels.csv --label-column y -o eval/")
def evaluate(
    scores: Path = typer.Argument(..., help="scores.csv written by `ganad score`."),
    labels: Optional[Path] = typer.Option(None, help="True labels (1 = anomaly): CSV column or NPY, one per scored row."),
    label_column: Optional[str] = typer.Option(None, help="Column of the labels CSV holding the labels."),
    output: Path = typer.Option(Path("evaluation"), "-o", "--output", help="Directory for metrics.json, roc.png, pr.png, report.html."),
    ranges: Optional[Path] = typer.Option(None, help="Series: CSV of labelled anomalies, columns start,end (row indices or times, end included; optional series)."),
    max_buffer: int = typer.Option(64, help="Series: VUS buffer lengths 0..MAX_BUFFER points (e.g. the window length)."),
):
    """Metrics (AUROC, AUPRC from scores; precision, recall, F1, MCC at the model's threshold) plus ROC/PR plots and an HTML report.
    With --ranges (series scores): point AUROC/AUPRC, VUS-PR, event F1 without point adjustment, PA-F1 beside PA%K."""
    import json
    import pandas as pd
    from ganad.metrics import evaluate as _evaluate
    if ranges is not None:  # issue 12: series metrics from labelled ranges
        from ganad.series.commands import evaluate_series
        try:
            m = evaluate_series(scores, ranges, max_buffer)
            output.mkdir(parents=True, exist_ok=True)
            (output / "metrics.json").write_text(json.dumps(m, indent=2))
        except (GanadError, ValueError) as exc:
            _fail(exc)
        _print_metrics({k: v for k, v in m.items() if k != "per_series"}, title="series metrics")
        console.print(f"wrote {output}/metrics.json")
        return
    if labels is None:
        _fail(GanadError("--labels: is missing. Fix: pass --labels FILE (one label per scored row), or --ranges FILE for series"))
    try:
        try:
            df = pd.read_csv(scores)
        except Exception as exc:
            raise GanadError(f"{scores}: cannot be read ({exc}). Fix: pass the CSV written by `ganad score`") from exc
        if "score" not in df.columns:
            raise GanadError(f"{scores}: has no 'score' column. Fix: pass the CSV written by `ganad score`")
        y = _read_labels(labels, label_column, len(df))
        s = df["score"].to_numpy(dtype=np.float64)
        pred = df["label"].to_numpy() if "label" in df.columns else None
        ev = _evaluate(y, s, y_pred=pred)
        output.mkdir(parents=True, exist_ok=True)
        (output / "metrics.json").write_text(json.dumps(ev.to_dict(), indent=2))
        from ganad.report import pr_figure, roc_figure, save_png, write_report
        save_png(roc_figure(y, s), output / "roc.png")
        save_png(pr_figure(y, s), output / "pr.png")
        write_report(output / "report.html", title=f"ganad evaluation of {scores.name}", scores=s, labels=y,
                     metrics=ev.to_dict())
    except (GanadError, ValueError) as exc:
        _fail(exc)
    _print_metrics(ev.to_dict())
    console.print(f"wrote {output}/metrics.json, roc.png, pr.png, report.html")


def _print_metrics(m: dict, title="metrics"):
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in m.items():
        t.add_row(k, "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
    out.print(t)


@app.command(epilog="Examples:\n\n  ganad calibrate model/ val.csv --labels val_labels.csv --compose svm --threshold mcc\n\n"
                     "  ganad calibrate model/ val_normal.npy --threshold fpr --fpr 0.01")
def calibrate(
    model_dir: Path = typer.Argument(..., help="Model directory written by `ganad fit`."),
    data: Path = typer.Argument(..., help="Validation data (never the test data): CSV, Parquet, NPY or NPZ."),
    labels: Optional[Path] = typer.Option(None, help="Validation labels (1 = anomaly), CSV column or NPY; needed by grid, svm, f1, fbeta, mcc."),
    label_column: Optional[str] = typer.Option(None, help="Column of the labels CSV holding the labels."),
    compose: str = typer.Option("default", help="default (robust median/MAD standardisation), weights, grid or svm."),
    threshold: str = typer.Option("contamination", help="contamination, f1, fbeta, mcc or fpr."),
    weights: Optional[str] = typer.Option(None, help="For --compose weights: JSON such as '{\"residual\": 0.8, \"feature\": 0.2}'."),
    metric: str = typer.Option("auroc", help="For --compose grid: auroc, auprc, f1, fbeta or mcc."),
    beta: float = typer.Option(1.0, help="β of F_β."),
    fpr: float = typer.Option(0.05, help="For --threshold fpr: false-positive rate on the normal validation samples."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the calibrated model here (default: in place)."),
    exclude: List[str] = typer.Option([], help="Column to leave out, as at fit time. Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file."),
):
    """Fit the score composition and the threshold on validation data; `ganad score` then uses them."""
    import json
    from ganad.data.io import read_array
    from ganad.scoring.calibration import calibrate_model
    try:
        X = read_array(data, exclude=exclude, key=key)
        y = _read_labels(labels, label_column, len(X)) if labels is not None else None
        w = None
        if weights is not None:
            try:
                w = json.loads(weights)
            except json.JSONDecodeError as exc:
                raise GanadError(f"--weights: is not valid JSON ({exc}). Fix: pass for example '{{\"residual\": 0.9, \"feature\": 0.1}}'") from exc
        rec = calibrate_model(model_dir, X, y, output=output, compose=compose, threshold=threshold, weights=w,
                              metric=metric, beta=beta, fpr=fpr)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    summary = {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool)) or v is None}
    _print_metrics(summary, title="calibration")
    console.print(f"[green]calibrated[/] -> {output or model_dir}")


@app.command(epilog="Example:\n\n  ganad export model/ -o model.onnx")
def export(
    model_dir: Path = typer.Argument(..., help="Model directory of an encoder method (fanogan, bigan, alad, ganomaly, vaegan)."),
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write."),
):
    """Export the scoring path (x -> score components and score) of an encoder method as ONNX."""
    import ganad
    try:
        from ganad.export import export_onnx
    except ImportError as exc:
        _fail(GanadError(f"export is unavailable ({exc}). Fix: pip install 'ganad[onnx]'"))
    try:
        export_onnx(ganad.load(model_dir), output)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    console.print(f"[green]exported[/] {model_dir} -> {output}")


@app.command(epilog="Example:\n\n  ganad demo --output ganad-demo/")
def demo(
    output: Path = typer.Option(Path("ganad-demo"), "-o", "--output", help="Directory for the model, scores, plots and report."),
    digit: int = typer.Option(0, help="The digit left out of training: the novelty to detect."),
    method: str = typer.Option("vaegan", help="Detector to train (any --method of `ganad fit`)."),
    epochs: int = typer.Option(40, help="Training epochs."),
    seed: int = typer.Option(0, help="random_state."),
):
    """End-to-end demo on scikit-learn's bundled 8x8 digits (no download): train on nine digits,
    detect the left-out one, print AUROC / AUPRC / F1 / MCC and write a report."""
    from ganad.demo import run_demo
    methods = _methods()
    if method not in methods:
        _fail(ValueError(f"--method: unknown method {method!r}. Fix: use one of {', '.join(sorted(methods))}"))
    try:
        res = run_demo(output, digit=digit, method=method, epochs=epochs, seed=seed, log=console.print)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    _print_metrics(res["metrics"], title=f"{method} on digits, novelty = digit {digit} (test split)")
    console.print(f"report: {output / 'report.html'}")

@app.command(epilog="Example:\n\n  tail -f telemetry.csv | ganad stream model/ --has-time")
def stream(
    model_dir: Path = typer.Argument(..., help="Series model directory written by `ganad fit --window`."),
    batch: int = typer.Option(1, help="Points read before scoring (1 = lowest latency; larger = more points/s)."),
    has_time: bool = typer.Option(False, help="Each line starts with a time, then the channels."),
):
    """Score a live series: one point per stdin line (comma-separated channels), writes `point,index,score,label`
    lines and `open,start` / `close,start,end,peak_score,channels` event lines as they happen (bounded memory;
    a point is written at most window + stride - 2 points after it arrives)."""
    from ganad.series.commands import stream_lines

    def write(line):
        sys.stdout.write(line)
        sys.stdout.flush()
    try:
        if batch < 1:
            raise GanadError(f"--batch: is {batch}. Fix: pass a positive number of points")
        stream_lines(model_dir, sys.stdin, write, batch=batch, has_time=has_time)
    except (GanadError, ValueError) as exc:
        _fail(exc)


@app.command(epilog="Examples:\n\n  ganad benchmark adbench --data /data --methods bigan,vaegan --peers iforest,knn --seed 0 -o bench-adbench/\n\n"
                     "  ganad benchmark mitbih --data /data --max-train 10000 --max-test 20000 --epochs 30 --rhythm -o bench-mitbih/\n\n"
                     "  ganad benchmark mnist --data /data --digits 0,1 --max-train 2000 --max-test 2000 -o bench-mnist/")
def benchmark(
    protocol: str = typer.Argument(..., help="mitbih, adbench, mnist or nab."),
    data: Optional[Path] = typer.Option(None, envvar="GANAD_DATA_DIR", help="Folder holding mitdb/, adbench/ and mnist/ (or env GANAD_DATA_DIR)."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for results.json, results.md, PNG figures and report.html."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated ganad methods (default: every registered method)."),
    peers: Optional[str] = typer.Option(None, help="Comma-separated PyOD peers (default: all of iforest,knn,ocsvm,ecod,autoencoder,vae,deepsvdd,anogan,alad; 'none' for none)."),
    seed: int = typer.Option(0, help="Seed of the splits, subsamples and every model."),
    n_seeds: int = typer.Option(3, help="adbench: seeds seed, seed+1, ... (one split per seed)."),
    max_train: Optional[int] = typer.Option(None, help="Training samples at most (random subsample; 0 = all). Default: mitbih 10000, adbench 5000, mnist 2000 per digit."),
    max_test: Optional[int] = typer.Option(None, help="Test samples at most (class-stratified subsample; 0 = all). Default: mitbih 20000, adbench 5000, mnist 2000."),
    epochs: int = typer.Option(30, help="Training epochs of the ganad methods."),
    peer_epochs: int = typer.Option(20, help="Epochs of PyOD's deep peers (autoencoder, vae, deepsvdd, anogan, alad)."),
    datasets: Optional[str] = typer.Option(None, help="adbench: comma-separated dataset names (default: all in the folder)."),
    digits: str = typer.Option("0,1,2,3,4,5,6,7,8,9", help="mnist: comma-separated digits."),
    window: int = typer.Option(64, help="nab: points per window (also the largest VUS buffer)."),
    stride: int = typer.Option(1, help="nab: step between windows."),
    train_fraction: float = typer.Option(0.15, help="nab: leading fraction of each series used for training (NAB's probationary period)."),
    groups: Optional[str] = typer.Option(None, help="nab: comma-separated NAB folders (default realKnownCause,realAWSCloudwatch,realTweets,artificialWithAnomaly)."),
    calibration: str = typer.Option("fpr", help="mitbih threshold rule on held-out DS1 records: fpr (normal beats only, no labels), mcc or f1 (their labels)."),
    fpr: float = typer.Option(0.05, help="mitbih --calibration fpr: false-positive rate on the held-out normal beats."),
    compose: str = typer.Option("method", help="mitbih: method (each method's own score) or default (components robust-standardised on the held-out normal beats)."),
    rhythm: bool = typer.Option(False, help="mitbih: add the rhythm view (RR-interval log-ratios): a second detector per ganad method, the two scores combined label-free; peers get the features appended."),
    adaptive: Optional[int] = typer.Option(None, help="mitbih: also report patient-adaptive rows: each test record's scores standardised by its own first N beats (label-free)."),
):
    """Quality benchmark of ganad methods against PyOD peers on one protocol, same splits for all (see docs/benchmark.md;
    nab: docs/series.md)."""
    from ganad.benchmark import PROTOCOLS, run_protocol, write_outputs

    def csv(v):
        return None if v is None else [x.strip() for x in v.split(",") if x.strip() and x.strip().lower() != "none"]
    if protocol == "nab":  # issue 12: the series protocol lives in ganad.series.benchmark
        from ganad.series.benchmark import NAB_GROUPS, markdown, run_nab, write_nab
        try:
            res = run_nab(data if data is not None else Path("."), groups=csv(groups) or NAB_GROUPS, methods=csv(methods) or ["fanogan"],
                          peers=csv(peers), window=window, stride=stride, train_fraction=train_fraction, epochs=epochs,
                          peer_epochs=peer_epochs, seed=seed, log=console.print)
            paths = write_nab(res, output)
        except (GanadError, ValueError) as exc:
            _fail(exc)
        out.print(markdown(res))
        console.print(f"wrote {paths['json']}, {paths['markdown']}")
        return
    try:
        if protocol not in PROTOCOLS:
            raise GanadError(f"protocol: is {protocol!r}. Fix: use one of {', '.join(PROTOCOLS)}")
        kw = dict(methods=csv(methods), peers=csv(peers), epochs=epochs, peer_epochs=peer_epochs, log=console.print)
        for name, v in (("max_train", max_train), ("max_test", max_test)):
            if v is not None:
                if v < 0:
                    raise GanadError(f"--{name.replace('_', '-')}: is {v}. Fix: pass 0 (no limit) or a positive number")
                kw[name] = v or None
        if protocol == "adbench":
            kw.update(seeds=range(seed, seed + max(1, n_seeds)), datasets=csv(datasets))
        else:
            kw["seed"] = seed
        if protocol == "mnist":
            kw["digits"] = [int(d) for d in csv(digits)]
        if protocol == "mitbih":
            kw.update(calibration=calibration, fpr=fpr, compose=compose, rhythm=rhythm, adaptive=adaptive)
        res = run_protocol(protocol, data, **kw)
        paths = write_outputs(res, output)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    s = res["summary"]
    _print_metrics({k: v for k, v in s.items() if k != "mean"}, title=f"benchmark {protocol}")
    console.print(f"wrote {paths['json']}, {paths['markdown']}, {paths['report']}")


@app.command(epilog="Example:\n\n  ganad serve model/ --port 8000\n\n"
                     "  curl -s localhost:8000/v1/models/model/score -H 'Content-Type: application/json' -d '[[0.1, 0.2, 0.3]]'")
def serve(
    model_dirs: List[str] = typer.Argument(..., help="Model directories (served under the directory's name) or NAME=DIR."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 127.0.0.1 (this machine only) unless told otherwise."),
    port: int = typer.Option(8000, help="TCP port."),
    token_file: Optional[Path] = typer.Option(None, help="File holding a bearer token required on /v1/* and /metrics (or env GANAD_SERVE_TOKEN)."),
    max_batch_rows: int = typer.Option(4096, help="Rows per forward pass at most when requests are micro-batched."),
    max_wait_ms: float = typer.Option(0.0, help="How long a batch waits for more requests (0: takes what queued during the previous pass)."),
    max_queue: int = typer.Option(1024, help="Requests queued per model at most; beyond it: 503 with Retry-After."),
    max_body_mb: float = typer.Option(16.0, help="Largest request body in MiB; beyond it: 413 (a JSON body takes about ten times its size in memory while it is parsed)."),
    cors_origin: List[str] = typer.Option([], help="Allow browser requests from this origin (CORS is off without it). Repeatable."),
    access_log: bool = typer.Option(False, help="Log every request (JSON line); errors are always logged."),
    log_level: str = typer.Option("info", help="critical, error, warning, info or debug."),
):
    """Serve models over HTTP: POST /v1/models/NAME/score, /v1/models, /healthz, /readyz, /metrics, /docs (see docs/serve.md)."""
    try:
        from ganad.serve import ServeSettings, read_token, run
    except ImportError as exc:
        _fail(GanadError(f"serve is unavailable ({exc}). Fix: pip install 'ganad[serve]'"))
    try:
        settings = ServeSettings(max_batch_rows=max_batch_rows, max_wait_ms=max_wait_ms, max_queue=max_queue,
                                 max_body_bytes=int(max_body_mb * 1024 * 1024), token=read_token(token_file),
                                 cors_origins=cors_origin, access_log=access_log)
        run(model_dirs, settings, host=host, port=port, log_level=log_level)
    except (GanadError, ValueError) as exc:
        _fail(exc)


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
