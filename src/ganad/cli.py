"""The ganad command line: fit, score, evaluate, calibrate, export, demo, tune."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, NoReturn, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ganad.exceptions import GanadError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="ganad: anomaly detection with generative adversarial networks.\n\n"
                       "Train on normal data with [bold]fit[/], score new data with [bold]score[/], "
                       "measure with [bold]evaluate[/]. Try [bold]ganad demo[/] first.")
class _StderrConsole(Console):
    """stderr for notes, warnings and errors: wrapped to the width of a terminal, but not wrapped at all
    when stderr is a file or a pipe (rich would cut every line at 80 columns there, splitting paths and
    messages that a log is grepped for)."""

    def print(self, *objects, soft_wrap=None, **kwargs):
        super().print(*objects, soft_wrap=(not self.is_terminal) if soft_wrap is None else soft_wrap, **kwargs)


console = _StderrConsole(stderr=True)
out = Console()


def _fail(exc: Exception, code: int = 2):
    from rich.markup import escape
    console.print(f"[bold red]error:[/] {escape(str(exc))}")  # escaped: "[...]" in messages is text, not markup
    raise typer.Exit(code)


def _log(msg: str) -> None:
    """Progress lines of demo / benchmark: plain text, so "[bench]" in an install command or "[1, 2]" in an error prints as written."""
    console.print(msg, markup=False)


def _methods():
    from ganad.detectors import DETECTORS
    return DETECTORS


#: the names `--method` takes, written out so that `--help` does not import torch
#: (tests/test_edge_inputs.py checks it against ganad.detectors.DETECTORS)
METHOD_NAMES = ("alad", "anogan", "bigan", "egbad", "fanogan", "ganomaly", "tadgan", "vaegan")
#: ``ganad fit``'s method when --method is not given: AnoGAN, whose default score (the distances of D's features
#: and of the input to the normal training data, no latent search) had the best mean on the validation sets,
#: confirmed on seeds no choice had read (benchmarks/RESULTS.md, thirty-fourth session); GANomaly until then
DEFAULT_METHOD = "anogan"
#: ... and in series mode (--window): SeriesDetector's default, chosen on NAB validation groups (AnoGAN was
#: 0.013 behind there on the mean of VUS-PR and event F1: benchmarks/SERIES_RESULTS.md, thirty-fifth session)
DEFAULT_SERIES_METHOD = "ganomaly"


def _method_names():
    return METHOD_NAMES


def _version_callback(value: bool):
    if value:
        from ganad import __version__
        out.print(f"ganad {__version__}")
        raise typer.Exit()


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """ganad's own warnings (too little training data, ...) as one ``warning: ...`` line on stderr,
    like its errors, instead of Python's ``path:line: UserWarning: ...`` and a source line; other
    packages' warnings keep Python's format."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        from rich.markup import escape
        console.print(f"[bold yellow]warning:[/] {escape(str(message))}")
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = None


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Print ganad's version and exit.")):
    """ganad: anomaly detection with generative adversarial networks."""
    import warnings
    global _python_showwarning
    if warnings.showwarning is not _show_warning:
        _python_showwarning = warnings.showwarning
        warnings.showwarning = _show_warning


def _refuse_key_in_series_mode(key: Optional[str]) -> None:
    if key is not None:
        raise GanadError("--key: names an array inside an NPZ file; series mode reads CSV, Parquet and NPY files. "
                         "Fix: drop --key, and save the series as .npy (np.save) or a table")


def _refuse_existing(path: Path, overwrite: bool, kind: str, name: str = "-o/--output"):
    """An existing model (``kind='model'``: a directory holding a ganad or series model) or file
    (``kind='file'``) is replaced only with --overwrite. Other clashes (a file where a model
    directory goes, a folder of other files) are left to the path checks, which refuse them."""
    if overwrite:
        return
    from ganad.io import CONFIG, MULTIVIEW_CONFIG, SERIES_CONFIG
    if kind == "model" and path.is_dir() and any((path / m).exists() for m in (CONFIG, SERIES_CONFIG, MULTIVIEW_CONFIG)):
        raise GanadError(f"{name} {path}: already holds a ganad model. Fix: pass --overwrite to replace it, or choose another directory")
    if kind == "file" and path.is_file():
        raise GanadError(f"{name} {path}: already exists. Fix: pass --overwrite to replace it, or choose another path")


def _show_progress(progress: bool, quiet: bool) -> bool:
    """Bars on stderr: never with --quiet; with --progress always; else when stderr is a terminal."""
    return not quiet and (progress or console.is_terminal)


def _model_params(cls, config: Optional[Path], sets: List[str], given: dict) -> dict:
    """Model parameters: the method's defaults < --config file < the dedicated options < --set."""
    from ganad.cli_params import parse_sets, read_config
    defaults = cls().get_params()
    params = read_config(config, defaults, cls) if config is not None else {}
    params.update({k: v for k, v in given.items() if v is not None and k in defaults})
    params.update(parse_sets(sets, defaults, cls))
    return params


def _refuse_multiview(model_dir: Path, command: str) -> None:
    """A multi-view model takes several inputs per sample, which one data file cannot give."""
    from ganad.multiview import is_multiview_model
    if is_multiview_model(model_dir):
        how = ("pass --view NAME=FILE for each view instead of DATA" if command in ("score", "calibrate")
               else "use MultiViewDetector from Python")
        other = (f", or calibrate a copy of one view's model elsewhere (ganad calibrate {model_dir}/views/NAME DATA -o OTHER_DIR)"
                 if command == "calibrate" else f", or run `ganad {command}` on one view's model ({model_dir}/views/NAME)")
        raise GanadError(f"MODEL_DIR {model_dir}: is a multi-view model (one input per view), which `ganad {command}` does not take as one file. "
                         f"Fix: {how}{other}")


def _refuse_view_in_place(model_dir: Path, output: Optional[Path]) -> None:
    """A view's model inside a multi-view model must not change in place: the multi-view model's
    stored standardisation and threshold of that view were fitted on the view's old scores."""
    from ganad.multiview import VIEWS_DIR, is_multiview_model
    d = model_dir.resolve()
    if d.parent.name == VIEWS_DIR and is_multiview_model(d.parent.parent) and (output is None or output.resolve() == d):
        raise GanadError(f"MODEL_DIR {model_dir}: is the view {d.name!r} of the multi-view model {d.parent.parent}; calibrating it in place "
                         "would change its scores under the multi-view model's standardisation and threshold, silently. "
                         f"Fix: recalibrate the multi-view model (ganad calibrate {d.parent.parent} --view NAME=FILE ...), or write this "
                         "view's calibrated model elsewhere with -o OTHER_DIR")


def _refuse_series_calibration(model_dir: Path, output: Optional[Path]) -> None:
    """The window detector inside a series model must not change in place: the series model's point
    threshold was set on that detector's old scores (a series model itself is calibrated by its point
    threshold: :func:`ganad.series.commands.calibrate_series_file`)."""
    from ganad.series.detector import DETECTOR_DIR, is_series_model
    d = model_dir.resolve()
    if d.name == DETECTOR_DIR and is_series_model(d.parent) and (output is None or output.resolve() == d):
        raise GanadError(f"MODEL_DIR {model_dir}: is the window detector of the series model {d.parent}; calibrating it in place "
                         "would change its window scores under the series model's point threshold, which was set on the old scores, "
                         "silently. Fix: fit the series model again (ganad fit DATA --window W, with --point-contamination to move "
                         "its threshold), or write this detector's calibrated model elsewhere with -o OTHER_DIR")


def _calibrate_series(model_dir: Path, data: Path, output: Optional[Path], *, labels, compose, threshold, weights, key, fpr,
                      contamination, sep, decimal, exclude) -> None:
    """`ganad calibrate` of a series model: its point threshold set on normal series (SeriesDetector.calibrate)."""
    from ganad.series.commands import calibrate_series_file
    given = [(o, why) for o, why in (
        ("--labels", labels is not None), (f"--compose {compose}", compose != "default"), ("--weights", weights is not None),
        ("--key", key is not None)) if why]
    if given:
        raise GanadError(f"{', '.join(o for o, _ in given)}: a series model is calibrated on normal series without labels: only its "
                         "point threshold is set (--threshold contamination or fpr); its window scores stay as fitted. Fix: drop "
                         f"{', '.join(o.split()[0] for o, _ in given)}")
    if threshold not in ("contamination", "fpr"):
        raise GanadError(f"--threshold {threshold}: a series model is calibrated on normal series without labels. Fix: use "
                         "--threshold contamination (the point fraction above it) or --threshold fpr --fpr 0.01; to measure "
                         "a labelled series, use ganad evaluate SCORES.csv --ranges RANGES.csv")
    rec, unread = calibrate_series_file(model_dir, data, output, threshold=threshold, contamination=contamination, fpr=fpr,
                                        sep=sep, decimal=decimal, exclude=exclude)
    _print_metrics(rec, title="calibration (series)")
    if unread:
        console.print(f"[yellow]note[/]: column(s) {unread} of {data} are not channels, the time or the series id of the model "
                      "and were not read (--exclude them to silence this note)")
    console.print(f"[green]calibrated[/] point threshold -> {output or model_dir}")


def _data_or_views(data: Optional[Path], view: List[str], example: str, model_dir: Optional[Path] = None,
                   command: str = "") -> dict:
    """One data file or --view NAME=FILE per view, not both or neither: the parsed views ({} with DATA).
    With ``model_dir`` and DATA, a multi-view model is refused (it takes one file per view)."""
    views = _parse_views(view)
    if (data is None) == (not views):
        raise GanadError("DATA: pass one data file, or --view NAME=FILE for each view of a multi-view model, not both or neither. "
                         f"Fix: {example}")
    if not views and model_dir is not None:
        _refuse_multiview(model_dir, command)
    return views


def _parse_views(views: List[str]) -> dict:
    """--view NAME=FILE (repeatable) -> {name: Path}, names checked, each name once."""
    from ganad.multiview import _check_name
    out: dict = {}
    for v in views:
        name, sep, path = v.partition("=")
        if not sep or not path:
            raise GanadError(f"--view: {v!r} is not NAME=FILE. Fix: pass for example --view beat=beats.npy --view rhythm=rr.csv")
        try:
            _check_name(name, new=False)  # a fit applies the rules for new names itself; score takes an existing model's
        except InputError as exc:
            raise GanadError(f"--view {v!r}: {exc}") from exc
        if name in out:
            raise GanadError(f"--view: the view {name!r} is given twice. Fix: give each view once")
        out[name] = Path(path)
    from ganad.multiview import _check_distinct
    _check_distinct(out, "--view")  # 'beat' and 'Beat': one folder on a case-insensitive file system
    return out


def _read_views(views: dict, exclude, key, sep, decimal) -> tuple[dict, dict]:
    """Each view's file read whole (as `ganad fit` reads one file), and its column names (or None).
    --exclude applies to the views with named columns (CSV / Parquet); NPY / NPZ views have none. With
    no such view it would be ignored: refused."""
    from ganad.data.readers import csv_columns, file_format, read_array
    tables = [v for v, path in views.items() if file_format(path) in ("csv", "parquet")]
    if exclude and not tables:
        raise GanadError(f"--exclude {', '.join(exclude)}: every --view file is an NPY / NPZ array, which has no column names, "
                         "so there is nothing to leave out by name. Fix: drop --exclude and save the arrays without those columns")
    arrays, names = {}, {}
    for v, path in views.items():
        ex = exclude if v in tables else ()
        arrays[v] = read_array(path, exclude=ex, key=key, sep=sep, decimal=decimal)
        names[v] = csv_columns(path, exclude=ex, sep=sep, decimal=decimal)
    rows = {f"{v}={views[v]}": len(a) for v, a in arrays.items()}
    if len(set(rows.values())) > 1:  # said with the files (the Python check names a dict "X" the command line has not)
        raise GanadError(f"--view: the files hold different numbers of samples {rows}. "
                         "Fix: give every view the same samples, in the same order (one row or array entry per sample in every file)")
    return arrays, names


def _fit_multiview(views: dict, output: Path, method: str, params: dict, exclude, key, sep, decimal, combine: str = "surprise") -> None:
    from ganad.io import check_model_path
    from ganad.multiview import COMBINES, MultiViewDetector
    if combine not in COMBINES:  # before reading and training
        raise GanadError(f"--combine: is {combine!r}. Fix: use one of {', '.join(COMBINES)}")
    check_model_path(output, "-o/--output")
    arrays, names = _read_views(views, exclude, key, sep, decimal)
    seed = params.get("random_state", 0)
    mv = MultiViewDetector({v: method for v in views}, detector_params={"random_state": 0, **params},
                           contamination=params.get("contamination", 0.1), random_state=0 if seed is None else seed, combine=combine)
    t0 = time.perf_counter()
    mv.fit(arrays)
    for v, cols in names.items():
        det = mv.detectors_[v]
        if cols is not None and len(cols) == det.n_features_in_:
            det.feature_names_in_ = np.asarray(cols, dtype=object)  # checked when scoring
    mv.save(output)
    n = len(next(iter(arrays.values())))
    console.print(f"[green]fitted[/] multi-view {method} ({', '.join(f'{v}: {arrays[v].shape[1:]}' for v in views)}) on {n} samples "
                  f"in {time.perf_counter() - t0:.1f}s; threshold {mv.threshold_:.4g}; saved to {output}")


def _score_multiview(model_dir: Path, views: dict, output: Path, components: bool, exclude, key, sep, decimal,
                     nonfinite: str = "raise", adaptive: Optional[dict] = None) -> int:
    import ganad
    from ganad.files import atomic_file
    from ganad.io import check_output_file
    from ganad.multiview import is_multiview_model
    if not is_multiview_model(model_dir):
        raise GanadError(f"--view: MODEL_DIR {model_dir} is not a multi-view model (one data file per sample). "
                         "Fix: pass DATA instead of --view, or a model written by `ganad fit --view ...`")
    check_output_file(output)
    mv = ganad.load(model_dir)
    for det in mv.detectors_.values():  # --nonfinite: every view's detector (an inf view score makes the sum inf)
        det.on_nonfinite = nonfinite
    groups = None
    if adaptive is not None:  # the first view file holding the column names the recordings; no view reads it as a feature
        from ganad.data.readers import csv_columns
        col = adaptive["column"]
        for f in views.values():
            if col in (csv_columns(Path(f), sep=sep, decimal=decimal) or []):  # CSV / Parquet views have named columns
                groups = _read_id_column(Path(f), col, sep, decimal, option="--group-column")
                break
        if groups is None:
            raise GanadError(f"--group-column: no --view file has a column {col!r} (only CSV and Parquet files have named columns). "
                             "Fix: add the recording id as a column of one view's CSV / Parquet file")
        exclude = [*exclude, col] if col not in exclude else list(exclude)
    arrays = _model_views(mv, views, exclude, key, sep, decimal)
    z = mv.score_views(arrays)
    s = np.sum([z[v] for v in mv.views_], axis=0)
    tau = np.full(len(s), float(mv.threshold_))
    cols = {"index": np.arange(len(s)), "score": s, "label": None, "threshold": tau}
    at = None
    if groups is not None:
        assert adaptive is not None
        if len(groups) != len(s):
            raise GanadError(f"--group-column {adaptive['column']!r}: has {len(groups)} values for {len(s)} samples. Fix: check the view files")
        from ganad.scoring.adaptive import for_model
        at = for_model(mv, adaptive["n_first"], adaptive["fpr"])
        tau, warm = _adaptive_update(at, s, groups, "--view files")
        cols.update(threshold=tau, warm_up=warm.astype(np.int64))
    cols["label"] = (s > tau).astype(np.int64)
    if components:
        cols.update({f"view_{v}": z[v] for v in mv.views_})
    header = list(cols)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(output) as fh:
        fh.write(",".join(header) + "\n")
        np.savetxt(fh, np.column_stack([np.asarray(cols[k], dtype=np.float64) for k in header]),
                   fmt=SCORE_FMT + ["%d" if k == "warm_up" else "%.9g" for k in header[4:]], delimiter=",")
    if at is not None:
        _print_adaptive(at)
    return len(s)


