"""Hyperparameter search with Optuna (``ganad tune``), label-free by default.

One *trial* fits a detector with hyperparameters drawn from a search space and scores it with an
objective (higher = better); Optuna's sampler (TPE) proposes the next draw, its pruner stops trials
whose per-epoch value falls behind, and the study lives in a storage (a SQLite file by default on
the command line) so that it survives a kill, resumes, and can be shared by several workers. The
best trial is refitted on all the training data and returned (saved by the CLI) as a normal model.

Objective without labels (the default): **separation of held-out normal rows from synthetic
anomalies made from them**. ``tune_fraction`` of the training rows (seeded, the same for every
trial) is never trained on; from those rows :func:`synthetic_anomalies` makes as many corrupted
copies: half with a random subset of their features replaced by the same features of other
held-out rows (a draw from the product of the marginals there: values that are each plausible
but whose joint configuration is not, the "reference distribution" of Hastie, Tibshirani &
Friedman, *Elements of Statistical Learning*, 2nd ed., §14.2.4, and the background distribution
of Steinwart, Hush & Scovel, JMLR 2005, that turn density-level detection into classification),
half with Gaussian noise of one standard deviation per feature added to a random subset of
features. The objective is the AUROC of the detector's score (``decision_function``) between the
held-out normal rows and their corruptions. It needs no label, is comparable across every
hyperparameter (it is a rank statistic, unlike a reconstruction error whose scale moves with the
model), and is zero-information for a detector that scores everything alike (AUROC 0.5), which
a criterion on normal data alone cannot see. It is a proxy: anomalies of a real data set need
not look like these corruptions (Ma, Zhao & Akoglu, SIGKDD Explorations 2023, find no internal
criterion reliable across data sets), which is why ``benchmarks/tune_adbench.py`` measures what
it buys on real labelled test splits (``benchmarks/RESULTS.md``).

With labelled validation data (``X_val`` and ``y_val``, 1 = anomaly), the objective is the AUROC
on it and the trials train on all of ``X``.

Pruning: after every epoch the trial reports the AUROC of the method's cheap per-sample proxy
score (held-out reconstruction residual ``|x − G(E(x))|``, for AnoGAN and f-AnoGAN's GAN stage
the distance to generated samples) on the same evaluation rows; ``MedianPruner`` stops a trial
whose value is below the median of earlier trials at the same epoch. The full score (with its
kNN blend and normalisation, set after training) is computed once, at the end. An ensemble
(``n_members > 1``) reports the epochs of its first member (:class:`_Reporter`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganad.exceptions import GanadError, InputError, _fmt
from ganad.params import is_int
from ganad.scoring.synthetic import auroc, synthetic_anomalies  # noqa: F401  (the objective; public names of this module)

#: search space entries shared by every method: name -> distribution spec (see :func:`check_space`)
COMMON_SPACE: dict[str, dict] = {
    "lr_g": {"type": "float", "low": 5e-5, "high": 2e-3, "log": True},
    "lr_d": {"type": "float", "low": 5e-5, "high": 2e-3, "log": True},
    "latent_dim": {"type": "categorical", "choices": [4, 8, 16, 32, 64]},
    "knn_weight": {"type": "float", "low": 0.0, "high": 1.0},
    "n_neighbors": {"type": "int", "low": 1, "high": 20, "log": True},
}

#: method-specific entries (added to :data:`COMMON_SPACE`); every range contains the method's default
METHOD_SPACE: dict[str, dict[str, dict]] = {
    "anogan": {"lam": {"type": "float", "low": 0.0, "high": 0.5}},
    "fanogan": {"kappa": {"type": "float", "low": 0.1, "high": 10.0, "log": True}},
    "bigan": {"lam": {"type": "float", "low": 0.0, "high": 0.5}},
    "egbad": {"lam": {"type": "float", "low": 0.0, "high": 0.5}},
    "alad": {},
    "ganomaly": {"w_adv": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
                 "w_con": {"type": "float", "low": 1.0, "high": 100.0, "log": True},
                 "w_lat": {"type": "float", "low": 0.1, "high": 10.0, "log": True}},
    "vaegan": {"beta": {"type": "float", "low": 0.1, "high": 10.0, "log": True},
               "w_adv": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
    "tadgan": {"cycle_weight": {"type": "float", "low": 1.0, "high": 50.0, "log": True}},
}

_KINDS = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}


def default_space(method: str, data_shape: tuple[int, ...] | None = None, net: str = "auto") -> dict[str, dict]:
    """The search space of ``method``: :data:`COMMON_SPACE`, a ``width`` entry (the default width
    of the network family the method builds for ``data_shape`` and ``net``, ``None``, or half or
    double it) and the method's own weights."""
    from ganad.detectors import DETECTORS
    from ganad.nets import default_width, resolve_family
    if method not in DETECTORS:
        raise InputError(_fmt("method", f"is {method!r}, which is not a ganad method", f"use one of {', '.join(sorted(DETECTORS))}"))
    space = {k: dict(v) for k, v in COMMON_SPACE.items()}
    if data_shape is not None:
        try:
            fam = resolve_family(net, tuple(data_shape))
            if net == "auto" and len(data_shape) == 2:  # a method's own family for series windows (TadGAN: LSTMs)
                fam = DETECTORS[method]._series_family or fam
            w = default_width(fam)
            space["width"] = {"type": "categorical", "choices": [None, max(1, w // 2), w * 2]}
        except ValueError:
            pass
    space.update({k: dict(v) for k, v in METHOD_SPACE.get(method, {}).items()})
    defaults = DETECTORS[method]().get_params()
    for k, s in space.items():  # every range holds the method's default (TadGAN's latent_dim is 20)
        v = defaults.get(k)
        if s["type"] == "categorical" and v not in s["choices"]:
            s["choices"] = [None] * (None in s["choices"]) + sorted([c for c in s["choices"] if c is not None] + [v])
        elif s["type"] in ("float", "int") and isinstance(v, (int, float)) and not isinstance(v, bool):
            s["low"], s["high"] = min(s["low"], v), max(s["high"], v)
    return space


def _resolved_defaults(cls, fixed: dict) -> dict:
    """The method's default parameters with 'auto' values the search space holds as numbers resolved
    as a fit with ``fixed`` would resolve them: ``knn_weight='auto'`` is 1.0 in the default
    'feature+input' space, 0.75 in the others. Left as 'auto', the defaults trial dropped it and the
    sampler drew a weight, so the trial labelled "defaults" was not the defaults."""
    dflt = cls().get_params()
    if dflt.get("knn_weight") == "auto":
        try:
            det = cls(**{k: v for k, v in fixed.items() if k in dflt})
            dflt["knn_weight"] = float(det._knn_weight_now(det._resolve_knn_space()))
        except Exception:  # fixed parameters the method refuses are reported by the trials themselves
            pass
    return dflt


def _in_space(v, s: dict) -> bool:
    if s["type"] == "categorical":
        return v in s["choices"]
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and s["low"] <= v <= s["high"]):
        return False
    step = s.get("step")  # on the grid low, low + step, ...: a value between its points is outside the space
    return not step or abs((v - s["low"]) / step - round((v - s["low"]) / step)) <= 1e-9


def read_space(path) -> dict:
    """A search space from a JSON or TOML file (``--space``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")  # TOML is UTF-8 whatever the locale
    except OSError as exc:
        raise InputError(_fmt(f"--space {p}", f"cannot be read ({exc.strerror or exc})", "pass an existing JSON or TOML file")) from exc
    try:
        if p.suffix.lower() == ".toml":
            import tomllib
            space = tomllib.loads(text)
        else:
            space = json.loads(text)
    except ValueError as exc:
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise InputError(_fmt(f"--space {p}", f"is not valid {kind} ({exc})",
                              'write a table such as {"lr_g": {"type": "float", "low": 1e-4, "high": 1e-3, "log": true}}')) from exc
    if not isinstance(space, dict):
        raise InputError(_fmt(f"--space {p}", "does not hold a table of parameters", 'write {"parameter": {"type": ...}, ...}'))
    return space


def check_space(space: dict, cls, name: str = "search_space") -> dict:
    """Validate a search space against the detector class ``cls``: every key a parameter of it;
    every value a spec ``{"type": "float"|"int", "low", "high", "log"?, "step"?}`` or
    ``{"type": "categorical", "choices": [...]}``, or a plain value (fixed for every trial), or
    ``None`` (drop the entry: the method's default)."""
    if not isinstance(space, dict):
        raise InputError(_fmt(name, f"is a {type(space).__name__}", 'pass a dict such as {"lr_g": {"type": "float", "low": 1e-4, "high": 1e-3}}'))
    params = cls().get_params()
    out: dict[str, Any] = {}
    for key, spec in space.items():
        if key not in params:
            raise InputError(_fmt(f"{name}[{key!r}]", f"is not a parameter of {cls.__name__}",
                                  f"use some of {', '.join(sorted(params))}"))
        if key in ("random_state", "verbose", "device", "n_members"):
            raise InputError(_fmt(f"{name}[{key!r}]", "cannot be searched", "leave it out of the space"))
        if spec is None:
            continue
        if not isinstance(spec, dict):
            out[key] = {"type": "fixed", "value": spec}
            continue
        kind = spec.get("type")
        if kind not in _KINDS:
            raise InputError(_fmt(f"{name}[{key!r}]", f"has type {kind!r}", "use 'float', 'int' or 'categorical' (or a plain value to fix it)"))
        extra = set(spec) - {"type", "log", "step", *_KINDS[kind]}
        missing = [k for k in _KINDS[kind] if k not in spec]
        if missing or extra:
            raise InputError(_fmt(f"{name}[{key!r}]", f"lacks {missing}" if missing else f"has unknown keys {sorted(extra)}",
                                  f"give exactly {', '.join(_KINDS[kind])} (and optionally log, step for numbers)"))
        if kind == "categorical":
            ch = spec["choices"]
            if not isinstance(ch, list) or not ch or not all(c is None or isinstance(c, (bool, int, float, str)) for c in ch):
                raise InputError(_fmt(f"{name}[{key!r}].choices", f"is {ch!r}", "give a non-empty list of numbers, strings, booleans or null"))
        else:
            lo, hi = spec["low"], spec["high"]
            num = (int,) if kind == "int" else (int, float)
            if not all(isinstance(v, num) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)) or lo > hi:
                raise InputError(_fmt(f"{name}[{key!r}]", f"has low={lo!r}, high={hi!r}", f"give {kind} bounds with low <= high"))
            log = spec.get("log")
            if log is not None and not isinstance(log, bool):  # "false" (a string) would be truthy: a log scale
                raise InputError(_fmt(f"{name}[{key!r}].log", f"is {log!r}", "use true or false (a boolean, not a string)"))
            if log and lo <= 0:
                raise InputError(_fmt(f"{name}[{key!r}]", f"is log-scaled with low={lo!r}", "use low > 0 or log: false"))
            step = spec.get("step")
            if step is not None and (isinstance(step, bool) or not isinstance(step, num) or not math.isfinite(step) or step <= 0):
                raise InputError(_fmt(f"{name}[{key!r}].step", f"is {step!r}", f"give a positive {kind} step, or leave it out"))
            if step is not None and spec.get("log"):
                raise InputError(_fmt(f"{name}[{key!r}]", "has both log and step", "use one of them (Optuna takes either)"))
        out[key] = dict(spec)
    return out


def _check_values(cls, fixed: dict, space: dict, shape: tuple | None = None) -> None:
    """Refuse, before any trial, values that the detector refuses at fit: a fixed parameter (``params``
    or a space's plain value), a categorical choice, a range's bound, and an unavailable ``device``.
    Otherwise every trial drawing them fails, each using up a trial number of the study (and the
    defaults trial, which a study runs once). ``shape``: the samples' shape, which a ``net`` family
    must fit (an 'lstm' choice for table rows failed every trial that drew it)."""
    from ganad.nets import resolve_family
    from ganad.params import constraints_of
    from ganad.training.loop import resolve_device
    rules = constraints_of(cls)
    checks = [(f"params[{k!r}]", k, v) for k, v in fixed.items()]
    for k, s in space.items():
        if s["type"] == "fixed":
            checks.append((f"search_space[{k!r}]", k, s["value"]))
        elif s["type"] == "categorical":
            checks += [(f"search_space[{k!r}].choices", k, c) for c in s["choices"]]
        else:
            num = int if s["type"] == "int" else float
            checks += [(f"search_space[{k!r}].{b}", k, num(s[b])) for b in ("low", "high")]
    for where, k, v in checks:
        try:
            if k == "device":
                resolve_device(v)
            elif k in rules:
                rules[k].check(k, v)
            if k == "net" and isinstance(v, str) and shape is not None:
                resolve_family(v, tuple(shape))
        except (InputError, ValueError) as exc:
            problem, _, fix = str(exc).partition(". Fix: ")
            raise InputError(_fmt(where, f"is {v!r}, which {cls.__name__} refuses ({problem})",
                                  fix or "pass a value the method accepts")) from exc


def _fewest_epochs(fixed: dict, space: dict, default: int) -> int:
    """The fewest epochs a trial can train: fixed by ``params``, else the smallest the search space
    can draw (its plain value, lowest bound or smallest choice), else the method's default. The
    pruner's warm-up is a third of it, so no trial is pruned before a third of its training."""
    if "epochs" in fixed:
        return int(fixed["epochs"])
    s = space.get("epochs")
    if s is None:
        return int(default)
    if s["type"] == "fixed":
        return int(s["value"])
    if s["type"] == "categorical":
        return int(min(s["choices"]))
    return int(math.ceil(s["low"]))


def _suggest(trial, space: dict) -> dict:
    p = {}
    for k, s in space.items():
        if s["type"] == "fixed":
            p[k] = s["value"]
        elif s["type"] == "float":
            p[k] = trial.suggest_float(k, float(s["low"]), float(s["high"]), log=bool(s.get("log", False)), step=s.get("step"))
        elif s["type"] == "int":
            p[k] = trial.suggest_int(k, int(s["low"]), int(s["high"]), log=bool(s.get("log", False)), step=int(s.get("step") or 1))  # "step": null = no step
        else:
            p[k] = trial.suggest_categorical(k, s["choices"])
    return p


# --------------------------------------------------------------------------- objective


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows the trials train on, rows the label-free objective evaluates on), seeded."""
    k = int(round(fraction * n))
    if k < 16 or n - k < 32:
        raise InputError(_fmt("X", f"has {n} rows, too few for a tuning hold-out of {fraction:.0%} (needs >= 16 held out and 32 to train)",
                              ("give more training rows, " + ("raise" if k < 16 else "lower") +
                               " tune_fraction, or pass labelled validation data (X_val, y_val / --val-data)")))
    perm = np.random.RandomState(seed).permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])


class _Reporter:
    """Training callback: after every epoch, the AUROC of the method's per-sample proxy score on
    the evaluation rows, reported to the trial; raises ``optuna.TrialPruned`` when the pruner says so.

    An ensemble (``n_members > 1``) trains its members as clones, which drop the callback; it hands
    it to its first member instead, through :meth:`bind`, and the trial reports that member's
    epochs. The members share every hyperparameter and differ only in their seed, so the first
    one's curve is the hyperparameters' per-epoch signal; its steps are those of a single model's
    trial (stages, early stopping and the pruner's warm-up alike), so the pruner's median compares
    the same quantity at every step; and a trial pruned there never trains the other members (most
    of its cost). A mean over members trained so far would only be known member by member, on steps
    that move with each member's early stop. The members after the first are not reported: a trial
    that has kept above the median for a whole member is finished."""

    def __init__(self, trial, det, X_eval: np.ndarray, y_eval: np.ndarray, label: str | None = None):
        self.trial, self.det, self.X_eval, self.y_eval = trial, det, X_eval, y_eval
        self.label = label  # e.g. "member 1 of 3" (an ensemble's), for the pruned trial's line
        self.step = 0
        self.Xt = None

    def bind(self, det, label: str | None = None) -> "_Reporter":
        """The same reports, read from ``det`` (an ensemble's member) instead of the detector given."""
        return _Reporter(self.trial, det, self.X_eval, self.y_eval, label)

    def __call__(self, stage: str, epoch: int, means: dict) -> None:
        import optuna
        import torch
        det = self.det
        if self.Xt is None:
            self.Xt = torch.from_numpy(det.scaler_.transform(self.X_eval))
        kind = "encoder" if "E" in det._networks and stage != "gan" else "generated"
        nets = det.nets_
        modes = {name: m.training for name, m in nets.named_modules()}
        nets.eval()
        try:
            with torch.no_grad():
                s = det._proxy(self.Xt, kind).double().cpu().numpy()
        finally:
            for name, m in nets.named_modules():
                m.training = modes[name]
        value = auroc(self.y_eval, s) if np.isfinite(s).all() else 0.0
        self.trial.report(value, self.step)
        where = f"{stage} epoch {epoch + 1}" + (f", {self.label}" if self.label else "")  # the stage too: f-AnoGAN trains two
        self.trial.set_user_attr("last_epoch", where)
        self.step += 1
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{where}: proxy AUROC {value:.3f} below the median of earlier trials")


# --------------------------------------------------------------------------- storage and study


def storage_url(storage) -> str | None:
    """``None`` (in memory), a database URL, or a file path (made a SQLite URL)."""
    if storage is None:
        return None
    s = str(storage)
    if "://" in s:
        return s
    return "sqlite:///" + str(Path(s).expanduser().resolve())


def _transient(exc: Exception) -> bool:
    """Whether opening a storage may succeed on a retry: the database errors of two workers that
    create one new database's tables at the same moment (SQLAlchemy's OperationalError / IntegrityError,
    or Optuna's StorageInternalError that wraps a failed commit)."""
    import optuna
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - optuna's RDB storage needs SQLAlchemy
        return False
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.IntegrityError, optuna.exceptions.StorageInternalError))


def _sqlite_tables(path: Path) -> set[str]:
    import sqlite3
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
        try:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.Error:
        return set()


def _open_storage(url: str | None):
    import optuna
    if url is None:
        return None
    if url.rstrip("/") in ("sqlite:", "sqlite:/", "sqlite://") or url.startswith("sqlite:///:memory:"):
        raise InputError(_fmt("storage", f"{_redact(url)!r} is an in-memory database, lost when the command ends (and not shared with "
                                         "Optuna's heartbeat connection)", "pass a file, e.g. sqlite:///ganad-tune.db"))
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not path.parent.is_dir():
            raise InputError(_fmt("storage", f"{_redact(url)!r}: the folder {str(path.parent)!r} does not exist", "create it or pass another path"))
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise InputError(_fmt("storage", f"{_redact(url)!r}: the file is not readable and writable", "fix its permissions or pass another path"))
        if path.is_dir():
            raise InputError(_fmt("storage", f"{_redact(url)!r}: is a folder", "pass a database file path, e.g. sqlite:///study.db"))
        if path.is_file() and path.stat().st_size > 0:
            with open(path, "rb") as fh:
                head = fh.read(16)
            if head != b"SQLite format 3\x00":  # refused at once (no retries); SQLite took a one-byte file for an empty database and overwrote it
                raise InputError(_fmt("storage", f"{_redact(url)!r}: is not an SQLite database (a file of {path.stat().st_size} bytes of something else)",
                                      "pass a new file name or an existing Optuna study database"))
            tables = _sqlite_tables(path)
            if tables and "studies" not in tables:  # another application's database: Optuna would add its tables to it
                raise InputError(_fmt("storage", f"{_redact(url)!r}: is an SQLite database of something else (tables {sorted(tables)[:5]})",
                                      "pass a new file name or an existing Optuna study database"))
    import warnings
    # SQLite: writers wait up to 60 s for another worker's lock instead of failing at once
    kw = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else None
    last: Exception | None = None
    for attempt in range(5):
        try:
            # heartbeats: a trial whose worker was killed is marked failed after grace_period seconds,
            # when a worker starts its next trial, so a resumed study does not wait for it forever
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=kw, heartbeat_interval=30, grace_period=120)
        except Exception as exc:  # noqa: BLE001 - two workers creating one new database race on its tables: retry
            last = exc
            if not _transient(exc):  # an unknown scheme, a bad URL, a missing driver: no retry will help
                break
            time.sleep(0.2 * (attempt + 1) * (1 + np.random.RandomState().rand()))
    raise InputError(_fmt("storage", f"{_redact(url)!r} cannot be opened as an Optuna storage ({type(last).__name__}: {_scrub(str(last), url).splitlines()[0][:200]})",
                          "pass sqlite:///path/to/file.db (a new or existing Optuna study database) or a database URL")) from last


def _trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` of a study tuned with ``seed`` (any int), in [0, 2**32)."""
    import hashlib
    return int.from_bytes(hashlib.sha256(f"ganad-tune:{seed}:{number}".encode()).digest()[:4], "little")


def _trial_seeded_tpe(seed: int):
    """Optuna's TPE sampler whose random draws for a trial come from ``seed`` and the trial's
    number (a fresh ``TPESampler(seed=_trial_seed(seed, number))`` per trial). The storage gives
    each number to one trial, so workers that start together on one study draw different trials (a
    sampler seeded per worker, even with the seed plus the trials it saw at its start, gives them
    one sequence), and one worker's study is reproducible, a resumed one included: trial n draws
    the same whether or not the run stopped before it."""
    import optuna

    class TrialSeededTPESampler(optuna.samplers.BaseSampler):
        def __init__(self):
            self._per_trial: dict[int, optuna.samplers.TPESampler] = {}

        def _tpe(self, trial):
            if trial.number not in self._per_trial:
                self._per_trial[trial.number] = optuna.samplers.TPESampler(seed=_trial_seed(seed, trial.number))
            return self._per_trial[trial.number]

        def infer_relative_search_space(self, study, trial):
            return self._tpe(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._tpe(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._tpe(trial).sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial):
            self._tpe(trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values):
            self._tpe(trial).after_trial(study, trial, state, values)
            self._per_trial.pop(trial.number, None)

        def reseed_rng(self):  # the draws come from (seed, trial number) in every worker and thread
            pass

    return TrialSeededTPESampler()


def _study_attrs(method, labelled, data_shape, tune_fraction, seed) -> dict:
    """The settings a study records and a resume must repeat; the hold-out fraction only for the
    label-free objective (with labelled validation data no row is held out: it changes nothing)."""
    return {"ganad_method": method, "ganad_objective": "labelled-auroc" if labelled else "synthetic-auroc",
            "ganad_data_shape": list(data_shape), **({} if labelled else {"ganad_tune_fraction": float(tune_fraction)}),
            "ganad_seed": int(seed)}


#: the settings a default study name's hash covers (what a resume must repeat, as ganad records it
#: now). A key a later version records must stay out of it: otherwise every default-named study
#: would get another name, and a re-run after an upgrade would start afresh instead of resuming.
_NAME_KEYS = ("ganad_method", "ganad_objective", "ganad_data_shape", "ganad_tune_fraction", "ganad_seed",
              "ganad_data_sha256", "ganad_fixed_params", "ganad_space_fixed")


def _settings_diff(stored: dict, given: dict, required: dict) -> dict:
    """The settings of ``given`` a study that recorded ``stored`` differs in: ``{key: (stored, given)}``.
    Studies of older ganad versions lack the newer keys: only what they recorded (and the keys of
    ``required``, recorded by every version) is compared."""
    return {k: (stored.get(k), v) for k, v in given.items() if stored.get(k) != v and (k in stored or k in required)}


def _default_study_name(st, prefix: str, attrs: dict, required: dict) -> str:
    """``<prefix>-<8 hex digits>``: a hash of the settings a resume must repeat (:data:`_NAME_KEYS`:
    method, objective, data shape and hash, hold-out fraction, seed, fixed values), so a re-run with
    the same data and options resumes its study and one with others starts its own in the same
    storage instead of being refused. A study named ``prefix`` alone (the default name of ganad
    before, e.g. ``ganad-ganomaly``, or ``ganomaly-train`` on the command line) that recorded the
    same settings is resumed under that name, as it was."""
    import hashlib
    key = json.dumps({k: attrs[k] for k in _NAME_KEYS if k in attrs}, sort_keys=True)
    name = f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    if st is None:  # in memory: no study of an earlier run
        return name
    try:
        old = st.get_study_user_attrs(st.get_study_id_from_name(prefix))
    except Exception:  # noqa: BLE001 - no study of that name (KeyError); a storage that fails here fails, named, when the study is opened next
        return name
    if old.get("ganad_method") is not None and not _settings_diff(old, attrs, required):
        return prefix
    return name


@dataclass
class TuneResult:
    """What :func:`tune` returns: the Optuna study, the refitted best detector (None with
    ``refit=False``), the best trial's parameters and value and the fixed parameters of every trial."""

    study: Any
    detector: Any
    best_params: dict
    best_value: float
    fixed_params: dict
    objective: str

    def summary(self) -> dict:
        import optuna
        states = [t.state for t in self.study.trials]
        return {"study_name": self.study.study_name, "objective": self.objective, "best_value": self.best_value,
                "best_params": self.best_params, "best_trial": self.study.best_trial.number,
                "n_complete": states.count(optuna.trial.TrialState.COMPLETE),
                "n_pruned": states.count(optuna.trial.TrialState.PRUNED),
                "n_failed": states.count(optuna.trial.TrialState.FAIL)}


def tune(X, *, method: str = "ganomaly", n_trials: int = 20, storage=None, study_name: str | None = None,
         study_prefix: str | None = None, search_space: dict | None = None, params: dict | None = None, X_val=None, y_val=None,
         tune_fraction: float = 0.2, seed: int = 0, pruner=None, sampler=None, enqueue_defaults: bool = True,
         enqueue: list[dict] | None = None, timeout: float | None = None, refit: bool = True,
         callbacks: list | None = None) -> TuneResult:
    """Search the hyperparameters of ``method`` on normal training data ``X``.

    ``n_trials`` is the study's target of finished (complete or pruned) trials: a resumed study
    (same ``storage`` and ``study_name``) runs only those still missing, and several workers on
    one storage share the target. ``search_space`` entries replace or extend (``None`` removes)
    those of :func:`default_space`; ``params`` are fixed detector parameters of every trial and the
    refit (e.g. ``{"epochs": 10}``). A parameter both in ``params`` and (not ``None``) in
    ``search_space`` is refused, and so is a space of plain (fixed) values only. Without ``X_val`` / ``y_val`` the objective is label-free
    (module docstring); with them, the AUROC on them. The first trial of a new study is the
    method's defaults (``enqueue_defaults``), so the best trial is never worse than the defaults on
    the objective. The best trial is refitted on all of ``X`` with ``random_state=seed``. Unless a
    ``sampler`` is given, TPE's random draws for trial n come from ``seed`` and n: workers of one
    study draw different trials, and one worker's study is reproducible, resumed or not.

    A given ``study_name`` resumes that study, and is refused if it was created with another
    method, data, seed, hold-out fraction or fixed values. Without one, the study is named
    ``<study_prefix>-<hash of those settings>`` (prefix ``ganad-<method>`` by default): the same
    data and options resume their study, other ones start their own beside it in a shared
    storage. A study named ``study_prefix`` alone (the default name before; ``ganad tune`` passes
    ``<method>-<data file stem>``) with the same settings is resumed under that name.
    """
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(_fmt("ganad.tune", f"needs optuna ({exc})", "pip install 'ganad[tune]'")) from exc
    from ganad.data.validation import check_array, check_labels
    from ganad.detectors import DETECTORS

    if method not in DETECTORS:
        raise InputError(_fmt("method", f"is {method!r}, which is not a ganad method", f"use one of {', '.join(sorted(DETECTORS))}"))
    if not is_int(n_trials) or n_trials < 1:
        raise InputError(_fmt("n_trials", f"is {n_trials!r}", "pass a whole number of trials >= 1, e.g. 20"))
    if timeout is not None and not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
        raise InputError(_fmt("timeout", f"is {timeout!r}", "pass a positive number of seconds, or None (no limit)"))
    if not is_int(seed) or not 0 <= seed < 2**32:  # numpy's RandomState takes seeds in [0, 2**32)
        raise InputError(_fmt("seed", f"is {seed!r}", "pass a whole number in [0, 2**32), e.g. 0"))
    if not (isinstance(tune_fraction, (int, float)) and 0 < tune_fraction < 1):
        raise InputError(_fmt("tune_fraction", f"is {tune_fraction!r}", "pass a fraction in (0, 1), e.g. 0.2"))
    for arg, v in (("study_name", study_name), ("study_prefix", study_prefix)):
        if v is not None and not isinstance(v, str):
            raise InputError(_fmt(arg, f"is a {type(v).__name__} ({v!r})", "pass a string, or None (the default name)"))
    cls = DETECTORS[method]
    from ganad.detectors.base import feature_names
    names = feature_names(X)  # a DataFrame's columns: the refitted model checks them when scoring, as fit's does
    X = check_array(X, "X", min_samples=2, dtype="float")
    labelled = X_val is not None or y_val is not None
    if labelled:
        if X_val is None or y_val is None:
            raise InputError(_fmt("X_val / y_val", "only one was given", "pass both the labelled validation rows and their labels, or neither"))
        val_names = feature_names(X_val)
        X_val = check_array(X_val, "X_val", min_samples=2, dtype="float")
        if X_val.shape[1:] != X.shape[1:]:
            raise InputError(_fmt("X_val", f"has rows of shape {X_val.shape[1:]}, X of {X.shape[1:]}", "give validation rows with the training columns"))
        if names is not None and val_names is not None and list(val_names) != list(names):
            raise InputError(_fmt("X_val", f"has the columns {list(val_names)[:10]}, X {list(names)[:10]}",
                                  "give the validation rows X's columns, in X's order (X_val[X.columns])"))
        y_val = check_labels(y_val, len(X_val), "y_val")
        if len(np.unique(y_val)) < 2:
            raise InputError(_fmt("y_val", "holds one class only", "give validation data with both normal (0) and anomalous (1) rows"))
        fit_idx = np.arange(len(X))
        X_eval, y_eval = X_val, y_val
    else:
        fit_idx, hold_idx = holdout_split(len(X), tune_fraction, seed)
        normal = X[hold_idx]
        X_eval = np.concatenate([normal, synthetic_anomalies(normal, seed).astype(X.dtype)])
        y_eval = np.r_[np.zeros(len(normal), int), np.ones(len(normal), int)]
    fixed = dict(params or {})
    bad = [k for k in fixed if k not in cls().get_params()]
    if bad:
        raise InputError(_fmt("params", f"names {bad}, not parameters of {cls.__name__}", f"use some of {', '.join(sorted(cls().get_params()))}"))
    plain_net = search_space.get("net") if isinstance(search_space, dict) and isinstance(search_space.get("net"), str) else None
    # the width of the family the trials build: fixed by params or by a plain value of the space file
    space = default_space(method, X.shape[1:], fixed.get("net", plain_net or "auto"))
    if search_space is not None:
        if not isinstance(search_space, dict):
            raise InputError(_fmt("search_space", f"is a {type(search_space).__name__}", "pass a dict of parameter -> distribution"))
        both = [k for k, v in search_space.items() if k in fixed and v is not None]
        if both:  # which one holds? The space's entry was dropped without a word
            k = both[0]
            raise InputError(_fmt(f"search_space[{k!r}]", f"is given, and params[{k!r}] fixes it too ({fixed[k]!r})",
                                  f"give {k} in one of them: params[{k!r}] to fix it for every trial, or the search space to search it"))
        space.update(search_space)
    space = {k: v for k, v in space.items() if k not in fixed}  # the default entries of what params fixes
    space = check_space(space, cls)
    if not space:
        raise InputError(_fmt("search_space", "is empty", "leave at least one parameter to search"))
    if all(s["type"] == "fixed" for s in space.values()):  # every trial would train the same model, n_trials times
        raise InputError(_fmt("search_space", f"only fixes values ({', '.join(sorted(space))}), so every trial would be the same",
                              "give at least one range or list of choices to search; to train one model with fixed values, use fit"))
    _check_values(cls, fixed, space, X.shape[1:])  # before the study is touched: a value fit refuses would fail every trial

    url = storage_url(storage)
    st = _open_storage(url)
    epochs = _fewest_epochs(fixed, space, cls().get_params()["epochs"])
    if pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 3))
    if sampler is None:
        sampler = _trial_seeded_tpe(seed)
    attrs = _study_attrs(method, labelled, X.shape[1:], tune_fraction, seed)
    import hashlib
    import json as _json
    h = hashlib.sha256()  # the data a study was created on: a resume with other data is refused below
    for a in ([X, X_val, y_val] if labelled else [X]):
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1))
    attrs["ganad_data_sha256"] = h.hexdigest()[:16]
    # what changes a trial's result (not the device it runs on: workers of one study may differ there)
    attrs["ganad_fixed_params"] = _json.dumps({k: v for k, v in fixed.items() if k != "device"}, sort_keys=True, default=repr)
    # a search space's plain values are fixed for every trial too, and not among a trial's params: the
    # refit of a best trial takes them from the space given now, so a resume with other ones is refused
    # (a separate key: a study of an older ganad, without it, resumes as before)
    attrs["ganad_space_fixed"] = _json.dumps({k: s["value"] for k, s in space.items() if s["type"] == "fixed"}, sort_keys=True, default=repr)
    required = _study_attrs(method, labelled, X.shape[1:], tune_fraction, seed)  # waited for below, and compared even where a study lacks them
    # a given name is that study (refused below if its settings differ); the default one is the settings' own
    name = study_name or _default_study_name(st, study_prefix or f"ganad-{method}", attrs, required)
    try:
        with _quiet_optuna():
            study = optuna.create_study(storage=st, study_name=name, direction="maximize", load_if_exists=True,
                                        pruner=pruner, sampler=sampler)
    except GanadError:
        raise
    except Exception as exc:
        raise InputError(_fmt("storage", f"{_redact(url)!r}: study {name!r} cannot be created or loaded ({type(exc).__name__}: {_scrub(str(exc), url).splitlines()[0][:200]})",
                              "pass another study name or storage")) from exc
    old = study.user_attrs
    if old.get("ganad_method") is not None:
        for _ in range(100):  # a worker that created the study a moment ago may still be writing them, one by one
            if all(k in old for k in required):
                break
            time.sleep(0.05)
            old = study.user_attrs
        diff = _settings_diff(old, attrs, required)
        if diff:
            fix = ("pass the same method, data and options to resume it, or a new --study-name (or none: the default name "
                   "is one of its own for every data set and options)")
            if "ganad_data_sha256" in diff:
                fix += (" (the same file read by a ganad older than its float64 scaling, which fingerprinted the data as float32, "
                        "differs too: finish such a study with that version, or start a new one)")
            raise InputError(_fmt(f"study {name!r}", f"was created with other settings {diff} (stored, given)", fix))
    else:
        for k, v in attrs.items():
            study.set_user_attr(k, v)
    fin = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    # the defaults first, those a user's space leaves out of its ranges drawn by the sampler
    plain = {k: s_["value"] for k, s_ in space.items() if s_["type"] == "fixed"}  # a space file's plain values count as fixed
    dflt = _resolved_defaults(cls, {**plain, **fixed})
    dflt_trial = {k: dflt[k] for k, s in space.items() if s["type"] != "fixed" and _in_space(dflt[k], s)}
    if not study.trials:
        queued = ([dflt_trial] if enqueue_defaults else []) + list(enqueue or [])
        for p in queued:  # skip_if_exists: another worker that also found the study empty may have queued it a moment ago
            study.enqueue_trial(p, user_attrs={"ganad_enqueued": "defaults" if p is queued[0] and enqueue_defaults else "given"},
                                skip_if_exists=True)
    elif enqueue_defaults:
        # a defaults trial interrupted (Ctrl-C, or killed: failed by the heartbeat once stale) never
        # ran: queued again, or the study would never see the defaults. One that failed on its own
        # error (ganad_error) is not: the same seed would fail again.
        import warnings
        with _quiet_optuna(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        ts = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("ganad_enqueued") == "defaults"]
        if ts and all(t.state == optuna.trial.TrialState.FAIL and "ganad_error" not in t.user_attrs for t in ts):
            study.enqueue_trial(dflt_trial, user_attrs={"ganad_enqueued": "defaults"})  # (skip_if_exists would find the failed one)

    def objective(trial):
        p = {**fixed, **_suggest(trial, space), "random_state": seed, "verbose": False}
        det = cls(**p)
        det._train_callbacks = [_Reporter(trial, det, X_eval, y_eval)]
        t0 = time.perf_counter()
        try:
            try:
                det.fit(X[fit_idx])
            finally:
                det.__dict__.pop("_train_callbacks", None)
            s = det.decision_function(X_eval)
            value = auroc(y_eval, s)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # the reason, for the "no completed trial" message (Optuna keeps none it shows);
            # also what tells a trial that failed on its own (not re-queued) from an interrupted one
            trial.set_user_attr("ganad_error", f"{type(exc).__name__}: {str(exc)[:200]}")
            raise
        trial.set_user_attr("fit_s", round(time.perf_counter() - t0, 3))
        return value

    t_start = time.monotonic()
    while True:
        done = sum(t.state in fin for t in study.trials)
        remaining = max(0, int(n_trials) - done)
        left = None if timeout is None else timeout - (time.monotonic() - t_start)
        if not remaining or (left is not None and left <= 0):
            break
        try:
            with _quiet_optuna():
                study.optimize(objective, n_trials=remaining, timeout=left, catch=(FloatingPointError, GanadError),
                               callbacks=[optuna.study.MaxTrialsCallback(int(n_trials), states=fin), *(callbacks or [])])
            # n_trials counts finished trials: a round in which some failed leaves trials missing, run
            # in another round; a round in which none finished ends the search (every trial failing
            # would otherwise loop for ever)
            if sum(t.state in fin for t in study.trials) == done:
                break
        except ValueError as exc:
            # Two workers of one study on SQLite storage can both take the same queued trial (SQLite
            # ignores the row lock optuna asks for: optuna issues #4002, #4621); the one that finishes
            # second cannot record it. Its result is the other worker's: this worker goes on.
            if "Cannot tell a COMPLETE trial" not in str(exc):
                raise
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        errs = {t.number: t.user_attrs.get("ganad_error") or t.system_attrs.get("fail_reason", "")
                for t in study.trials if t.state == optuna.trial.TrialState.FAIL}
        reasons = "; ".join(f"trial {k}: {str(v)[:200]}" for k, v in list(errs.items())[:3]) + (" ..." if len(errs) > 3 else "")
        raise InputError(_fmt(f"study {name!r}", f"has no completed trial (failed: {reasons})",
                              "check the data, widen or change the search space, or raise n_trials"))
    best = study.best_trial
    best_params = {k: v for k, v in best.params.items()}
    best_params.update({k: s["value"] for k, s in space.items() if s["type"] == "fixed"})
    det = None
    if refit:
        det = cls(**{**fixed, **best_params, "random_state": seed, "verbose": False}).fit(X)
        if names is not None and X.ndim == 2:
            det.feature_names_in_ = names
        det.tuning_ = {"study_name": name, "storage": _redact(url), "objective": attrs["ganad_objective"],
                       "best_trial": best.number, "best_value": best.value, "best_params": best_params,
                       "n_trials": len(study.trials)}
    return TuneResult(study, det, best_params, float(best.value), fixed, attrs["ganad_objective"])


def _scrub(text: str, url: str | None) -> str:
    """``text`` (a database driver's message) with ``url``'s password masked wherever the URL appears."""
    red = _redact(url)
    return text if not url or red == url else text.replace(url, str(red))


def _redact(url: str | None) -> str | None:
    """A database URL without its password (for the model's tuning record and the printed
    summary): ``postgresql://user:pw@host/db`` -> ``postgresql://user:***@host/db``. The password is
    what SQLAlchemy (the storage) reads as one: up to the last '@' of the authority, '/' included (an
    unescaped '@' later in the URL, as in ``host:5432/my@db``, makes SQLAlchemy read ``5432/my`` as a
    password too: write it ``%40``). Only the
    URL's authority (between ``://`` and the next ``/``) is looked at: an SQLite file path holding
    an ``@`` is no password."""
    if url is None or "://" not in url:
        return url
    head, tail = url.split("://", 1)
    netloc, slash, rest = tail.partition("/")
    if "@" not in netloc:  # the password may hold a '/' (a URL's authority then reaches past it, to the last '@')
        at = tail.rfind("@")
        if not netloc or at < 0 or ":" not in tail[:at]:  # (no authority, as sqlite:///path: a path's '@' is no password)
            return url
        host, slash, rest = tail[at + 1:].partition("/")
        netloc = tail[:at + 1] + host
    userinfo, host = netloc.rsplit("@", 1)
    if ":" not in userinfo:  # a user without a password
        return url
    return f"{head}://{userinfo.split(':', 1)[0]}:***@{host}{slash}{rest}"


class _quiet_optuna:
    """Optuna logs every trial at INFO, and a failed or interrupted one (Ctrl-C) as a WARNING with its
    traceback; ganad prints its own table, its own line per trial (``ganad tune``) and its own errors
    (a failed trial's reason is kept as its ``ganad_error``)."""

    def __enter__(self):
        import optuna
        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)

    def __exit__(self, *exc):
        import optuna
        optuna.logging.set_verbosity(self.level)


def write_tuning_record(det, model_dir) -> Path:
    """``tuning.json`` beside an already saved model: study, objective, best trial and parameters
    (written to a temporary file and renamed, never half-written). ``det.save(path)`` of a tuned
    detector writes it already, in the same atomic replacement as the model (what ``ganad tune``
    does); this is for a record added afterwards."""
    d = Path(model_dir)
    rec = json.dumps(getattr(det, "tuning_", {}), indent=2, default=str)
    fd, tmp = tempfile.mkstemp(prefix=".tuning.json.", dir=d)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(rec)
        from ganad.files import umask_mode
        os.chmod(tmp, 0o666 & umask_mode())
        os.replace(tmp, d / "tuning.json")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return d / "tuning.json"


def trial_line(study, trial) -> str:
    """One line on a finished trial, for progress: its number, value or state, seconds, the best so far."""
    import optuna
    fit_s = trial.user_attrs.get("fit_s")
    took = f" in {fit_s:.1f}s" if isinstance(fit_s, (int, float)) else ""
    if trial.state == optuna.trial.TrialState.COMPLETE:
        what = f"AUROC {trial.value:.4f}{took}"
    elif trial.state == optuna.trial.TrialState.PRUNED:
        last = trial.user_attrs.get("last_epoch")  # (trial.last_step counts reports from 0, across stages)
        what = f"pruned ({last})" if last is not None else "pruned"
    else:
        what = f"failed ({trial.user_attrs.get('ganad_error') or trial.system_attrs.get('fail_reason', 'no reason recorded')})"
    try:
        best = study.best_trial
        tail = f"; best so far {best.value:.4f} (trial {best.number})"
    except ValueError:  # no completed trial yet
        tail = ""
    return f"trial {trial.number}: {what}{tail}"


def trials_table(study, top: int = 10) -> list[dict]:
    """The best ``top`` completed trials, then the counts of pruned and failed ones (for printing)."""
    import optuna
    rows = []
    complete = sorted((t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: -t.value)
    for t in complete[:top]:
        dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else float("nan")
        rows.append({"trial": t.number, "value": t.value, "seconds": dur, "params": t.params,
                     "note": t.user_attrs.get("ganad_enqueued", "")})
    return rows


# --------------------------------------------------------------------------- files (the CLI)


def read_labelled(path, label_column: str | None, *, exclude=(), key=None, sep=None, decimal=".") -> tuple[np.ndarray, np.ndarray]:
    """Labelled validation data (``--val-data``): the rows (every column but the label column
    and ``exclude``) and the labels (``label_column``: a CSV / Parquet column, or an NPZ array).
    ``exclude`` names columns of a CSV / Parquet file; an NPZ array has no column names, so its rows'
    array is read as it is: it holds the training columns as they are after ``exclude`` (the CLI
    checks its width against the training data's, naming --exclude)."""
    from ganad.data.io import file_format, read_array
    from ganad.data.validation import check_labels
    p = Path(path)
    fmt = file_format(p)
    if fmt not in ("npz", "csv", "parquet"):  # before --label-column: naming a column here led to this refusal next
        what = "a folder of images" if fmt == "images" else f"a {fmt} file"
        fix = ("use a CSV / Parquet file with a label column or an NPZ file with a labels array, e.g. the images and "
               "their labels as np.savez('val.npz', X=images, y=labels) with --label-column y")
        raise InputError(_fmt(f"--val-data {p}", f"is {what}, which holds no label column", fix))
    if label_column is None:
        raise InputError(_fmt(f"--val-data {p}", "has no label column named", "pass --label-column NAME (1 = anomaly, 0 = normal)"))
    if fmt == "npz":
        with np.load(p, allow_pickle=False) as z:
            if label_column not in z.files:
                raise InputError(_fmt(f"--val-data {p}", f"has no array {label_column!r}", f"use one of {z.files} for --label-column"))
            y = z[label_column]
            others = [k for k in z.files if k != label_column]
        if key is None:
            if "X" not in others and len(others) != 1:
                raise InputError(_fmt(f"--val-data {p}", f"holds arrays {others} besides the labels", "name the rows' array with --key"))
            key = "X" if "X" in others else others[0]
        X = read_array(p, key=key)
    else:  # csv, parquet
        import pandas as pd
        from ganad.data.readers import csv_columns
        head = csv_columns(p, sep=sep, decimal=decimal)  # before reading the rows: a missing label column was blamed on --exclude
        if head is not None and label_column not in head:
            raise InputError(_fmt(f"--val-data {p}", f"has no column {label_column!r} (columns: {head[:12]})",
                                  "pass the name of the label column with --label-column"))
        X = read_array(p, exclude=[*exclude, label_column], sep=sep, decimal=decimal)
        try:
            if fmt == "parquet":
                y = pd.read_parquet(p, columns=[label_column])[label_column].to_numpy()
            else:
                y = pd.read_csv(p, usecols=[label_column], sep=sep or ("\t" if p.suffix.lower() == ".tsv" else ","))[label_column].to_numpy()
        except (KeyError, ValueError) as exc:
            raise InputError(_fmt(f"--val-data {p}", f"has no column {label_column!r}", "pass the name of the label column with --label-column")) from exc
    return X, check_labels(y, len(X), f"labels ({p} column {label_column})")