def _model_views(mv, views: dict, exclude, key, sep, decimal) -> dict:
    """The multi-view model ``mv``'s views read from the --view files: every view of the model once,
    no other, each file's columns checked against its view's."""
    missing, extra = [v for v in mv.views_ if v not in views], [v for v in views if v not in mv.views_]
    if missing or extra:
        raise GanadError(f"--view: the model has the views {mv.views_}; " + (f"missing {missing}" if missing else "")
                         + ("; " if missing and extra else "") + (f"unknown {extra}" if extra else "")
                         + f". Fix: pass {' '.join(f'--view {v}=FILE' for v in mv.views_)}")
    arrays, names = _read_views({v: views[v] for v in mv.views_}, exclude, key, sep, decimal)
    for v in mv.views_:
        mv.detectors_[v]._check_feature_names(names[v], str(views[v]))
        mv.detectors_[v]._validate_for_scoring(arrays[v], f"view '{v}' ({views[v]})")  # a feature count off: the file named
    return arrays


def _calibrate_multiview(model_dir: Path, views: dict, output: Optional[Path], *, labels, label_column, compose, weights,
                         threshold, fpr, contamination, beta, exclude, key, sep, decimal) -> None:
    """`ganad calibrate MV --view NAME=FILE ...`: each view's standardisation re-fitted on the normal samples and the
    threshold on the summed scores (MultiViewDetector.calibrate); the views' detectors unchanged."""
    import ganad
    from ganad.multiview import is_multiview_model
    if not is_multiview_model(model_dir):
        raise GanadError(f"--view: MODEL_DIR {model_dir} is not a multi-view model (one data file per sample). "
                         "Fix: pass DATA instead of --view, or a model written by `ganad fit --view ...`")
    if compose != "default" or weights is not None:
        raise GanadError(f"{'--compose ' + compose if compose != 'default' else '--weights'}: a multi-view model's score is the sum of its "
                         "views' standardised scores; calibrating it re-fits each view's standardisation and the threshold. "
                         "Fix: drop it (each view's own composition is calibrated on its model: ganad calibrate MV/views/NAME DATA -o OTHER_DIR)")
    mv = ganad.load(model_dir)
    arrays = _model_views(mv, views, exclude, key, sep, decimal)
    n = len(next(iter(arrays.values())))
    ids = None
    if labels is not None:  # an id column left out of a view file (--exclude) that the labels CSV holds too: matched by id,
        for f in views.values():  # as for a single model (the labels were paired by position, whatever their order)
            ids = _data_ids(Path(f), labels, exclude, sep, decimal, label_column)
            if ids is not None:
                break
    y = _read_labels(labels, label_column, n, ids=ids, sep=sep, sep_option="it applies to the --view files too") if labels is not None else None
    mv.calibrate(arrays, y, threshold=threshold, fpr=fpr, contamination=contamination, beta=beta)
    mv.save(output if output is not None else model_dir)
    from ganad.scoring.composition import TailSurprise
    per_view = ({f"p90_{v}": float(k[-1]) for v, k in zip(mv.views_, mv.composer_.knots)} if isinstance(mv.composer_, TailSurprise)
                else {f"scale_{v}": float(sc) for v, sc in zip(mv.views_, mv.composer_.scale)})  # what each view's score is read against
    _print_metrics({**mv.calibration_, **per_view},
                   title="calibration (multi-view)")
    console.print(f"[green]calibrated[/] {len(mv.views_)} views -> {output or model_dir}")


#: `ganad benchmark`'s options whose API names its errors used ("calibration: is 'bogus'", "stride: is 0")
_BENCHMARK_OPTIONS = ("calibration", "compose", "peer_rhythm", "fpr", "stride", "window", "epochs", "peer_epochs",
                      "train_fraction", "event_gap", "adaptive", "beat_input")


def _in_benchmark_terms(exc: Exception) -> Exception:
    """An error of the benchmark's run in the terms of its options (``stride: is 0`` -> ``--stride: is 0``)."""
    from ganad.exceptions import in_option_terms
    msg = str(exc)
    new = in_option_terms(msg, {k: "--" + k.replace("_", "-") for k in _BENCHMARK_OPTIONS})
    return exc if new == msg else GanadError(new)


def _same_file(a: Path, b: Path | None) -> bool:
    """``a`` and ``b`` name the same file (after links and relative parts), whether or not it exists yet."""
    if b is None:
        return False
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _check_scores_path(output: Path, raw: str | None = None) -> None:
    """The scores file is CSV: refuse '-', a folder (``out/``, as typed (``raw``): Path drops the slash,
    and a file named ``out`` was written) and names that promise another format (scores.parquet would
    hold CSV text under a Parquet name)."""
    if output.is_dir() or (raw is not None and raw.endswith(("/", os.sep))):
        what = "is a folder" if output.is_dir() else "names a folder"
        raise GanadError(f"-o/--output {raw or output}: {what}, but scores are one CSV file. "
                         f"Fix: pass a file path such as {output / 'scores.csv'}")
    if str(output) == "-":
        raise GanadError("-o/--output: is '-'; scores are written to a file, not to standard output. "
                         "Fix: pass a file path such as scores.csv (`ganad stream` writes scores to standard output)")
    if output.suffix.lower() not in ("", ".csv", ".txt"):  # (.tsv would promise tabs)
        raise GanadError(f"-o/--output {output}: names a {output.suffix} file, but scores are written as CSV. "
                         f"Fix: pass a .csv path such as {output.with_suffix('.csv')}")


@app.command(epilog="Example:\n\n  ganad fit train.csv -o model/ --epochs 30 --exclude id")
def fit(
    data: Optional[Path] = typer.Argument(None, help="Training data of normal samples: CSV, Parquet, NPY or NPZ, or a folder of image files of one size (or --view NAME=FILE per view)."),
    output: Path = typer.Option(..., "-o", "--output", help="Model directory to write."),
    view: List[str] = typer.Option([], "--view", help="Multi-view model: NAME=FILE, one per view of the same samples (same rows, same order), e.g. --view beat=beats.npy --view rhythm=rr.csv; one detector of --method per view (docs/multiview.md). Instead of DATA."),
    combine: Optional[str] = typer.Option(None, help="Multi-view (--view): how the views' scores join: surprise (default: each view's -log tail probability among held-out normal samples, summed) or zscore (median / MAD z-scores, summed)."),
    method: Optional[str] = typer.Option(None, help="Detector: " + ", ".join(sorted(_method_names())) + ". Default anogan (its default score reads D's features and the input, no latent search): the best mean on the validation sets (held-out MIT-BIH DS1 records, the MNIST training split, tables of several modes; benchmarks/RESULTS.md); in series mode (--window) ganomaly, chosen on NAB validation groups."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default: the method's)."),
    latent_dim: Optional[int] = typer.Option(None, help="Latent dimension (default: the method's)."),
    net: Optional[str] = typer.Option(None, help="Network family: auto, mlp, conv1d, lstm, dcgan (default: auto)."),
    batch_size: Optional[str] = typer.Option(None, help="Mini-batch size, or auto (n/32 as a power of two in 32-256; every method's default)."),
    objective: Optional[str] = typer.Option(None, help="bce, wgan-gp or hinge (default: the method's: wgan-gp for fanogan and tadgan, bce for the others)."),
    contamination: Optional[float] = typer.Option(None, help="Expected anomaly fraction; sets the threshold (default: the method's)."),
    seed: Optional[int] = typer.Option(None, help="random_state: the same seed gives the same model on CPU (default 0)."),
    exclude: List[str] = typer.Option([], help="Column to leave out (CSV/Parquet; refused for NPY/NPZ, which have no column names), e.g. an id or label column. Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file (default: 'X' or the only array)."),
    window: Optional[int] = typer.Option(None, help="Series mode: DATA is one long series (rows = time points); points per window. See docs/series.md."),
    stride: Optional[int] = typer.Option(None, help="Series: step between window starts (default window // 4)."),
    time_column: Optional[str] = typer.Option(None, help="Series: the time column (default: a column named timestamp/time/datetime/date/ts, if any)."),
    channels: Optional[str] = typer.Option(None, help="Series: comma-separated channel columns (default: all but time and series id)."),
    series_id: Optional[str] = typer.Option(None, help="Series: column naming the series each row belongs to (several series in one file)."),
    gaps: str = typer.Option("split", help="Series: a time gap (> 3x the median step) splits the series (split), is ignored (ignore) or refused (error)."),
    point_contamination: float = typer.Option(0.01, help="Series: fraction of training points above the point threshold."),
    event_gap: Optional[int] = typer.Option(None, help="Series: runs of anomalous points with at most this many normal points between them are one event (default: the window; 0: every run is an event)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda, cuda:1 or mps (default auto: cuda when available, else cpu)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    sep: Optional[str] = typer.Option(None, help="CSV column separator (default ',', tab for .tsv), e.g. ';'."),
    decimal: str = typer.Option(".", help="CSV decimal mark, e.g. ',' for 1,5."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model in OUTPUT (refused without it)."),
    set_: List[str] = typer.Option([], "--set", help="Any model parameter as KEY=VALUE, typed like its default, e.g. --set width=8 --set search_eps=0.01. Repeatable; overrides --config and the options above."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of model parameters (key = value lines or a \\[params] table), e.g. epochs = 30."),
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint directory: the training state is written there atomically (every 60 s, or see --checkpoint-every) so that --resume can continue after a crash or a kill. See docs/training.md."),
    checkpoint_every: Optional[int] = typer.Option(None, help="With --checkpoint: write a checkpoint every N optimisation steps (default: every 60 s)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --checkpoint DIR (same data and options required; on CPU the model is the same as an uninterrupted run's)."),
):
    """Train a detector on normal data and save it to a model directory.

    Every parameter of the method can be set with --set KEY=VALUE or a --config TOML file
    (see the Python docstring of the method, e.g. ganad.AnoGAN, for the list)."""
    from ganad.data.readers import csv_columns, read_array
    methods = _methods()
    if method is None:
        method = DEFAULT_SERIES_METHOD if window is not None else DEFAULT_METHOD
    if method not in methods:
        _fail(ValueError(f"--method: unknown method {method!r}. Fix: use one of {', '.join(sorted(methods))}"))
    # the checkpoint options given: refused as a whole where checkpoints are not supported (series mode, --view),
    # before "--resume: needs --checkpoint DIR" sends the user to add a --checkpoint that is refused next
    ck_given = [name for name, on in (("--checkpoint", checkpoint is not None), ("--checkpoint-every", checkpoint_every is not None),
                                      ("--resume", resume)) if on]
    try:
        views = _data_or_views(data, view, "ganad fit train.csv -o model/, or ganad fit --view beat=beats.npy --view rhythm=rr.csv -o model/")
        if views and (window is not None or ck_given):
            raise GanadError(f"--view: does not combine with {'--window' if window is not None else ck_given[0]}. Fix: drop one of them")
        if combine is not None and not views:
            raise GanadError(f"--combine {combine}: joins the views of a multi-view model. Fix: pass --view NAME=FILE per view, or drop --combine")
        # series options without --window would be ignored without a word: refused instead
        series_only = [name for name, v in (("--stride", stride), ("--time-column", time_column), ("--channels", channels),
                                            ("--series-id", series_id), ("--event-gap", event_gap)) if v is not None]
        series_only += ["--gaps"] * (gaps != "split") + ["--point-contamination"] * (point_contamination != 0.01)
        if window is None and series_only:
            raise GanadError(f"{', '.join(series_only)}: only apply in series mode, which --window W turns on. Fix: add --window W "
                             f"(points per window) to train on DATA as one long series, or drop {', '.join(series_only)}")
        if window is not None and contamination is not None:  # it reached the window model only, whose threshold a series model never uses
            raise GanadError(f"--contamination {contamination}: sets a table or image model's threshold; a series model flags the points "
                             "above its point threshold, set by --point-contamination (the fraction of training points above it, "
                             f"default 0.01). Fix: pass --point-contamination {contamination} instead")
    except GanadError as exc:
        _fail(exc)
    try:
        from ganad.io import refuse_inside_wrapper_model
        from ganad.training.loop import resolve_device
        _refuse_existing(output, overwrite, "model")
        refuse_inside_wrapper_model(output)  # -o MV/views/NAME: a view of a multi-view model replaced behind its back
        if batch_size is not None and batch_size != "auto":
            try:
                batch_size = int(batch_size)  # type: ignore[assignment]
            except ValueError:
                raise GanadError(f"--batch-size: is {batch_size!r}. Fix: pass a whole number such as 64, or auto") from None
        given = dict(epochs=epochs, latent_dim=latent_dim, net=net, batch_size=batch_size, contamination=contamination,
                     objective=objective, random_state=seed, device=device, verbose=False if quiet else None)
        params = _model_params(methods[method], config, set_, given)
        params.setdefault("verbose", True)  # the CLI's default: a progress bar, unless --quiet, --config or --set says otherwise
        resolve_device(params.get("device", "auto"))  # an unavailable device: refused before reading or training
    except (GanadError, ValueError) as exc:
        _fail(exc)
    if ck_given and window is not None:
        _fail(ValueError(f"{', '.join(ck_given)}: not supported in series mode (--window) yet. Fix: train without {' and '.join(ck_given)}"))
    if (checkpoint_every is not None or resume) and checkpoint is None:
        _fail(ValueError(f"{'--resume' if resume else '--checkpoint-every'}: needs --checkpoint DIR. Fix: pass the checkpoint directory, "
                         "e.g. ganad fit data.csv -o model/ --checkpoint ckpt/ --resume"))
    if checkpoint is not None and output is not None:
        ck_abs, out_abs = checkpoint.resolve(), output.resolve()
        if ck_abs == out_abs or out_abs in ck_abs.parents:  # save() replaces -o: the checkpoint would block or lose it
            _fail(ValueError(f"--checkpoint {checkpoint}: is the model directory -o {output} or lies inside it. "
                             "Fix: pass a checkpoint directory outside the model directory, e.g. --checkpoint ckpt/"))
    if views:
        try:
            _fit_multiview(views, output, method, params, exclude, key, sep, decimal, combine="surprise" if combine is None else combine)
        except (GanadError, ValueError) as exc:
            _fail(exc)
        return
    assert data is not None
    if window is not None:  # series mode (issue 12): windows -> point scores -> events
        from ganad.series.commands import fit_series
        try:
            from ganad.io import check_model_path
            _refuse_key_in_series_mode(key)
            check_model_path(output, "-o/--output")  # before training, not after
            t0 = time.perf_counter()
            sd, tab = fit_series(data, output, method, {"random_state": 0, **params},
                                 window, stride, time_column, channels, series_id, gaps, point_contamination,
                                 sep=sep, decimal=decimal, exclude=exclude, event_gap=event_gap)
        except (GanadError, ValueError) as exc:
            _fail(exc)
        from ganad.training import distributed
        if not distributed.is_main_process():
            distributed.shutdown()
            return
        distributed.shutdown()
        console.print(f"[green]fitted[/] series {type(sd.detector_).__name__} on {len(tab.values)} points x {len(tab.columns)} channel(s) "
                      f"(window {sd.window_}, stride {sd.stride_}) in {time.perf_counter() - t0:.1f}s; point threshold {sd.threshold_:.4g}; saved to {output}")
        return
    try:
        from ganad.io import check_model_path
        check_model_path(output, "-o/--output")  # before training, not after
        X = read_array(data, exclude=exclude, key=key, sep=sep, decimal=decimal)
        names = csv_columns(data, exclude=exclude, sep=sep, decimal=decimal)
        from_images = _note_unread_images(data)
        cls = methods[method]
        # only what the user gave overrides the method's own defaults (f-AnoGAN's WGAN-GP, ...)
        det = cls(**{"random_state": 0, **params})
        det._layout_given = True  # the note on a shape that reads two ways comes below, in the terms of the file
        t0 = time.perf_counter()
        if checkpoint is not None:
            try:
                det.fit(X, checkpoint_dir=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
            except InputError as exc:  # the API's argument names, said as this command's options
                msg = str(exc)
                for api, opt in (("pass resume=True (CLI: --resume)", "pass --resume"), ("checkpoint_dir (CLI: --checkpoint DIR)", "--checkpoint DIR"),
                                 ("checkpoint_dir ", "--checkpoint "), ("checkpoint_dir:", "--checkpoint:"), ("checkpoint_every", "--checkpoint-every"),
                                 ("resume=True", "--resume"), ("(n_members=1)", "(--set n_members=1)"),
                                 ("optimisation steps, or None", "optimisation steps, or leave --checkpoint-every out")):
                    msg = msg.replace(api, opt)
                raise InputError(msg) from exc
        else:
            det.fit(X)  # under torchrun: distributed data-parallel, one process per rank (docs/distributed.md)
        if names is not None and len(names) == det.n_features_in_:
            det.feature_names_in_ = np.asarray(names, dtype=object)  # checked when scoring
        from ganad.training import distributed
        if not distributed.is_main_process():  # every rank holds the same model; rank 0 writes it
            distributed.shutdown()
            return
        det.save(output)
        distributed.shutdown()
    except (GanadError, ValueError) as exc:
        _fail(exc)
    console.print(f"[green]fitted[/] {type(det).__name__} on {X.shape[0]} samples of shape {X.shape[1:]} "
                  f"{_read_as(X.shape[1:], getattr(det, 'family_', None))}"
                  f"in {time.perf_counter() - t0:.1f}s; threshold {det.threshold_:.4g}; saved to {output}")
    _note_label_and_constant_columns(X, names)
    from ganad.detectors.base import ambiguous_layout  # the API's rule (AmbiguousShapeWarning), said here in the file's terms
    two_ways = not from_images and ambiguous_layout(X.shape[1:]) is not None
    if two_ways and X.ndim == 3:
        console.print(f"[yellow]note[/]: samples of shape {X.shape[1:]} are read as series windows ({X.shape[1]} channels x "
                      f"{X.shape[2]} time steps). If they are {X.shape[1]}x{X.shape[2]} images, save them with a channel axis, "
                      f"(n, 1, {X.shape[1]}, {X.shape[2]}): np.save(path, X[:, None]), and fit again.")
    if two_ways and X.ndim == 4:
        console.print(f"[yellow]note[/]: samples of shape {X.shape[1:]} are read as images of {X.shape[1]} channels, "
                      f"{X.shape[2]} x {X.shape[3]} pixels (channels first). If they are {X.shape[1]}x{X.shape[2]} images with "
                      f"{X.shape[3]} channel(s) last, save them channels first, (n, {X.shape[3]}, {X.shape[1]}, {X.shape[2]}): "
                      "np.save(path, X.transpose(0, 3, 1, 2)), and fit again.")


def _note_label_and_constant_columns(X, names) -> None:
    """After a table fit: name the columns that hold one value in every training row (nothing to learn;
    often a label column of the normal class) and the columns named like a label, with the --exclude fix."""
    from ganad.detectors.base import looks_like_label
    if names is None or X.ndim != 2 or len(names) != X.shape[1]:
        return
    const = [str(names[j]) for j in range(X.shape[1]) if np.ptp(X[:, j]) == 0]
    labels = [str(c) for c in names if looks_like_label(c)]
    if const:
        console.print(f"[yellow]note[/]: column(s) {const[:8]}{' ...' if len(const) > 8 else ''} hold one value in every training row: "
                      "nothing to learn there, and any other value at scoring time reads as anomalous")
    if labels:
        console.print(f"[yellow]note[/]: column(s) {labels[:4]} were trained as features; if they hold labels, fit again with "
                      + " ".join(f"--exclude {c}" for c in labels[:4]))


def _read_as(shape: tuple, family) -> str:
    """How ``fit`` read a sample of ``shape`` (for the summary line): '(vectors, mlp nets) ', ..."""
    if len(shape) == 1:
        what = "vectors"
    elif len(shape) == 2:
        what = f"series windows: {shape[0]} channel(s) x {shape[1]} steps"
    else:
        what = f"images: {shape[0]} channel(s) x {' x '.join(map(str, shape[1:]))}"
    return f"({what}, {family} nets) " if family else f"({what}) "


@app.command(epilog="Example:\n\n  ganad score model/ new.csv -o scores.csv --components")
def score(
    model_dir: Path = typer.Argument(..., help="Model directory written by `ganad fit`."),
    data: Optional[Path] = typer.Argument(None, help="Data to score: CSV, Parquet, NPY or NPZ, same columns as at fit time, or a folder of image files (scores get a 'file' column) (or --view NAME=FILE per view)."),
    output_text: str = typer.Option(..., "-o", "--output", help="CSV to write: index, score, label, threshold (an --id-column first); a series model writes a row per time point with its event column (docs/series.md)."),
    view: List[str] = typer.Option([], "--view", help="Multi-view model: NAME=FILE for each of its views, the same samples in every file (instead of DATA); --components adds each view's term of the sum (its surprise among normal samples, or z-score with --combine zscore)."),
    chunk_rows: Optional[int] = typer.Option(None, help="Rows read and scored at a time (bounded memory for large files; default 65536; a folder of images: about 2**26 pixel values, e.g. 446 RGB images of 224 x 224). Table and image models only: --view files and series are read whole."),
    events: Optional[Path] = typer.Option(None, help="Series models: events CSV to write (default: OUTPUT with .events.csv)."),
    components: bool = typer.Option(False, help="Also write each score component."),
    maps: Optional[Path] = typer.Option(None, "--maps", help="Table and image models: also write each sample's anomaly map (where in the input the residual |x - x_hat| lies, scaled units) as one NPY array of shape (n, *sample shape), float32, rows in the scores file's order."),
    exclude: List[str] = typer.Option([], help="Column to leave out, as at fit time. Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file."),
    sep: Optional[str] = typer.Option(None, help="CSV column separator (default ',', tab for .tsv), e.g. ';'."),
    decimal: str = typer.Option(".", help="CSV decimal mark, e.g. ',' for 1,5."),
    nonfinite: str = typer.Option("raise", help="A row whose score overflows to NaN/inf: raise (error naming it) or max (most anomalous)."),
    id_column: Optional[str] = typer.Option(None, help="CSV/Parquet column copied into the output as its first column, so that scores join back (it is not a feature)."),
    group_column: Optional[str] = typer.Option(None, help="With --warm-up: the CSV/Parquet column naming each row's recording (patient, machine), in DATA or, with --view, in the view file(s) holding it (not a feature). A recording's rows must be in time order."),
    warm_up: Optional[int] = typer.Option(None, help="Patient-adaptive thresholds (with --group-column): after each recording's first N rows, its threshold is the (1 - fpr) quantile of their scores, never below the model's (docs/training.md). The threshold column then varies by row; a warm_up column marks each recording's first N rows."),
    fpr: Optional[float] = typer.Option(None, help="With --warm-up: the false-positive rate of each recording's own threshold (default: the rate the model's threshold was calibrated at with --threshold fpr, else its contamination)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT file (refused without it)."),
    progress: bool = typer.Option(False, "--progress", help="Show progress even when stderr is not a terminal (there: a plain line every 5 s, for logs and CI)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Score data with a saved model; streams the input in chunks and writes per row: index, score, label
    (score > threshold) and the threshold (read by `ganad evaluate`)."""
    adaptive = _check_adaptive_options(group_column, warm_up, fpr, nonfinite)
    from ganad.series import is_series_model
    output = Path(output_text)  # taken as text: a Path would drop the trailing slash of a folder (out/)
    try:
        _check_scores_path(output, output_text)
        if nonfinite not in ("raise", "max"):
            raise GanadError(f"--nonfinite: is {nonfinite!r}. Fix: use raise or max")
        views = _data_or_views(data, view, "ganad score model/ test.csv -o scores.csv, or ganad score model/ --view beat=b.npy "
                               "--view rhythm=r.csv -o scores.csv", model_dir, "score")
        if chunk_rows is not None and views:  # it was ignored without a word: every view file is read whole
            raise GanadError(f"--chunk-rows {chunk_rows}: does not apply to --view, whose files are read whole (the views of a "
                             "sample are scored together). Fix: drop --chunk-rows, or split the view files into parts of the same rows "
                             "and score each part")
        _refuse_existing(output, overwrite, "file")
        if events is not None and not is_series_model(model_dir):  # it was ignored without a word
            raise GanadError(f"--events {events}: applies to series models (events are runs of anomalous time points); "
                             f"{model_dir} is not one. Fix: drop --events (a table model's scores file has a label per row)")
        if maps is not None:
            if views:
                raise GanadError("--maps: is not taken with a multi-view model (its score is the sum of the views' standardised "
                                 "scores, and each view's map has its own input's shape). Fix: score each view's model "
                                 "(MODEL_DIR/views/NAME) on its file with --maps, or drop --maps")
            if maps.suffix.lower() != ".npy":
                raise GanadError(f"--maps {maps}: maps are written as one NPY array. Fix: pass a .npy path such as {maps.with_suffix('.npy')}")
            if maps.resolve() == output.resolve():
                raise GanadError(f"--maps {maps}: is the scores file too. Fix: choose another path")
            from ganad.io import check_output_file
            check_output_file(maps, "--maps", example="maps.npy")
            _refuse_existing(maps, overwrite, "file", "--maps")
        if views:
            if id_column is not None:
                raise GanadError("--id-column: not taken with --view (the scores keep the files' row order in 'index'). Fix: drop --id-column")
            n = _score_multiview(model_dir, views, output, components, exclude, key, sep, decimal, nonfinite, adaptive=adaptive)
            console.print(f"[green]scored[/] {n} samples -> {output}")
            return
    except (GanadError, ValueError) as exc:
        _fail(exc)
    assert data is not None
    try:  # an output naming the data would replace the file being scored (with --overwrite)
        for path, name in ((output, "-o/--output"), (maps, "--maps"), (events, "--events")):
            if path is not None and _same_file(path, data):
                raise GanadError(f"{name} {path}: is the data being scored ({data}). Fix: choose another path")
    except GanadError as exc:
        _fail(exc)
    if is_series_model(model_dir):  # issue 12: a series model writes a score per time point and an events file
        from ganad.series.commands import score_series_file
        try:
            from ganad.io import check_output_file
            ev_path, ev_name = (events, "--events") if events is not None else (output.with_name(output.stem + ".events.csv"),
                                                                               "events file (beside -o/--output)")
            check_output_file(output)  # a folder, under a file, read-only: refused before scoring, nothing written
            check_output_file(ev_path, ev_name, example="scores.events.csv")
            if events is not None and events.suffix.lower() not in ("", ".csv", ".txt"):
                raise GanadError(f"--events {events}: names a {events.suffix} file, but events are written as CSV. "
                                 f"Fix: pass a .csv path such as {events.with_suffix('.csv')}")
            if _same_file(ev_path, output):
                raise GanadError(f"--events {ev_path}: is the scores file -o/--output too; one would replace the other. "
                                 f"Fix: choose another path, or leave --events out ({output.with_name(output.stem + '.events.csv')})")
            _refuse_existing(ev_path, overwrite, "file", ev_name)
            if adaptive is not None:
                raise GanadError("--warm-up / --group-column: apply to table and multi-view models scored row by row; a series model "
                                 "flags runs of time points (its events). Fix: drop them (a series model's threshold is calibrated on its "
                                 "own normal series: docs/series.md)")
            if id_column is not None:
                raise GanadError("--id-column: applies to table models; a series model's scores carry the index and time "
                                 "columns. Fix: drop --id-column and join on index or time")
            _refuse_key_in_series_mode(key)
            if chunk_rows is not None:  # ignored without a word before: a series is scored whole (its windows span rows)
                raise GanadError(f"--chunk-rows {chunk_rows}: does not apply to a series model, which reads each series whole "
                                 "(its windows run across rows; scoring runs in bounded blocks of windows). Fix: drop --chunk-rows")
            if maps is not None:
                raise GanadError("--maps: a series model's map is its per-channel contribution at each time point. "
                                 "Fix: pass --components instead (contrib_<channel> columns in the scores file)")
            n, n_ev, ev_path, unread = score_series_file(model_dir, data, output, events, components, sep=sep, decimal=decimal,
                                                         nonfinite=nonfinite, exclude=exclude)
        except (GanadError, ValueError) as exc:
            _fail(exc)
        console.print(f"[green]scored[/] {n} time points -> {output}; {n_ev} event(s) -> {ev_path}")
        if unread:  # channels are read by name: a column the model was not trained on is left out, said so
            console.print(f"[yellow]note[/]: column(s) {unread} of {data} are not channels, the time or the series id of the model "
                          "and were not read (--exclude them to silence this note)")
        return
    import ganad
    from ganad.data.readers import csv_columns, file_format, image_name, image_plan, iter_chunks
    from ganad.progress import progress_mode, scoring_bar
    try:
        from ganad.io import check_output_file
        check_output_file(output)
        det = ganad.load(model_dir)
        try:  # saved after set_params changed its inversion, before calibrate: its threshold_ belongs to other scores
            if hasattr(det, "_check_scoring_current"):
                det._check_scoring_current("score")
        except InputError as exc:
            raise GanadError(f"{model_dir}: {exc} (on the command line: ganad calibrate {model_dir} NORMAL_DATA)") from exc
        det.on_nonfinite = nonfinite
        ids, id_name = None, id_column
        if id_column is not None:
            ids = _read_id_column(data, id_column, sep, decimal)
            exclude = [*exclude, id_column] if id_column not in exclude else list(exclude)
        groups, at = None, None
        if adaptive is not None:
            groups = _read_id_column(data, adaptive["column"], sep, decimal, option="--group-column")
            exclude = [*exclude, adaptive["column"]] if adaptive["column"] not in exclude else list(exclude)
            from ganad.scoring.adaptive import for_model
            at = for_model(det, adaptive["n_first"], adaptive["fpr"])
        rgb = False
        if file_format(data) == "images":  # a folder of images: each score names its file, as --id-column would
            files, first_colour = image_plan(data)
            if id_column is None:
                ids, id_name = np.asarray([image_name(data, f) for f in files], dtype=object), "file"  # crack/000.png in a nested folder
            _note_unread_images(data)
            shape = tuple(getattr(det, "data_shape_", ()) or ())
            rgb = len(shape) == 3 and shape[0] == 3  # grayscale images scored by a colour model: read as RGB (R = G = B)
            if chunk_rows is None and shape:  # images read at a time: about 2**26 pixel values (256 MB), not 65,536 images (39 GB at 224 x 224 RGB)
                chunk_rows = max(1, (1 << 26) // int(np.prod(shape)))
            if len(shape) == 3 and shape[0] == 1 and first_colour is not None:
                raise GanadError(f"{data}: {first_colour.name} has colour, so the folder reads as RGB images (3 channels), but the model "
                                 f"{model_dir} was fitted on grayscale images (1 channel). Fix: convert the images to grayscale "
                                 "(Pillow: Image.open(f).convert('L').save(f)), or fit the model on colour images")
        try:
            det._check_feature_names(csv_columns(data, exclude=exclude, sep=sep, decimal=decimal), str(data))
        except InputError as exc:
            _column_hint(exc, "--exclude COL leaves a column out, --id-column COL keeps it as the id of each score", data, sep,
                         getattr(det, "feature_names_in_", None))
        from ganad.files import atomic_paths, naming, new_folders_undone
        from ganad.scoring.composition import required_components
        n = 0
        raw = contextlib.ExitStack()
        # the output's (and the maps') new folders are made when writing starts, and removed again when the
        # data is refused on the way (a chunk is read while the file is written): no empty folder left behind.
        # The scores and the maps are both written whole before either is renamed into place (atomic_paths)
        with new_folders_undone(output, *([maps] if maps is not None else [])), raw, atomic_paths() as outs, \
                open(outs.add(output), "w", encoding="utf-8") as fh, progress_mode(_show_progress(progress, quiet), console), \
                scoring_bar(_count_rows(data, key), f"scoring {data.name}") as bar:
            # maps go to a temporary raw file chunk by chunk (bounded memory), then into the NPY once the row count is known
            if maps is not None:  # its folder may be new (-o and --maps in folders to be made, as for the scores file)
                maps.resolve().parent.mkdir(parents=True, exist_ok=True)
            mfh = raw.enter_context(tempfile.TemporaryFile(dir=maps.resolve().parent)) if maps is not None else None
            header = None
            for chunk in iter_chunks(data, 65536 if chunk_rows is None else chunk_rows, exclude=exclude, key=key, sep=sep, decimal=decimal,
                                     rgb=rgb):
                if len(chunk) == 0:
                    continue
                if bar is not None:
                    bar.batch(n, len(chunk))
                try:
                    # the components only where asked for (one nobody asked for, non-finite beside a finite score,
                    # must not refuse the row); the plain score as decision_function computes it
                    r = (det.score_components(chunk, return_map=mfh is not None) if components
                         else det._score_with_map(chunk) if mfh is not None else det._score(chunk, required_components(det.composer_)))
                except InputError as exc:
                    raise InputError(f"{data}, rows {n} to {n + len(chunk) - 1} (row numbers below count from {n}): {exc}") from exc
                tau = np.full(len(chunk), float(det.threshold_))
                cols = {"index": np.arange(n, n + len(chunk)), "score": r.scores, "label": None, "threshold": tau}
                if at is not None:
                    assert groups is not None
                    if n + len(chunk) > len(groups):
                        raise GanadError(f"{data}: --group-column {adaptive['column']!r} has {len(groups)} values but the data has more rows. "
                                         "Fix: check the file")
                    tau, warm = _adaptive_update(at, r.scores, groups[n:n + len(chunk)], data, n)
                    cols.update(threshold=tau, warm_up=warm.astype(np.int64))
                cols["label"] = (r.scores > tau).astype(np.int64)
                if components:
                    cols.update(r.components)
                if header is None:
                    header = list(cols)
                    fh.write(",".join(([_csv_name(id_name)] if ids is not None and id_name is not None else []) + header) + "\n")
                fmt = SCORE_FMT + ["%d" if k == "warm_up" else "%.9g" for k in header[4:]]
                if ids is not None:  # ids may be text: written through pandas, the numbers formatted as without
                    import pandas as pd
                    if n + len(chunk) > len(ids):
                        raise GanadError(f"{data}: {'the file list' if id_column is None else f'--id-column {id_column!r}'} has {len(ids)} values "
                                         "but the data has more rows. Fix: check the file (a folder: do not add images while it is scored)")
                    df = pd.DataFrame({"_id": ids[n:n + len(chunk)], **{k: [f % v for v in np.asarray(cols[k], dtype=np.float64)]
                                                                       for k, f in zip(header, fmt)}})
                    df.to_csv(fh, header=False, index=False, lineterminator="\n")
                else:
                    block = np.column_stack([np.asarray(cols[k], dtype=np.float64) for k in header])
                    np.savetxt(fh, block, fmt=fmt, delimiter=",")
                if mfh is not None:
                    with naming(maps):
                        mfh.write(np.ascontiguousarray(r.map, dtype="<f4").tobytes())
                n += len(chunk)
                if bar is not None:
                    bar.done_batch()
            if n == 0:
                raise GanadError(f"{data}: has no samples. Fix: pass a non-empty file")
            if mfh is not None:
                _write_maps(maps, mfh, (n, *det.data_shape_), outs.add)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    console.print(f"[green]scored[/] {n} samples -> {output}" + (f"; anomaly maps -> {maps}" if maps is not None else ""))
    if at is not None:
        _print_adaptive(at)


def _check_adaptive_options(group_column: Optional[str], warm_up: Optional[int], fpr: Optional[float], nonfinite: str) -> Optional[dict]:
    """`ganad score --group-column COL --warm-up N [--fpr F]`, checked before anything is read: None without them."""
    try:
        if warm_up is None and group_column is None:
            if fpr is not None:
                raise GanadError(f"--fpr {fpr}: sets the rate of the per-recording thresholds of --warm-up, which is not given. "
                                 "Fix: add --group-column COL --warm-up N, or drop --fpr (the model's threshold is set by `ganad calibrate --fpr`)")
            return None
        if warm_up is None or group_column is None:
            given, missing = ("--group-column", "--warm-up N") if warm_up is None else ("--warm-up", "--group-column COL")
            raise GanadError(f"{given}: patient-adaptive thresholds need both a recording id column and a warm-up length. "
                             f"Fix: add {missing}, e.g. --group-column record --warm-up 300")
        if warm_up < 2:
            raise GanadError(f"--warm-up: is {warm_up}. Fix: pass a warm-up of at least 2 rows per recording, e.g. 300")
        if fpr is not None and not 0.0 <= fpr < 1.0:
            raise GanadError(f"--fpr: is {fpr}. Fix: pass the tolerated false-positive rate, in [0, 1), such as 0.05")
        if nonfinite != "raise":
            raise GanadError("--nonfinite max: an infinite score inside a warm-up has no quantile to set a threshold by. "
                             "Fix: drop --nonfinite (rows that overflow are refused, naming them) or --warm-up")
    except GanadError as exc:
        _fail(exc)
    return {"column": group_column, "n_first": int(warm_up), "fpr": fpr}


def _adaptive_update(at, scores: np.ndarray, groups: np.ndarray, data, first_row: int = 0):
    """Thresholds and warm-up flags of one chunk's rows, each recording's rows fed in their order."""
    import pandas as pd
    tau, warm = np.empty(len(scores)), np.zeros(len(scores), dtype=bool)
    codes, uniq = pd.factorize(groups)
    if (codes < 0).any():
        row = first_row + int(np.flatnonzero(codes < 0)[0])
        raise GanadError(f"{data}: row {row} has no recording id in the --group-column. Fix: give every row its recording's id")
    from ganad.data.validation import rows_by_code
    for g, idx in zip(uniq, rows_by_code(codes, len(uniq))):  # one stable sort, not a pass over the chunk per recording
        tau[idx], warm[idx] = at.update(scores[idx], str(g))
    return tau, warm


def _print_adaptive(at) -> None:
    """How many recordings finished their warm-up (their own threshold) and how many are still in it."""
    d = at.to_dict()
    own, warming = d["own"], d["warm"]
    console.print(f"patient-adaptive thresholds (fpr {at.fpr:g}, warm-up {at.n_first} rows): {len(own)} recording(s) with their own "
                  f"threshold, {len(warming)} still in their warm-up (the model's threshold {at.threshold:.6g} held there)"
                  + (f"; raised above the model's for {sum(v > at.threshold for v in own.values())}" if own else ""))


def _write_maps(path: Path, raw, shape: tuple, temporary) -> None:
    """The NPY file of ``shape`` (float32) whose data are the raw bytes written to ``raw``, into the file
    ``temporary(path)`` names (renamed into place with the scores file, as a pair)."""
    import shutil
    from ganad.files import naming
    with naming(path):
        raw.flush()
        raw.seek(0)
    with naming(path), open(temporary(path), "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": tuple(int(d) for d in shape)})
        shutil.copyfileobj(raw, fh, 1 << 20)


def _note_unread_images(data: Path) -> bool:
    """Whether DATA is a folder of images; if so, a note naming the entries of the folder that were not read."""
    from ganad.data.readers import IMAGE_SUFFIXES, file_format, image_folder
    if not data.is_dir() or file_format(data) != "images":
        return False
    other = image_folder(data)[1]
    if other:
        console.print(f"[yellow]note[/]: {len(other)} entr{'y' if len(other) == 1 else 'ies'} of {data} not read (not an image file "
                      f"{'/'.join(e.lstrip('.') for e in IMAGE_SUFFIXES)}, or a subfolder): "
                      + ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else ""))
    return True


#: index, score, label, threshold of a scores file: the score and the threshold with every digit of their
#: float64 (a score a hair above the threshold, label 1, must not print equal to it), components with 9
SCORE_FMT = ["%d", "%.17g", "%d", "%.17g"]


def _csv_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n\r') else name


def _read_id_column(data: Path, column: str, sep: Optional[str], decimal: str, option: str = "--id-column"):
    """The --id-column (or ``option``'s) values of a CSV / Parquet file, as strings exactly as written (ids are labels, not numbers)."""
    import pandas as pd
    from ganad.data.readers import file_format
    fmt = file_format(data)
    try:
        if fmt == "csv":
            s = sep if sep is not None else ("\t" if data.suffix.lower() == ".tsv" else ",")
            cols = pd.read_csv(data, sep=s, nrows=0).columns
            if column not in cols:
                raise GanadError(f"{option}: {data} has no column {column!r}. Fix: use one of {list(cols)[:10]}")
            values = pd.read_csv(data, sep=s, usecols=[column], dtype=str, keep_default_na=False)[column]
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            names = pq.ParquetFile(data).schema_arrow.names
            if column not in names:
                raise GanadError(f"{option}: {data} has no column {column!r}. Fix: use one of {names[:10]}")
            values = pq.read_table(data, columns=[column]).to_pandas(ignore_metadata=True)[column].astype(str)  # an index column too
        elif fmt == "images":
            raise GanadError(f"{option}: {data} is a folder of images, which has no columns; the scores carry each image's "
                             "name in the 'file' column. Fix: drop --id-column")
        else:
            raise GanadError(f"{option}: {data} is {fmt.upper()}, which has no named columns. Fix: use a CSV or Parquet file with an id column, or join on the output's index")
    except GanadError:
        raise
    except Exception as exc:
        raise GanadError(f"{option}: cannot read column {column!r} of {data} ({exc}). Fix: check the file and the column name") from exc
    return values.to_numpy(dtype=object)


def _count_rows(data: Path, key: Optional[str]):
    """Rows of a data file for the progress bar's total (None when not cheaply known)."""
    try:
        from ganad.data.readers import file_format
        fmt = file_format(data)
        if fmt == "npy":
            return int(np.load(data, mmap_mode="r", allow_pickle=False).shape[0])
        if fmt == "images":
            from ganad.data.readers import image_folder
            return len(image_folder(data)[0])
        if fmt == "parquet":
            import pyarrow.parquet as pq
            return int(pq.ParquetFile(data).metadata.num_rows)
        if fmt == "csv":
            lines, last = 0, b"\n"
            with open(data, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    lines += block.count(b"\n")
                    last = block[-1:]
            return max(lines + (last != b"\n") - 1, 0)  # minus the header
    except Exception:
        return None
    return None


def _is_label_text(name) -> bool:
    """Whether a column name is in fact a 0/1 label ("0", "1", "1.0", np.savetxt's "0.000000000000000000e+00")."""
    try:
        return float(str(name).strip()) in (0.0, 1.0)
    except ValueError:
        return False


def _labels_sep(path: Path, sep: Optional[str]) -> str:
    """The column separator of a labels CSV: ``sep`` (--sep) if given, else ',' (tab for .tsv), as for data files;
    but ',' where the file read with ``sep`` has one column whose header holds ',' (a labels file as pandas
    writes it by default, beside ';'-separated data)."""
    s = sep if sep is not None else ("\t" if path.suffix.lower() == ".tsv" else ",")
    if s != ",":
        import pandas as pd
        try:
            cols = pd.read_csv(path, sep=s, nrows=0).columns
        except Exception:
            return s  # the reader names the problem
        if len(cols) == 1 and "," in str(cols[0]):
            return ","
    return s


def _per_group(df, path: Path, column: str, y: np.ndarray, pred: Optional[np.ndarray], fpr: float) -> dict:
    """``evaluate --group-column``: each recording's false-positive rate and recall at the decisions ``pred``, and the
    recordings whose rate exceeds twice ``fpr`` (of those with at least 20 normal rows)."""
    if column not in df.columns:
        raise GanadError(f"--group-column: {path} has no column {column!r}. Fix: score with `ganad score ... --id-column {column}` "
                         f"(it writes the recording id first), or use one of {list(df.columns)[:10]}")
    if pred is None:
        raise GanadError(f"--group-column: {path} carries no decisions (no threshold or label column), so there is no false-positive "
                         "rate per recording. Fix: pass the scores file `ganad score` wrote")
    if not 0.0 < fpr < 1.0:
        raise GanadError(f"--fpr: is {fpr}. Fix: pass the target false-positive rate, in (0, 1), such as 0.05")
    g = df[column].astype(str).to_numpy()
    p = np.asarray(pred)
    per = {}
    for r in dict.fromkeys(g):  # in order of first appearance
        m = g == r
        n_norm, n_anom = int(((y == 0) & m).sum()), int(((y == 1) & m).sum())
        per[r] = {"n": int(m.sum()), "n_normal": n_norm, "n_anomalies": n_anom,
                  "fpr": float(p[m & (y == 0)].mean()) if n_norm else None,
                  "recall": float(p[m & (y == 1)].mean()) if n_anom else None}
    counted = {r: v for r, v in per.items() if v["n_normal"] >= 20}
    over = sorted((r for r, v in counted.items() if v["fpr"] > 2 * fpr), key=lambda r: -counted[r]["fpr"])
    return {"per_group": per, "group_fpr_target": float(fpr), "groups_counted": len(counted), "groups_over_2x_fpr": over}


def _print_per_group(pg: dict) -> None:
    over, target = pg["groups_over_2x_fpr"], pg["group_fpr_target"]
    console.print(f"recordings with more than twice the target false-positive rate ({2 * target:g}): {len(over)} of "
                  f"{pg['groups_counted']} with at least 20 normal rows" + ("" if over else " (none)"))
    if over:
        t = Table(title="recordings over twice the target rate")
        for c in ("recording", "normal rows", "false-positive rate", "recall"):
            t.add_column(c, justify="left" if c == "recording" else "right")
        for r in over[:20]:
            v = pg["per_group"][r]
            t.add_row(r, str(v["n_normal"]), f"{v['fpr']:.4f}", "-" if v["recall"] is None else f"{v['recall']:.4f}")
        out.print(t)
        if len(over) > 20:
            console.print(f"... and {len(over) - 20} more (metrics.json, per_group)")


def _per_class(classes: np.ndarray, s: np.ndarray, normal: str, pred: Optional[np.ndarray] = None) -> dict:
    """``--normal``: the normal class against each other class (its samples and the normal ones only): AUROC,
    AUPRC, the class's count and (with decisions) the share of it flagged."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    is_normal = classes == normal
    out = {}
    for c in sorted(set(classes.tolist()) - {normal}):
        sel = is_normal | (classes == c)
        yc = (classes[sel] == c).astype(np.int64)
        out[c] = {"n": int(yc.sum()), "auroc": float(roc_auc_score(yc, s[sel])), "auprc": float(average_precision_score(yc, s[sel]))}
        if pred is not None:
            out[c]["flagged"] = float(np.mean(np.asarray(pred)[classes == c] == 1))
    return out


def _read_labels(path: Path, column: Optional[str], n: int, ids: Optional[tuple] = None, sep: Optional[str] = None,
                 sep_option: str = "the separator of the labels file", normal: Optional[str] = None, classes_out: Optional[list] = None):
    """Labels, one per sample. ``ids`` = (column name, the samples' ids as text): a labels CSV holding that
    column is aligned to the samples by it (never paired by row position when the orders differ).
    ``sep``: the labels CSV's column separator (None: ',', tab for .tsv); ``sep_option``: a note on --sep in the fix.
    ``normal``: the labels are class names and this one is normal (1 = any other class); the classes, as
    text, are appended to ``classes_out``."""
    from ganad.data.readers import read_array
    from ganad.data.validation import check_labels
    import pandas as pd
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        s = _labels_sep(path, sep)
        try:
            df = pd.read_csv(path, sep=s)
        except Exception as exc:
            raise GanadError(f"{path}: cannot be read as CSV with the separator {s!r} ({exc}). "
                             "Fix: pass a CSV with a label column, separated as --sep says (default ',')") from exc
        if df.shape[1] == 1:
            other = next((o for o in (",", ";", "\t", "|") if o != s and o in str(df.columns[0])), None)
            if other is not None:  # the header read as one column: the file is separated by another character
                raise GanadError(f"{path}: has one column {str(df.columns[0])[:40]!r} when read with the separator {s!r}, "
                                 f"and it looks separated by {other!r}. Fix: pass --sep {other!r} ({sep_option}), or write "
                                 "the labels file separated by ','")
        if df.shape[1] == 1 and _is_label_text(df.columns[0]) and len(df) == n - 1:
            # a header-less file of 0/1 labels: its first label was taken as the column name
            df = pd.read_csv(path, sep=s, header=None)
        elif (normal is not None and column is None and df.shape[1] == 1 and len(df) == n - 1
              and str(df.columns[0]).strip() in set(df.iloc[:, 0].astype(str).str.strip())):
            # a header-less file of class names (N, V, N, ...): its first class, one of the others, was taken as the column name
            df = pd.read_csv(path, sep=s, header=None)
        aligned = False
        if ids is not None and ids[0] in df.columns and column != ids[0]:
            df = pd.read_csv(path, sep=s, dtype={ids[0]: str})
            # the ids as written, as the samples' are read ('NA', 'null' or an empty cell is an id, not a missing value)
            df[ids[0]] = pd.read_csv(path, sep=s, usecols=[ids[0]], dtype=str, keep_default_na=False)[ids[0]]
            df = _align_by_id(df, path, ids, n)
            aligned = True
            if column is None and df.shape[1] == 1:
                column = df.columns[0]
        if column is None:
            if df.shape[1] != 1:
                raise GanadError(f"{path}: has columns {list(df.columns)[:8]}; which holds the labels? Fix: pass --label-column NAME")
            column = df.columns[0]
        if column not in df.columns:
            raise GanadError(f"{path}: has no column {column!r}. Fix: use one of {list(df.columns)[:8]}")
        id_like = [c for c in df.columns if c != column and _looks_like_id(c)]
        if id_like and not aligned:
            # the labels carry ids the samples do not: pairing them by row position would be silent and wrong
            # whenever the labels file lists the samples in another order
            c = id_like[0]
            raise GanadError(f"{path}: has an id column {str(c)!r}, but the samples carry no {str(c)!r} to pair it with, so each "
                             f"label would go to the sample in its row position, whatever order {path.name} lists them in. "
                             f"Fix: give the samples their ids (`ganad score ... --id-column {c}`; for calibrate, keep the "
                             f"column in DATA with `--exclude {c}`), or pass a labels file of the label column alone, in the "
                             "samples' order")
        y = df[column].to_numpy()
    else:
        if column is not None:  # an array file has no named columns: the option would be ignored without a word
            raise GanadError(f"--label-column {column!r}: {path} is {path.suffix or 'an array'} file without named columns. "
                             "Fix: drop --label-column (the array holds one label per sample), or pass a CSV labels file")
        try:
            y = read_array(path, allow_1d=True).reshape(-1) if normal is None else _class_array(path)
        except GanadError as exc:
            if "--key" not in str(exc):
                raise
            # the data readers' advice (--key NAME) names an option of fit / score that the labels options lack
            raise GanadError(str(exc).split(" Fix:")[0].rstrip(".") + ". Fix: save the labels alone, np.save('labels.npy', y), "
                             "or as the NPZ's only array (or its array 'X'), or write them to a CSV column") from exc
    if normal is not None:
        y = _classes_to_labels(y, normal, path, n, classes_out)
    return check_labels(y, n, f"labels ({path})")


def _class_array(path: Path) -> np.ndarray:
    """``--normal``: the classes an NPY, NPZ or Parquet labels file holds, as stored (text or numbers), read as
    ``read_array`` reads labels but for the check that they are numbers (np.load alone failed on an NPZ with a
    traceback and on a Parquet file or an object array with numpy's advice to load pickled data)."""
    from ganad.data.readers import _npy_array, _npz_array, file_format
    fmt = file_format(path)  # an unknown extension or a folder: refused, naming the formats
    try:
        if fmt == "npy":
            return np.asarray(_npy_array(path, allow_1d=True)).reshape(-1)
        if fmt == "npz":
            return np.asarray(_npz_array(path, None, allow_1d=True)).reshape(-1)
    except GanadError as exc:
        if "Python objects" in str(exc):
            raise GanadError(str(exc).split(" Fix:")[0].rstrip(".") + ". Fix: save the classes as text, np.save(path, np.asarray(classes, "
                             "dtype=str)), or write them to a CSV column") from exc
        raise
    if fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            df = pq.read_table(path).to_pandas(ignore_metadata=True)
        except Exception as exc:
            raise GanadError(f"{path}: cannot be read as Parquet ({exc}). Fix: pass a Parquet file of one class column, or a CSV") from exc
        df = df[[c for c in df.columns if not str(c).startswith("__index_level_")]]
        if df.shape[1] != 1:
            raise GanadError(f"{path}: has columns {list(df.columns)[:8]}; with --normal a Parquet labels file holds one column, the "
                             "classes. Fix: write the class column alone, or pass a CSV with --label-column NAME")
        return df.iloc[:, 0].to_numpy()
    raise GanadError(f"{path}: is {fmt} data, not labels. Fix: pass a CSV, NPY, NPZ or Parquet file of one class per sample")


def _classes_to_labels(values, normal: str, path: Path, n: int, classes_out: Optional[list]) -> np.ndarray:
    """``--normal``: class names (text or numbers, compared as text without surrounding spaces) to 0 for the
    normal class and 1 for every other; the classes go to ``classes_out``."""
    import pandas as pd
    v = pd.Series(np.asarray(values).reshape(-1))
    if v.isna().any():
        i = int(np.flatnonzero(v.isna().to_numpy())[0])
        raise GanadError(f"labels ({path}): row {i} has no class (an empty cell, or a name a CSV reader takes for a missing "
                         "value: NA, N/A, None, null, nan). Fix: give every sample its class (e.g. N, S, V), and rename a class "
                         "written like a missing value")
    cls = v.map(lambda c: str(c.item() if isinstance(c, np.generic) else c).strip()).to_numpy(dtype=object)
    if len(cls) != n:
        raise GanadError(f"labels ({path}): has {len(cls)} classes for {n} scored samples. Fix: pass one class per scored sample")
    seen = sorted(set(cls.tolist()))
    normal = str(normal).strip()
    if normal not in seen:
        raise GanadError(f"--normal {normal!r}: is not a class of {path} (classes {seen[:10]}{' ...' if len(seen) > 10 else ''}). "
                         "Fix: pass the class that means normal, as the labels write it")
    if classes_out is not None:
        classes_out.extend(cls.tolist())
    return (cls != normal).astype(np.int64)


def _looks_like_id(name) -> bool:
    """A labels-file column named like a sample id (id, sample_id, file, key, uuid, ...)."""
    n = str(name).strip().lower()
    return n in ("id", "ids", "key", "uid", "uuid", "file", "filename", "path", "sample", "name") or n.endswith(("_id", "_key", " id"))


def _align_by_id(df, path: Path, ids: tuple, n: int):
    """The rows of a labels table put in the samples' order by their shared id column (the id column dropped)."""
    name, values = ids
    key = df[name].to_numpy(dtype=object)
    known = set(key)
    if len(known) != len(key):
        raise GanadError(f"{path}: the id column {name!r} holds repeated ids. Fix: give each sample one label row")
    missing = [v for v in values if v not in known]
    if missing or len(key) != n:
        raise GanadError(f"{path}: the id column {name!r} does not hold the {n} samples' ids"
                         + (f" (missing e.g. {missing[:3]})" if missing else f" ({len(key)} rows)")
                         + f". Fix: give exactly one label row per sample, with its {name!r}")
    return df.set_index(name).loc[list(values)].reset_index(drop=True)


def _data_ids(data: Path, labels: Path, exclude: List[str], sep: Optional[str] = None, decimal: str = ".",
              label_column: Optional[str] = None) -> Optional[tuple]:
    """An id column left out of the data (--exclude) that the labels CSV also holds, as (name, the data's ids), or None
    (``sep`` / ``decimal``: how the data CSV is written). The label column left out too is not an id: neither
    ``label_column`` nor a column of 0/1 values, whatever the order of --exclude."""
    import pandas as pd
    from ganad.data.readers import file_format
    if not exclude or labels.suffix.lower() not in (".csv", ".txt", ".tsv") or file_format(data) not in ("csv", "parquet"):
        return None
    try:
        names = set(pd.read_csv(labels, sep=_labels_sep(labels, sep), nrows=0).columns)  # the labels CSV: separated as the data
    except Exception:
        return None  # _read_labels names the problem
    for c in exclude:
        if c in names and c != label_column:
            values = _read_id_column(data, c, sep, decimal)
            if not all(_is_label_text(v) for v in values):
                return c, values
    return None


def _scores_ids(df, path: Path) -> Optional[tuple]:
    """The id column `ganad score --id-column` writes before 'index', as (name, values as text), or None."""
    cols = list(df.columns)
    if len(cols) > 1 and cols[1] == "index" and cols[0] != "index":
        import pandas as pd
        return cols[0], pd.read_csv(path, usecols=[0], dtype=str, keep_default_na=False).iloc[:, 0].to_numpy(dtype=object)
    return None


#: what `ganad evaluate -o DIR` writes (with --labels; --ranges writes metrics.json only)
EVALUATION_FILES = ("metrics.json", "roc.png", "pr.png", "report.html")


@app.command(epilog="Example:\n\n  ganad evaluate scores.csv --labels test_labels.csv --label-column y -o eval/")
def evaluate(
    scores: Path = typer.Argument(..., help="scores.csv written by `ganad score`."),
    labels: Optional[Path] = typer.Option(None, help="True labels (1 = anomaly): CSV column or NPY, one per scored row."),
    label_column: Optional[str] = typer.Option(None, help="Column of the labels CSV holding the labels."),
    output: Path = typer.Option(Path("evaluation"), "-o", "--output", help="Directory for metrics.json, roc.png, pr.png, report.html (labels of one class: metrics.json and report.html; a series scores file with --ranges: metrics.json)."),
    ranges: Optional[Path] = typer.Option(None, help="Series: CSV of labelled anomalies, columns start,end (row indices or times, end included; optional series)."),
    max_buffer: int = typer.Option(64, help="Series (--ranges): VUS buffer lengths 0..MAX_BUFFER points (a buffer b widens each range by b//2 points before it and b//2 - 1 after, as the reference does; e.g. the window length)."),
    sep: Optional[str] = typer.Option(None, help="Column separator of a CSV --labels file (default ',', tab for .tsv), e.g. ';'. The scores file is always ','."),
    normal: Optional[str] = typer.Option(None, "--normal", help="The labels are class names and this one is normal (e.g. N for MIT-BIH's AAMI classes N, S, V, F, Q): anomaly = any other class, and metrics.json gets per_class, the AUROC / AUPRC of the normal class against each other class."),
    group_column: Optional[str] = typer.Option(None, help="A column of the scores file naming each row's recording (patient, machine; `ganad score --id-column COL` writes it): metrics.json gets per_group, each recording's false-positive rate and recall at the decisions, and the recordings whose rate is over twice --fpr are printed."),
    fpr: float = typer.Option(0.05, help="With --group-column: the target false-positive rate the recordings are compared with (the rate the threshold was calibrated at)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace metrics.json, roc.png, pr.png, report.html already in OUTPUT."),
):
    """Metrics (AUROC, AUPRC from scores; precision, recall, F1, MCC at the model's threshold) plus ROC/PR plots and an HTML report.
    With --ranges (series scores): point AUROC/AUPRC, VUS-PR, event F1 without point adjustment, PA-F1 beside PA%K."""
    import json
    import pandas as pd
    from ganad.files import output_set, write_text
    from ganad.metrics import evaluate as _evaluate
    try:  # before any work, as fit and score do: never a traceback, never a file replaced without --overwrite
        if output.exists() and not output.is_dir():
            raise GanadError(f"-o/--output {output}: is a file, not a directory. Fix: choose a directory path for the evaluation")
        from ganad.files import check_writable_parent
        check_writable_parent(output / "metrics.json", "-o/--output")  # under a file, read-only
        files = ("metrics.json",) if ranges is not None else EVALUATION_FILES
        from ganad.files import refuse_folders_in_the_way  # else a traceback after some of the files were written
        refuse_folders_in_the_way(output, files, "the evaluation")
        for name in files:
            _refuse_existing(output / name, overwrite, "file")
        from ganad.data.readers import require_regular  # a pipe or /dev/zero was read until the memory ran out
        for given in (scores, labels, ranges):
            if given is not None:
                require_regular(given)
    except GanadError as exc:
        _fail(exc)
    if fpr != 0.05 and group_column is None:  # it would be ignored without a word
        _fail(GanadError(f"--fpr {fpr}: is the target rate per recording of --group-column, which is not given. "
                         "Fix: add --group-column COL, or drop --fpr"))
    if ranges is not None:  # issue 12: series metrics from labelled ranges
        from ganad.series.commands import evaluate_series
        try:
            if group_column is not None:
                raise GanadError("--group-column: is for scores of rows with labels (--labels); series scores with --ranges report "
                                 "per_series already. Fix: drop --group-column")
            if labels is not None or label_column is not None or sep is not None or normal is not None:
                raise GanadError("--labels / --label-column / --sep / --normal: given with --ranges, which takes the labels from the ranges and would ignore them. "
                                 "Fix: pass --ranges FILE (series) or --labels FILE (one label per scored row), not both")
            m = evaluate_series(scores, ranges, max_buffer)
            with output_set(output, ("metrics.json",)) as tmp:  # (an earlier evaluation's report and plots, not replaced, are kept)
                write_text(tmp / "metrics.json", json.dumps(m, indent=2))
        except (GanadError, ValueError) as exc:
            _fail(exc)
        if m.get("n_inf_scores"):
            console.print(f"note: {m['n_inf_scores']} score(s) are inf (ganad score --nonfinite max): ranked above every other score")
        _print_metrics({k: v for k, v in m.items() if k not in ("per_series", "skipped_series")}, title="series metrics")
        if m.get("skipped_series"):
            console.print(f"left out of the means (no labelled anomaly, or no normal point): {', '.join(m['skipped_series'][:10])}"
                          + (f" and {len(m['skipped_series']) - 10} more" if len(m["skipped_series"]) > 10 else ""))
        console.print(f"wrote {output}/metrics.json")
        return
    normal = None if normal is None else normal.strip()  # as the classes are compared: without surrounding spaces
    if labels is None:
        _fail(GanadError("--labels: is missing. Fix: pass --labels FILE (one label per scored row), or --ranges FILE for series"))
    if max_buffer != 64:  # the VUS buffer of series ranges: without --ranges it would be ignored without a word
        _fail(GanadError(f"--max-buffer {max_buffer}: applies to series ranges (--ranges) only. Fix: drop --max-buffer, or evaluate "
                         "series scores with --ranges FILE"))
    if sep is not None and labels.suffix.lower() not in (".csv", ".txt", ".tsv"):  # it would be ignored without a word
        _fail(GanadError(f"--sep {sep!r}: is the separator of a CSV --labels file, but {labels} is not a CSV. Fix: drop --sep"))
    try:
        try:
            df = pd.read_csv(scores)
        except Exception as exc:
            raise GanadError(f"{scores}: cannot be read ({exc}). Fix: pass the CSV written by `ganad score`") from exc
        if "score" not in df.columns:
            raise GanadError(f"{scores}: has no 'score' column. Fix: pass the CSV written by `ganad score`")
        if len(df) == 0:  # before the labels, which would be blamed for not matching 0 rows
            raise GanadError(f"{scores}: has a header but no data rows. Fix: pass the CSV written by `ganad score` on your data")
        classes: list = []
        y = _read_labels(labels, label_column, len(df), ids=_scores_ids(df, scores), sep=sep, normal=normal, classes_out=classes)
        s = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=np.float64)  # a non-number: NaN, refused below
        from ganad.metrics import _finite_scores_file, _inf_on_top
        tau = _scores_threshold(df, scores)
        s, n_inf = _inf_on_top(s, floor=tau)  # above the threshold too: the decisions and the plots' operating point flag them
        _finite_scores_file(s, scores)  # named as the file, not as "scores"
        if n_inf:
            console.print(f"note: {n_inf} score(s) are inf (ganad score --nonfinite max): ranked above every other score")
        pred = df["label"].to_numpy() if "label" in df.columns else None
        if pred is None and tau is not None:
            pred = (s > tau).astype(np.int64)
        one_class = len(y) > 0 and y.min() == y.max()
        if one_class and pred is None:
            raise GanadError(f"--labels {labels}: every label is {int(y[0])} and {scores} carries no threshold or 'label' column, "
                             "so there is nothing to evaluate (AUROC and AUPRC compare normal with anomalous samples; "
                             "the false-positive rate or the recall of one class needs the model's decisions). "
                             "Fix: score with `ganad score` (it writes the threshold), or add labelled samples of the other class")
        ev = _evaluate(y, s, threshold=tau, y_pred=pred)  # y_pred decides; threshold is recorded (printed table, metrics.json)
        per_class = _per_class(np.asarray(classes, dtype=object), s, normal, pred) if normal is not None else None
        per_group = _per_group(df, scores, group_column, y, pred, fpr) if group_column is not None else None
        from ganad.report import pr_figure, roc_figure, save_png, write_report
        # the files go into a temporary folder and replace an earlier evaluation's as one set (its roc.png and pr.png
        # too where one class leaves no curves): a failure or Ctrl-C half-way leaves the earlier set whole
        with output_set(output, EVALUATION_FILES) as tmp:
            write_report(tmp / "report.html", title=f"ganad evaluation of {scores.name}", scores=s, labels=y,
                         threshold=tau, metrics=ev.to_dict())
            if not one_class:
                save_png(roc_figure(y, s, tau), tmp / "roc.png")
                save_png(pr_figure(y, s, tau), tmp / "pr.png")
            write_text(tmp / "metrics.json", json.dumps({**ev.to_dict(), **({"threshold": tau} if tau is not None else {}),
                                                          **({"normal_class": normal, "per_class": per_class} if per_class is not None else {}),
                                                          **(per_group if per_group is not None else {})},
                                                         indent=2))
    except (GanadError, ValueError) as exc:
        _fail(exc)
    _print_metrics(ev.to_dict())
    if per_class:
        t = Table(title=f"{normal} against each class")
        for c in ("class", "n", "AUROC", "AUPRC", "flagged"):
            t.add_column(c, justify="left" if c == "class" else "right")
        for c, m in per_class.items():
            t.add_row(c, str(m["n"]), f"{m['auroc']:.4f}", f"{m['auprc']:.4f}", "-" if pred is None else f"{m['flagged']:.4f}")
        out.print(t)
    if per_group is not None:
        _print_per_group(per_group)
    if one_class:
        what = (f"false-positive rate {ev.false_positive_rate:.4f} ({ev.n_flagged} of {ev.n} normal samples flagged)" if y[0] == 0
                else f"recall {ev.recall:.4f} ({ev.n_flagged} of {ev.n} anomalies flagged)")
        console.print(f"note: every label is {int(y[0])}: AUROC, AUPRC, precision, F1, MCC and the ROC / PR curves compare the two classes "
                      f"and are left out; {what}")
        console.print(f"wrote {output}/metrics.json, report.html")
    else:
        console.print(f"wrote {output}/metrics.json, roc.png, pr.png, report.html")


def _scores_threshold(df, path: Path):
    """The model's threshold carried in the scores file (`ganad score` writes a threshold column), or None. A file of
    per-recording thresholds (`ganad score --warm-up`, with its warm_up column) has none: its label column decides."""
    if "threshold" not in df.columns:
        return None
    if "warm_up" in df.columns:
        if "label" not in df.columns:
            raise GanadError(f"{path}: has per-recording thresholds (a warm_up column) but no label column. "
                             "Fix: pass the CSV written by `ganad score --warm-up`, unedited")
        return None
    t = df["threshold"].to_numpy(dtype=np.float64)
    if not np.isfinite(t).all() or t.size == 0:
        raise GanadError(f"{path}: the threshold column holds NaN, infinite or no values. Fix: pass the CSV written by `ganad score`")
    if np.ptp(t) > 1e-9 * max(1.0, abs(float(t[0]))):
        raise GanadError(f"{path}: the threshold column holds several thresholds ({np.unique(t)[:3].tolist()} ...), "
                         "as if scores of different models were joined. Fix: evaluate each model's scores file on its own")
    return float(t[0])


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
    data: Optional[Path] = typer.Argument(None, help="Validation data (never the test data): CSV, Parquet, NPY or NPZ, or a folder of image files (labels in the folder's file-name order, or paired by name with a labels CSV holding the 'file' column `ganad score` writes) (or --view NAME=FILE per view of a multi-view model)."),
    labels: Optional[Path] = typer.Option(None, help="Validation labels (1 = anomaly), CSV column or NPY; needed by grid, svm, f1, fbeta, mcc."),
    label_column: Optional[str] = typer.Option(None, help="Column of the labels CSV holding the labels."),
    compose: str = typer.Option("default", help="default (the score fit composed, its median/MAD standardisation re-fitted on this data), "
                                                 "standardised (every component standardised, equal or --weights weights), weights, grid or svm."),
    threshold: str = typer.Option("contamination", help="contamination, f1, fbeta, mcc or fpr."),
    weights: Optional[str] = typer.Option(None, help="For --compose weights or standardised: JSON such as '{\"residual\": 0.8, \"feature\": 0.2}'."),
    metric: str = typer.Option("auroc", help="For --compose grid: auroc, auprc, f1, fbeta or mcc."),
    beta: float = typer.Option(1.0, help="β of F_β."),
    fpr: float = typer.Option(0.05, help="For --threshold fpr: false-positive rate on the normal validation samples."),
    contamination: Optional[float] = typer.Option(None, help="For --threshold contamination: expected anomaly fraction, as for fit, here of the validation data: the threshold is the (1 - c) quantile of its scores (default: the model's, set at fit)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the calibrated model here (default: in place)."),
    exclude: List[str] = typer.Option([], help="Column to leave out, as at fit time. Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file."),
    sep: Optional[str] = typer.Option(None, help="CSV column separator of DATA and of a CSV --labels file (default ',', tab for .tsv), e.g. ';'."),
    decimal: str = typer.Option(".", help="CSV decimal mark, e.g. ',' for 1,5."),
    view: List[str] = typer.Option([], "--view", help="A multi-view model: NAME=FILE for each of its views (instead of DATA), the same samples in each. Repeatable."),
    overwrite: bool = typer.Option(False, "--overwrite", help="With -o: replace an existing model there (refused without it; in place needs no flag)."),
    progress: bool = typer.Option(False, "--progress", help="Show progress even when stderr is not a terminal (there: a plain line every 5 s, for logs and CI)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Fit the score composition and the threshold on validation data; `ganad score` then uses them."""
    import json
    from ganad.data.readers import csv_columns, read_array
    from ganad.progress import progress_mode
    from ganad.scoring.calibration import calibrate_model
    try:
        # options the chosen rules do not read would be ignored without a word (as fit's series options): refused instead
        # (what is unused, the options that would read it): the fix names the rule of each option given
        unused = ([(f"--fpr (read by --threshold fpr, not {threshold})", f"--threshold fpr --fpr {fpr:g}")]
                  * (fpr != 0.05 and threshold != "fpr")
                  + [(f"--contamination (read by --threshold contamination, not {threshold})",
                      f"--threshold contamination --contamination {contamination:g}" if contamination is not None else "")]
                  * (contamination is not None and threshold != "contamination")
                  + [(f"--metric (read by --compose grid, not {compose})", f"--compose grid --metric {metric}")]
                  * (metric != "auroc" and compose != "grid")
                  + [("--beta (read by --threshold fbeta or --compose grid --metric fbeta)", f"--threshold fbeta --beta {beta:g}")]
                  * (beta != 1.0 and threshold != "fbeta" and not (compose == "grid" and metric == "fbeta"))
                  + [("--label-column (names a column of --labels, not given)", f"--labels FILE --label-column {label_column}")]
                  * (label_column is not None and labels is None))
        if unused:
            raise GanadError(f"{'; '.join(u for u, _ in unused)}: would be ignored. Fix: pass the rule that reads it "
                             f"({'; '.join(e for _, e in unused)}), or drop it")
        if contamination is not None:
            from ganad.scoring.threshold import check_contamination
            try:
                check_contamination(contamination)  # before any work, named as the option
            except InputError as exc:
                raise GanadError(f"--{exc}") from None
        views = _data_or_views(data, view, "ganad calibrate model/ val.csv, or ganad calibrate model/ --view beat=b.npy --view rhythm=r.csv",
                               model_dir, "calibrate")
        _refuse_view_in_place(model_dir, output)
        _refuse_series_calibration(model_dir, output)
        if output is not None and output.resolve() != model_dir.resolve():
            if model_dir.resolve() in output.resolve().parents:  # a folder ganad did not write inside the model: its next save is refused
                raise GanadError(f"-o/--output {output}: is inside MODEL_DIR {model_dir}. Fix: write the calibrated model beside it "
                                 "(e.g. -o calibrated-model/), or omit -o to calibrate MODEL_DIR in place")
            _refuse_existing(output, overwrite, "model")
            from ganad.io import check_model_path, refuse_inside_wrapper_model
            refuse_inside_wrapper_model(output)  # e.g. -o MV/views/OTHER: another view of a multi-view model
            check_model_path(output, "-o/--output")  # before any work: a file, a foreign folder
        if views:  # a multi-view model: each view's standardisation and the threshold of the sum
            _calibrate_multiview(model_dir, views, output, labels=labels, label_column=label_column, compose=compose, weights=weights,
                                 threshold=threshold, fpr=fpr, contamination=contamination, beta=beta, exclude=exclude, key=key,
                                 sep=sep, decimal=decimal)
            return
        assert data is not None
        from ganad.series.detector import is_series_model
        if is_series_model(model_dir):  # the point threshold, on normal series (no labels; the window detector unchanged)
            _calibrate_series(model_dir, data, output, labels=labels, compose=compose, threshold=threshold, weights=weights,
                              key=key, fpr=fpr, contamination=contamination, sep=sep, decimal=decimal, exclude=exclude)
            return
        X = read_array(data, exclude=exclude, key=key, sep=sep, decimal=decimal)
        _note_unread_images(data)
        ids = _data_ids(data, labels, exclude, sep, decimal, label_column) if labels is not None else None
        if ids is None and labels is not None:
            from ganad.data.readers import file_format, image_name, image_plan
            if file_format(data) == "images":  # a labels CSV with the 'file' column `ganad score` writes: paired by name
                ids = ("file", np.asarray([image_name(data, f) for f in image_plan(data)[0]], dtype=object))
        y = (_read_labels(labels, label_column, len(X), ids=ids, sep=sep, sep_option="it applies to DATA too")
             if labels is not None else None)
        w = None
        if weights is not None:
            try:
                w = json.loads(weights)
            except json.JSONDecodeError as exc:
                raise GanadError(f"--weights: is not valid JSON ({exc}). Fix: pass for example '{{\"residual\": 0.9, \"feature\": 0.1}}'") from exc
        with progress_mode(_show_progress(progress, quiet), console):
            try:
                rec = calibrate_model(model_dir, X, y, output=output, compose=compose, threshold=threshold, weights=w,
                                      metric=metric, beta=beta, fpr=fpr, contamination=contamination,
                                      columns=csv_columns(data, exclude=exclude, sep=sep, decimal=decimal), name=str(data))
            except InputError as exc:
                _column_hint(exc, "--exclude COL leaves a column out of DATA", data, sep)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    summary = {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool)) or v is None}
    _print_metrics(summary, title="calibration")
    console.print(f"[green]calibrated[/] -> {output or model_dir}")


@app.command(epilog="Example:\n\n  ganad export model/ -o model.onnx")
def export(
    model_dir: Path = typer.Argument(..., help="Model directory of an encoder method (fanogan, bigan, alad, ganomaly, vaegan, tadgan), or of AnoGAN with its default score (no latent search)."),
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT file (refused without it)."),
):
    """Export the scoring path (x -> score components and score) of an encoder method, or of AnoGAN's default score, as ONNX."""
    import ganad
    try:
        from ganad.files import check_output_file
        _refuse_multiview(model_dir, "export")
        if str(output) == "-":  # not stdout: a binary ONNX graph goes to a file
            raise GanadError("-o/--output -: would write a file named '-'. Fix: pass a file path such as model.onnx")
        check_output_file(output, example="model.onnx")  # a folder, under a file, read-only: refused before any work, as `ganad score` does
        _refuse_existing(output, overwrite, "file")
    except GanadError as exc:
        _fail(exc)
    try:
        from ganad.export import _require_onnx, export_onnx
    except ImportError as exc:
        _fail(GanadError(f"export is unavailable ({exc}). Fix: pip install 'ganad[onnx]'"))
    try:
        _require_onnx()  # torch.onnx.export needs it: refused before the model is read, without a traceback
        export_onnx(ganad.load(model_dir), output)
    except (GanadError, ValueError, ImportError) as exc:
        _fail(exc)
    console.print(f"[green]exported[/] {model_dir} -> {output}")
    if output.suffix.lower() != ".onnx":
        console.print(f"[yellow]note[/]: {output} holds an ONNX graph; runtimes and tools look for the .onnx suffix")


@app.command(epilog="Example:\n\n  ganad info model/ --json")
def info(
    model_dir: Path = typer.Argument(..., help="Model directory (a detector, a series model or a multi-view model), or a checkpoint directory (ganad fit --checkpoint DIR): how far its run got."),
    as_json: bool = typer.Option(False, "--json", help="Print the description as JSON (ganad.describe's dict) instead of text."),
):
    """What a saved model is and how it was made: its input, its training and held-out selection, what its
    default score reads (and the label-free choice that chose it), where its threshold comes from, and notes.
    The model is read with every check loading makes, so this also tells whether the files load."""
    import json

    import ganad
    from ganad.info import render
    try:
        described = ganad.describe(model_dir)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(described, indent=1, allow_nan=False))
        return
    for line in render(described):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _column_hint(exc: InputError, how: str, data: Path | None = None, sep: str | None = None, expected=None) -> NoReturn:
    """Re-raise ``exc``; a CSV / Parquet header with columns the model was not fitted on gets the command
    line's fix added: the model's message advises the API (``X[detector.feature_names_in_]``), on the
    command line the options that leave a column out are the fix, or ``--sep`` where the header was
    read as one column of another separator's (the model's ``expected`` columns split out of it)."""
    if "not seen at fit time" not in str(exc):
        raise exc
    import shlex
    unseen = [str(c) for c in getattr(exc, "unseen_columns", None) or []]
    if expected is None:  # calibrate loads the model inside calibrate_model: its columns come with the error
        expected = getattr(exc, "expected_columns", None)
    if data is not None:
        from ganad.data.readers import sep_fix
        fix = sep_fix(unseen, data, sep, expected)
        if fix is not None:  # --exclude 'a;b;c;d' would leave no column at all
            raise InputError(f"{exc} (on the command line: {fix})") from exc
    flags = f"; here: {' '.join(f'--exclude {shlex.quote(c)}' for c in unseen)}" if unseen else ""
    raise InputError(f"{exc} (on the command line: {how}{flags})") from exc


@app.command(epilog="Example:\n\n  ganad demo --output ganad-demo/")
def demo(
    output: Path = typer.Option(Path("ganad-demo"), "-o", "--output", help="Directory for the model, metrics.json, the ROC / PR plots and report.html."),
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
    try:  # before any work, as evaluate does: never a traceback after minutes of training
        if output.exists() and not output.is_dir():
            raise GanadError(f"-o/--output {output}: is a file, not a directory. Fix: choose a directory path for the demo")
        from ganad.files import check_writable_parent
        check_writable_parent(output / "report.html", "-o/--output")  # under a file, read-only
        from ganad.files import refuse_folders_in_the_way
        refuse_folders_in_the_way(output, ("metrics.json", "roc.png", "pr.png", "report.html"), "the demo")
        from ganad.io import check_model_path
        check_model_path(output / "model", "-o/--output")  # the demo's model: a file or other files there were refused after training
        if seed < 0:
            raise GanadError(f"--seed: is {seed}. Fix: pass a seed in 0 .. 2**32 - 1")
        if not 0 <= digit <= 9:
            raise GanadError(f"--digit: is {digit}. Fix: pass a digit from 0 to 9")
        if epochs < 1:
            raise GanadError(f"--epochs: is {epochs}. Fix: pass 1 or more")
        res = run_demo(output, digit=digit, method=method, epochs=epochs, seed=seed, log=_log)
    except (GanadError, ValueError) as exc:
        _fail(exc)
    except OSError as exc:
        _fail(GanadError(f"-o/--output {output}: cannot be written ({exc}). Fix: choose a directory you can write to"))
    _print_metrics(res["metrics"], title=f"{method} on digits, novelty = digit {digit} (test split)")
    console.print(f"report: {output / 'report.html'}")

@app.command(epilog="Example:\n\n  tail -f telemetry.csv | ganad stream model/ --has-time")
def stream(
    model_dir: Path = typer.Argument(..., help="Series model directory written by `ganad fit --window`."),
    batch: int = typer.Option(1, help="Points read before scoring (1 = lowest latency; larger = more points/s)."),
    has_time: bool = typer.Option(False, help="Each line starts with a time, then the channels (the time is skipped: a stream is one series without gaps; start a new stream after a pause)."),
    sep: Optional[str] = typer.Option(None, help="Column separator of the lines (default ','), as for fit / score, e.g. ';'."),
    decimal: str = typer.Option(".", help="Decimal mark of the numbers, as for fit / score, e.g. ',' for 1,5 (with --sep ';')."),
    nonfinite: str = typer.Option("raise", help="A window whose score overflows to NaN/inf: raise (error naming its points; the stream cannot go on past it) or max (most anomalous)."),
):
    """Score a live series: one point per stdin line (its channels separated by --sep, default ','; a line repeating the header, as a rotated file followed by `tail -F` starts with, is skipped), writes `point,index,score,label`
    lines and `open,start` / `close,start,end,peak_score,channels` event lines as they happen (bounded memory;
    a point is written at most window + stride - 2 points after it arrives)."""
    from ganad.series.commands import stream_lines

    from ganad.files import naming

    def write(line):
        with naming("standard output"):  # a full disk or a closed pipe behind stdout: said as such, not nameless
            sys.stdout.write(line)
            sys.stdout.flush()
    try:
        if batch < 1:
            raise GanadError(f"--batch: is {batch}. Fix: pass a positive number of points")
        if nonfinite not in ("raise", "max"):
            raise GanadError(f"--nonfinite: is {nonfinite!r}. Fix: use raise or max")
        if sys.stdin is None:  # fd 0 not open (`<&-`, a service or cron job without one)
            raise GanadError("standard input: is closed. Fix: pipe the points into ganad stream "
                             "(e.g. tail -f -n +1 live.csv | ganad stream MODEL)")
        stream_lines(model_dir, sys.stdin, write, batch=batch, has_time=has_time, sep=sep, decimal=decimal, nonfinite=nonfinite)
    except (GanadError, ValueError) as exc:
        _fail(exc)


@app.command(epilog="Examples:\n\n  ganad benchmark adbench --data /data --methods bigan,vaegan --peers iforest,knn --seed 0 -o bench-adbench/\n\n"
                     "  ganad benchmark mitbih --data /data --max-train 10000 --max-test 20000 --epochs 30 --rhythm -o bench-mitbih/\n\n"
                     "  ganad benchmark mnist --data /data --digits 0,1 --max-train 2000 --max-test 2000 -o bench-mnist/")
def benchmark(
    protocol: str = typer.Argument(..., help="mitbih, adbench, mnist or nab."),
    data: Optional[Path] = typer.Option(None, envvar="GANAD_DATA_DIR", help="Folder holding mitdb/, adbench/, mnist/ and nab/ (or env GANAD_DATA_DIR)."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for results.json, results.md, PNG figures and report.html."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated ganad methods (default: every registered method; nab: ganomaly, the series default; 'none' for none: the peers only)."),
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
    event_gap: Optional[int] = typer.Option(None, help="nab: runs of points above the threshold with at most this many points between them are one event, for every method (default: the window; 0: every run is an event)."),
    calibration: str = typer.Option("fpr", help="mitbih threshold rule on held-out DS1 records: fpr (normal beats only, no labels), mcc or f1 (their labels)."),
    fpr: float = typer.Option(0.05, help="mitbih --calibration fpr: false-positive rate on the held-out normal beats."),
    compose: str = typer.Option("method", help="mitbih: method (each method's own score) or default (components robust-standardised on the held-out normal beats)."),
    rhythm: bool = typer.Option(False, help="mitbih: add the rhythm view (heart-rate-free RR-interval features): a second detector per ganad method, the two scores combined label-free (a MultiViewDetector); peers get the features appended (see --peer-rhythm)."),
    peer_rhythm: str = typer.Option("append", help="mitbih --rhythm: peers get the RR features appended (append), run as two views exactly like ganad's (views), or both rows (both)."),
    adaptive: Optional[int] = typer.Option(None, help="mitbih: also report patient-adaptive rows: each test record's scores standardised by its own first N beats (label-free)."),
    beat_input: str = typer.Option("beat", help="mitbih: what every method sees of a beat: beat (its 256 samples), change (the beat minus the median of its record's 8 previous beats: causal, label-free) or both (the two as channels)."),
):
    """Quality benchmark of ganad methods against PyOD peers on one protocol, same splits for all (see docs/benchmark.md;
    nab: docs/benchmark.md, 'nab')."""
    from ganad.benchmark import PROTOCOLS, run_protocol, write_outputs

    def csv(v):
        return None if v is None else [x.strip() for x in v.split(",") if x.strip() and x.strip().lower() != "none"]
    try:  # the output folder is checked before the (long) run, not when its results are written
        if output.exists() and not output.is_dir():
            raise GanadError(f"-o/--output {output}: is a file, not a directory. Fix: choose a directory path for the results")
        from ganad.files import check_writable_parent
        check_writable_parent(output / "results.json", "-o/--output")  # under a file, read-only
        from ganad.files import refuse_folders_in_the_way  # (the figures' names are checked again once known)
        refuse_folders_in_the_way(output, ["results.json", "results.md"] + (["report.html"] if protocol != "nab" else []), "the benchmark")
        if seed < 0:
            raise GanadError(f"--seed: is {seed}. Fix: pass a seed in 0 .. 2**32 - 1")
        if n_seeds < 1:
            raise GanadError(f"--n-seeds: is {n_seeds}. Fix: pass 1 or more (seeds --seed, --seed + 1, ...)")
        if protocol != "nab" and methods is not None and peers is not None and not csv(methods) and not csv(peers):
            # (nab runs its rolling z-score baseline with neither)
            raise GanadError(f"--methods {methods!r} and --peers {peers!r}: name no method and no peer, so the benchmark would "
                             "write empty results. Fix: name at least one ganad method (--methods ganomaly) or one peer (--peers knn)")
        # options of another protocol would be ignored without a word: refused, as fit refuses series options without --window
        given = {"--n-seeds": n_seeds != 3, "--datasets": datasets is not None, "--digits": digits != "0,1,2,3,4,5,6,7,8,9",
                 "--window": window != 64, "--stride": stride != 1, "--train-fraction": train_fraction != 0.15,
                 "--groups": groups is not None, "--event-gap": event_gap is not None, "--calibration": calibration != "fpr",
                 "--fpr": fpr != 0.05, "--compose": compose != "method", "--rhythm": rhythm, "--peer-rhythm": peer_rhythm != "append",
                 "--adaptive": adaptive is not None, "--max-train": max_train is not None, "--max-test": max_test is not None,
                 "--beat-input": beat_input != "beat"}
        applies = {"adbench": {"--n-seeds", "--datasets", "--max-train", "--max-test"}, "mnist": {"--digits", "--max-train", "--max-test"},
                   "mitbih": {"--calibration", "--fpr", "--compose", "--rhythm", "--peer-rhythm", "--adaptive", "--max-train", "--max-test",
                              "--beat-input"},
                   "nab": {"--window", "--stride", "--train-fraction", "--groups", "--event-gap"}}.get(protocol)
        if applies is not None:
            ignored = [o for o, g in given.items() if g and o not in applies]
            if protocol == "mitbih" and peer_rhythm != "append" and not rhythm:
                ignored.append("--peer-rhythm (without --rhythm)")
            if ignored:
                raise GanadError(f"{', '.join(ignored)}: do not apply to the {protocol} protocol and would be ignored. "
                                 f"Fix: drop {', '.join(o.split(' ')[0] for o in ignored)} (`ganad benchmark --help` names the protocol of each option)")
    except (GanadError, ValueError) as exc:
        _fail(exc)
    if protocol == "nab":  # issue 12: the series protocol lives in ganad.series.benchmark
        from ganad.series.benchmark import NAB_GROUPS, markdown, run_nab, write_nab
        try:
            res = run_nab(data, groups=csv(groups) or NAB_GROUPS, methods=["ganomaly"] if methods is None else csv(methods),
                          peers=csv(peers), window=window, stride=stride, train_fraction=train_fraction, epochs=epochs,
                          peer_epochs=peer_epochs, seed=seed, event_gap=event_gap, log=_log)
            paths = write_nab(res, output)
        except (GanadError, ValueError) as exc:
            _fail(_in_benchmark_terms(exc))
        out.print(markdown(res))
        console.print(f"wrote {paths['json']}, {paths['markdown']}")
        return
    try:
        if protocol not in PROTOCOLS:
            raise GanadError(f"protocol: is {protocol!r}. Fix: use one of {', '.join(PROTOCOLS + ('nab',))}")
        from ganad.detectors.base import MIN_FIT_SAMPLES
        kw = dict(methods=csv(methods), peers=csv(peers), epochs=epochs, peer_epochs=peer_epochs, log=_log)
        for name, v in (("max_train", max_train), ("max_test", max_test)):
            if v is not None:
                if v < 0:
                    raise GanadError(f"--{name.replace('_', '-')}: is {v}. Fix: pass 0 (no limit) or a positive number")
                if name == "max_train" and 0 < v < MIN_FIT_SAMPLES:
                    raise GanadError(f"--max-train: is {v}, but a detector needs at least {MIN_FIT_SAMPLES} training samples. "
                                     f"Fix: pass 0 (all) or at least {MIN_FIT_SAMPLES}")
                kw[name] = v or None
        if protocol == "adbench":
            kw.update(seeds=range(seed, seed + max(1, n_seeds)), datasets=csv(datasets))
        else:
            kw["seed"] = seed
        if protocol == "mnist":
            try:
                kw["digits"] = [int(d) for d in csv(digits)]
            except ValueError:
                raise GanadError(f"--digits: is {digits!r}. Fix: pass comma-separated digits from 0 to 9, e.g. 0,1,2") from None
        if protocol == "mitbih":
            kw.update(calibration=calibration, fpr=fpr, compose=compose, rhythm=rhythm, adaptive=adaptive, peer_rhythm=peer_rhythm,
                      beat_input=beat_input)
        res = run_protocol(protocol, data, **kw)
        runs = res.get("results") or []
        if runs and all(r.get("error") for r in runs):  # nothing measured: no tables of dashes, and a failing exit
            errors = list(dict.fromkeys(str(r["error"]) for r in runs))
            raise GanadError(f"benchmark {protocol}: every run failed, nothing was written ({'; '.join(errors[:3])}"
                             f"{' ...' if len(errors) > 3 else ''}). Fix: correct the settings the errors name and run it again")
        paths = write_outputs(res, output)
    except (GanadError, ValueError) as exc:
        _fail(_in_benchmark_terms(exc))
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
    max_streams: int = typer.Option(10000, help="Series models: open streams per model at most; a new one evicts the least recently used. With --warm-up, also the recordings whose thresholds are kept per model."),
    stream_idle_s: float = typer.Option(3600.0, help="Series models: a stream idle this many seconds is dropped (0: never)."),
    warm_up: int = typer.Option(0, help="Per-recording thresholds: a score request naming a recording (?recording=ID or X-Recording-Id) gets, after that recording's first N samples, the (1 - fpr) quantile of their scores as its threshold, never below the model's (0: off; docs/serve.md)."),
    warm_up_fpr: Optional[float] = typer.Option(None, help="With --warm-up: the rate of the recordings' own thresholds (default: the model's calibrated fpr, else its contamination)."),
    recordings_state: Optional[Path] = typer.Option(None, help="With --warm-up: a JSON file keeping the recordings' thresholds across restarts: read at start (if it exists; kept only for the same model files and settings), written at shutdown and, while they change, every --recordings-save-every seconds."),
    recordings_save_every: Optional[float] = typer.Option(None, help="With --recordings-state: also write it every this many seconds while the recordings change, so that a crash loses at most that long's changes (default 60; 0: at shutdown only)."),
    workers: int = typer.Option(1, help="Forward passes run at once per server (each on its share of torch's threads unless OMP_NUM_THREADS is set): 2 on 2 cores for bulk scoring (more rows/s, slower single rows)."),
):
    """Serve models over HTTP: POST /v1/models/NAME/score (or /series for series models), /v1/models, /healthz, /readyz, /metrics, /docs (see docs/serve.md)."""
    try:
        from ganad.serve import ServeSettings, read_token, run
        import orjson  # noqa: F401  (imported lazily when serving: a partial serve extra is refused here,
        import uvicorn  # noqa: F401  not with a traceback at start-up or a 500 on every request)
    except ImportError as exc:
        _fail(GanadError(f"serve is unavailable ({exc}). Fix: pip install 'ganad[serve]'"))
    try:
        if not (np.isfinite(max_body_mb) and max_body_mb > 0):  # before int(): NaN / inf would not convert
            raise GanadError(f"--max-body-mb: is {max_body_mb}. Fix: pass a positive number of MiB, e.g. 16")
        if recordings_save_every is not None and recordings_state is None:
            raise GanadError(f"--recordings-save-every: is {recordings_save_every} without --recordings-state. "
                             "Fix: add --recordings-state FILE (the file it writes), or drop --recordings-save-every")
        settings = ServeSettings(max_batch_rows=max_batch_rows, max_wait_ms=max_wait_ms, max_queue=max_queue,
                                 max_body_bytes=int(max_body_mb * 1024 * 1024), token=read_token(token_file),
                                 cors_origins=cors_origin, access_log=access_log, max_streams=max_streams,
                                 stream_idle_s=stream_idle_s, workers=workers, warm_up=warm_up, warm_up_fpr=warm_up_fpr,
                                 recordings_state=None if recordings_state is None else str(recordings_state),
                                 **({} if recordings_save_every is None else {"recordings_save_every": recordings_save_every}))
        run(model_dirs, settings, host=host, port=port, log_level=log_level)
    except (GanadError, ValueError) as exc:
        _fail(exc)


@app.command(epilog="Examples:\n\n  ganad tune train.csv -o model/ --method ganomaly --trials 30 --epochs 20\n\n"
                     "  ganad tune train.csv -o model/ --storage sqlite:///study.db --study-name mine   # resume / more workers\n\n"
                     "  optuna-dashboard sqlite:///ganad-tune.db                                      # watch the study")
def tune(
    data: Path = typer.Argument(..., help="Training data of normal samples: CSV, Parquet, NPY or NPZ, or a folder of image files of one size."),
    output: Path = typer.Option(..., "-o", "--output", help="Model directory to write: the best trial refitted on all of DATA (+ tuning.json)."),
    method: str = typer.Option("ganomaly", help="Detector to tune (as for fit)."),
    trials: int = typer.Option(20, help="Finished trials the study should reach (a resumed study runs only the missing ones; workers share them)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL or SQLite file (default: ganad-tune.db beside OUTPUT), e.g. sqlite:///study.db."),
    study_name: Optional[str] = typer.Option(None, help="Study name; the same name resumes it (default: <method>-<data file stem>-<hash of the data and options>: the same data and options resume their study, others start their own)."),
    space: Optional[Path] = typer.Option(None, help="JSON or TOML file of search-space entries replacing / extending the method's (docs/tuning.md)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs of every trial (default: the method's)."),
    val_data: Optional[Path] = typer.Option(None, help="Labelled validation data: the objective becomes its AUROC (default: label-free, docs/tuning.md)."),
    label_column: Optional[str] = typer.Option(None, help="Column (NPZ: array) of --val-data holding the labels, 1 = anomaly."),
    tune_fraction: float = typer.Option(0.2, help="Label-free objective: fraction of DATA held out of every trial's training."),
    timeout: Optional[float] = typer.Option(None, help="Stop starting trials after this many seconds."),
    seed: int = typer.Option(0, help="Seed of the sampler, the hold-out, the synthetic anomalies and every fit."),
    exclude: List[str] = typer.Option([], help="Column to leave out (CSV/Parquet). Repeatable."),
    key: Optional[str] = typer.Option(None, help="Array name inside an NPZ file."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    sep: Optional[str] = typer.Option(None, help="CSV column separator (default ',', tab for .tsv)."),
    decimal: str = typer.Option(".", help="CSV decimal mark."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model in OUTPUT (refused without it)."),
):
    """Search a method's hyperparameters with Optuna (label-free by default) and save the best as a model."""
    from ganad.data.readers import csv_columns, read_array
    try:
        from ganad import tune as T
        import optuna  # noqa: F401  (ganad.tune imports it lazily: checked here, before the data is read)
    except ImportError as exc:
        _fail(GanadError(f"ganad tune: needs optuna ({exc}). Fix: pip install 'ganad[tune]'"))
    try:
        from ganad.io import check_model_path, refuse_inside_wrapper_model
        _refuse_existing(output, overwrite, "model")  # before the search, as fit does: never a model replaced silently
        refuse_inside_wrapper_model(output)
        check_model_path(output, "-o/--output")
        if trials < 1:
            raise GanadError(f"--trials: is {trials}. Fix: pass a whole number of trials >= 1, e.g. 20")
        from ganad.training.loop import resolve_device
        resolve_device(device)  # an unavailable device: refused before reading, as fit does
        X = read_array(data, exclude=exclude, key=key, sep=sep, decimal=decimal)
        names = csv_columns(data, exclude=exclude, sep=sep, decimal=decimal)
        sp = T.read_space(space) if space is not None else None
        Xv = yv = None
        if label_column is not None and val_data is None:  # it would be ignored: the label-free objective would run
            raise GanadError("--label-column: is given without --val-data, whose labels it names. "
                             "Fix: pass --val-data FILE with it, or leave it out for the label-free objective")
        if val_data is not None:
            Xv, yv = T.read_labelled(val_data, label_column, exclude=exclude, key=key, sep=sep, decimal=decimal)
            vnames = csv_columns(val_data, exclude=[*exclude, label_column], sep=sep, decimal=decimal)
            if names is not None and vnames is not None and list(vnames) != list(names):
                raise GanadError(f"--val-data {val_data}: has the columns {list(vnames)[:10]}, the training data {list(names)[:10]}. "
                                 "Fix: give the validation rows the training columns, in the training order")
            if vnames is None and Xv.shape[1:] != X.shape[1:]:
                # an NPZ has no column names: --exclude (which names CSV / Parquet columns) cannot apply to it; its array
                # holds the training columns as they are after --exclude (it said "X_val: ... X ...", names the CLI has not)
                raise GanadError(f"--val-data {val_data}: its rows have the shape {tuple(Xv.shape[1:])}, the training data's "
                                 f"{tuple(X.shape[1:])}" + (f" (after --exclude {', '.join(exclude)})" if exclude else "")
                                 + ". Fix: give the validation rows the training columns, in the training order"
                                 + (f"{' ' + str(list(names)[:10]) if names is not None else ''}; --exclude leaves out columns of CSV / "
                                    "Parquet files by name, and an NPZ array has no column names, so save it without those columns "
                                    "or pass a CSV / Parquet file" if exclude else ""))
        url = storage if storage is not None else str(output.resolve().parent / "ganad-tune.db")
        fixed = {"device": device, **({"epochs": epochs} if epochs is not None else {})}
        t0 = time.perf_counter()
        made = _make_parent(output) if storage is None else []  # the default storage lies beside OUTPUT: -o new/dir/model works as for fit
        try:
            from rich.markup import escape
            res = T.tune(X, method=method, n_trials=trials, storage=url, study_name=study_name, study_prefix=f"{method}-{data.stem}",
                         search_space=sp, params=fixed, X_val=Xv, y_val=yv, tune_fraction=tune_fraction, seed=seed, timeout=timeout,
                         callbacks=[lambda study, trial: console.print(escape(T.trial_line(study, trial)))])
        except BaseException as exc:
            for d in made:  # refused before any trial: leave no empty folders behind
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
            if isinstance(exc, GanadError):
                raise _tune_cli_error(exc, data, space, val_data, label_column) from exc
            raise
        det = res.detector
        if names is not None and len(names) == det.n_features_in_:
            det.feature_names_in_ = np.asarray(names, dtype=object)
        det.save(output)  # with tuning.json (det.tuning_), in the one atomic replacement of the folder
    except (GanadError, ValueError) as exc:
        _fail(exc)
    tab = Table(title=f"study {res.study.study_name}: best trials (objective: {res.objective}, higher = better)")
    for c in ("trial", "AUROC", "s", "parameters"):
        tab.add_column(c)
    for r in T.trials_table(res.study):
        ps = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        tab.add_row(str(r["trial"]) + (f" ({r['note']})" if r["note"] else ""), f"{r['value']:.4f}", f"{r['seconds']:.1f}", ps)
    out.print(tab)
    s = res.summary()
    console.print(f"[green]tuned[/] {type(det).__name__}: {s['n_complete']} complete, {s['n_pruned']} pruned, {s['n_failed']} failed trial(s) "
                  f"in {time.perf_counter() - t0:.1f}s; best trial {s['best_trial']} ({s['best_value']:.4f}) refitted and saved to {output}; "
                  f"storage {T._redact(T.storage_url(url))}, study {s['study_name']}")


def _tune_cli_error(exc: GanadError, data: Path, space: Optional[Path], val_data: Optional[Path],
                    label_column: Optional[str]) -> GanadError:
    """An error of ganad.tune.tune() with its Python names (``timeout``, ``params['epochs']``,
    ``search_space[...]``, ``X``) replaced by the command-line options and files they came from."""
    import re
    msg = str(exc)
    val = f"--val-data {val_data}"
    heads = {"timeout": "--timeout", "seed": "--seed", "method": "--method", "n_trials": "--trials", "storage": "--storage",
             "X": f"DATA {data}", "X_val": val, "X_val / y_val": val, "y_val": f"{val} (labels, column {label_column})"}
    m = re.match(r"(X_val / y_val|[A-Za-z_]+)(?=: )", msg)
    if m and m.group(1) in heads:
        msg = heads[m.group(1)] + msg[m.end():]
    msg = msg.replace("(X_val, y_val / --val-data)", "(--val-data)")
    msg = re.sub(r"params\['epochs'\]", "--epochs", msg)
    msg = re.sub(r"params\['device'\]", "--device", msg)
    msg = re.sub(r"\btune_fraction\b", "--tune-fraction", msg)
    msg = re.sub(r"\bsearch_space\[", f"--space {space} entry [" if space is not None else "--space entry [", msg)
    msg = re.sub(r"\bsearch_space\b", f"--space {space}" if space is not None else "--space", msg)
    msg = msg.replace("a positive number of seconds, or None (no limit)", "a positive number of seconds, or leave --timeout out (no limit)")
    try:
        return type(exc)(msg)
    except TypeError:  # an error class with other constructor arguments
        return GanadError(msg)


def _make_parent(output: Path) -> list:
    """Create OUTPUT's parent folder (for the default tuning storage); the folders created, deepest first."""
    parent, made = output.resolve().parent, []
    p = parent
    while not p.exists():
        made.append(p)
        p = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanadError(f"-o/--output {output}: its folder {parent} cannot be created ({exc}). Fix: choose another path") from exc
    return made


def _interrupted(exc: BaseException) -> bool:
    """Whether an exception comes of a Ctrl-C: a KeyboardInterrupt in its chain of causes and contexts
    (a library that caught it half-way and then failed on its own state)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return False


def _say_interrupted() -> None:
    console.print("[bold yellow]interrupted[/] (Ctrl-C). Files ganad writes (models, scores, reports) are replaced "
                  "whole or not at all, so none was left half-written; a fit given --checkpoint DIR resumes with --resume, a tune study "
                  "keeps its finished trials (the same command goes on)")


def main():
    """The ``ganad`` command: the typer app, with an operating-system error that no command caught
    where it happened (a disk that fills up while a file is written, a folder made read-only
    meanwhile) said in one line, exit status 1, instead of a traceback."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == 130:  # typer's exit for Ctrl-C (KeyboardInterrupt), which said nothing
            _say_interrupted()
        raise
    except Exception as exc:
        if _interrupted(exc):  # Ctrl-C inside a library's handler that then failed (optuna's tell: AssertionError, UnboundLocalError)
            _say_interrupted()
            raise SystemExit(130) from None
        if not isinstance(exc, OSError):
            raise
        from rich.markup import escape
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        console.print(f"[bold red]error:[/] {escape(where + (exc.strerror or str(exc)))}. Fix: check that path, its "
                      "permissions and the free space on its disk, then run the command again (a file ganad writes is "
                      "replaced whole or not at all)")
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
