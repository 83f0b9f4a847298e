"""The estimator contract shared by every detector.

scikit-learn's contract (constructor stores parameters unchanged, ``fit`` returns self,
learned state ends in ``_``, validation at the door) with PyOD's vocabulary:
``decision_function`` (higher = more anomalous), ``predict`` (0 = normal, 1 = anomaly),
``contamination``, ``threshold_``, ``decision_scores_``, ``labels_``.

A detector is a thin class: it builds its networks (``_build_networks``), contributes its
training stages to the one shared loop (``_stages``), maps a scaled batch to a latent code
and a reconstruction (``_invert``) and names its score components (``_components``). All the
rest (validation, scaling, seeding, batching, composition, threshold, save / load) lives here.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from torch import nn

from ganad.data.scaling import resolve_scaler
from ganad.data.validation import check_array
from ganad.exceptions import InputError, NotFittedError, _fmt
from ganad.nets import build_discriminator, build_encoder, build_generator, default_depth, default_width, resolve_family
from ganad import runtime
from ganad.nets.inference import frozen_copy
from ganad.scoring import components as C
from ganad.scoring.composition import WeightedSum
from ganad.scoring.threshold import check_contamination, contamination_threshold
from ganad.training.loop import Stage, resolve_device, train
from ganad.training.objectives import check_objective
from ganad.training.priors import make_prior

#: parameters every detector shares, with the same names and meanings everywhere
COMMON_PARAMS = """
    contamination : float, default 0.1
        Expected fraction of anomalies; sets ``threshold_`` as that quantile of the training scores.
    latent_dim : int, default 16
        Dimension of the latent code z.
    net : {'auto', 'mlp', 'conv1d', 'lstm', 'dcgan'}, default 'auto'
        Network family; 'auto' picks mlp for (n, d), conv1d for (n, c, l), dcgan for (n, c, h, w).
    width, depth : int or None
        Width (units / channels of the first stage) and depth (layers / stages); None = family default.
    epochs : int
        Training length (the last stage's best epoch is kept, see ``validation_fraction``).
    batch_size : int or 'auto', default 'auto'
        Mini-batch size; 'auto' = n/32 rounded down to a power of two, between 32 and 256 (large
        data sets get large batches, which is where training throughput comes from on a CPU; small
        ones keep enough optimisation steps per epoch).
    validation_fraction : float, default 0.1
        Fraction of the (normal) training data held out, never trained on. It chooses, label-free,
        the epoch whose weights are kept (lowest held-out reconstruction residual, see
        :mod:`ganad.training.selection`), sets ``threshold_`` from scores of samples the model has
        not seen, and standardises the members of an ensemble. 0 = train on everything, keep the last epoch, threshold from training scores.
    ema : float or None, default 0.999
        Decay of the exponential moving average of the weights used for selection and scoring
        (None = the raw weights).
    patience : int or None, default None
        Stop once the held-out criterion has not improved for this many epochs (None = run all epochs).
    n_members : int, default 1
        Ensemble size (Han et al., AAAI 2021): k members trained with different seeds; the score is
        the mean of their scores, each standardised by its median / MAD on the held-out data.
    n_neighbors : int, default 5
        k of the ``knn`` score component: the mean distance of a sample's latent code E(x) (for
        AnoGAN: of its discriminator features f(x)) to its k nearest training codes, kept in the
        model file (a bank of at most 4,096 training samples).
    knn_weight : float in [0, 1], default 0.75
        Weight w of the ``knn`` component in the default score: (1 − w)·z(method's own score) +
        w·z(knn), each standardised by median / MAD on the held-out slice
        (:class:`ganad.scoring.composition.KnnBlend`). 0 = the method's own score alone. Chosen on
        held-out MIT-BIH DS1 records (benchmarks/RESULTS.md).
    objective : {'bce', 'wgan-gp', 'hinge'}
        Adversarial objective; ``n_critic`` discriminator steps per generator step, ``gp_weight`` for WGAN-GP.
    spectral_norm : bool
        Spectral normalisation on the discriminator.
    prior : {'normal', 'uniform', 'truncated_normal'} or dict
        Latent prior p(z).
    lr_g, lr_d, betas : Adam learning rates of generator (and encoder) and discriminator, and Adam's betas.
    scaler : {'auto', 'per-feature', 'standard', 'minmax', 'none'} or dict
        Scaling fitted on training data; 'auto' = minmax to [-1, 1] for images, 'per-feature' for vectors and
        series (per feature / channel: constant ones centred, few-valued ones mapped by their range to [-1, 1],
        continuous ones standardised; values clipped to the training range widened by ``clip`` = 1 range each
        side). A dict such as ``{"kind": "per-feature", "clip": 3.0, "max_levels": 10}`` sets the options; see
        docs/scaling.md.
    feature_layer : int
        Discriminator block used for feature matching (negative counts from the last).
    score_batch_size : int
        Samples per batch when scoring.
    device : 'auto', 'cpu', 'cuda', ...
    random_state : int or None
        Seed of weights, training order and latent-search starts; the same seed gives the same scores on CPU.
    verbose : bool
        Show a progress bar with the losses during training.
"""


def _real(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _check_common(det) -> None:
    """Parameters every detector shares whose bad values used to crash or pass silently."""
    p = det.get_params(deep=False)
    if "betas" in p:
        b = p["betas"]
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and all(_real(x) and 0 <= x < 1 for x in b)):
            raise InputError(_fmt("betas", f"is {b!r}", "pass Adam's two betas in [0, 1), such as (0.5, 0.999)"))
    if "gp_weight" in p and not (_real(p["gp_weight"]) and p["gp_weight"] >= 0):
        raise InputError(_fmt("gp_weight", f"is {p['gp_weight']!r}", "pass a non-negative gradient-penalty weight such as 10.0"))
    fl = p.get("feature_layer", -1)
    if not isinstance(fl, (int, np.integer)) or isinstance(fl, bool):
        raise InputError(_fmt("feature_layer", f"is {fl!r}", "pass a block index such as -1 (the last block)"))
    rs = p.get("random_state")
    if not (rs is None or isinstance(rs, np.random.RandomState)
            or (isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and 0 <= rs < 2**32)):
        raise InputError(_fmt("random_state", f"is {rs!r}", "pass None, a seed between 0 and 2**32 - 1 (CLI: --seed 0), or a numpy RandomState"))
    dev = p.get("device", "auto")
    if dev not in (None, "auto"):
        try:
            torch.device(dev)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise InputError(_fmt("device", f"is {dev!r}, which is not a device ({exc})".replace("\n", " "),
                                  "use 'auto', 'cpu', 'cuda' or 'cuda:0'")) from exc


def feature_names(X):
    """Column names of a DataFrame whose columns are all strings (scikit-learn's rule), else None."""
    cols = getattr(X, "columns", None)
    if cols is None or not hasattr(X, "dtypes") or not all(isinstance(c, str) for c in cols):
        return None
    return np.asarray(list(cols), dtype=object)


@dataclass
class ScoreResult:
    """Everything a detector computes for a batch of samples (unscaled, NumPy)."""

    scores: np.ndarray
    components: dict[str, np.ndarray]
    map: np.ndarray | None = None  # per-element anomaly map, same shape as X
    reconstruction: np.ndarray | None = None  # x̂ in the input's units
    z: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


class BaseGANDetector(BaseEstimator):
    """Shared machinery; see the concrete detectors for the methods."""

    #: networks the method trains (keys of ``nets_``)
    _networks: tuple[str, ...] = ("G", "D")
    #: context for scoring; latent search needs autograd, so it uses no_grad + a local enable_grad
    _score_context = staticmethod(torch.inference_mode)

    # ------------------------------------------------------------------ hooks
    def _build_networks(self) -> dict[str, nn.Module]:
        fam, shape, d = self.family_, self.data_shape_, self.latent_dim
        w, k = self._width(), self._depth()
        nets = {"G": build_generator(fam, d, shape, w, k, self._out_act()),
                "D": build_discriminator(fam, shape, w, k, self.spectral_norm, self.feature_layer)}
        if "E" in self._networks:
            nets["E"] = build_encoder(fam, shape, d, w, k)
        return nets

    def _stages(self, generator: torch.Generator) -> list[Stage]:
        raise NotImplementedError

    def _invert(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scaled batch -> {'z': codes, 'x_hat': reconstruction, ...extras (n,)}."""
        raise NotImplementedError

    def _components(self, x: torch.Tensor, inv: dict[str, torch.Tensor]) -> dict:
        """The generic components every G/D method has; methods may add their own.

        A value is a tensor (n,) or a function of no arguments that computes it, called only
        where the component is asked for (:meth:`decision_function` asks for the composer's
        components only, so a discriminator pass that no used component needs never runs)."""
        x_hat = inv["x_hat"]
        comps = {
            "residual": lambda: C.residual(x, x_hat, 1),
            "feature": lambda: C.feature_matching(self._d_out(inv, "x", x)[1], self._d_out(inv, "x_hat", x_hat)[1]),
            "discriminator": lambda: C.discriminator_ce(self._d_out(inv, "x_hat", x_hat)[0]),
            "latent_norm": lambda: C.latent_norm_deviation(inv["z"], self.prior_.norm_mode(self.latent_dim)),
        }
        if self.__dict__.get("disc_train_mean_") is not None:
            comps["disc_normalised"] = lambda: self._disc_normalised(self._d_out(inv, "x", x)[0])["disc_normalised"]
        return comps

    def _all_components(self, x: torch.Tensor, inv: dict) -> dict:
        """The method's components plus ``knn`` where a bank of training codes was kept."""
        comps = self._components(x, inv)
        if self.__dict__.get("knn_bank_") is not None:
            comps["knn"] = lambda: self._knn_distance(self._knn_embed(x, inv))
        return comps

    def _default_composer(self):
        return WeightedSum({"residual": 1.0})

    def _d_out(self, inv: dict, key: str, x: torch.Tensor):
        """D(x) -> (logit, features), computed once per batch and shared by every component."""
        memo = inv.setdefault("_memo", {})
        if key not in memo:
            D = self._inference_net("D")
            x_hat = inv.get("x_hat")
            if key == "x" and "x_hat" not in memo and x_hat is not None and x_hat.shape == x.shape:
                # D of x and of x̂ in one pass (the runtime's fused pass: half the per-call work)
                memo["x"], memo["x_hat"] = runtime.discriminate_pair(D, x, x_hat, inv.get("_runtime"))
            else:
                memo[key] = D(x)
        return memo[key]

    # ------------------------------------------------------------------ helpers
    def _width(self):
        return self.width if self.width is not None else default_width(self.family_)

    def _depth(self):
        return self.depth if self.depth is not None else default_depth(self.family_, self.data_shape_)

    def _make_scaler(self):
        return resolve_scaler(self.scaler, image=len(self.data_shape_) == 3)

    def _scaler_kind(self):
        return self._make_scaler().kind

    def _out_act(self):
        return "tanh" if self._scaler_kind() == "minmax" else "linear"

    def _batch_size(self, n: int) -> int:
        if isinstance(self.batch_size, str):
            return int(min(256, max(32, 2 ** int(math.floor(math.log2(max(n, 1) / 32))) if n >= 64 else 32)))
        return int(self.batch_size)

    def _check_params(self):
        check_contamination(self.contamination)
        check_objective(self.objective)
        if isinstance(self.batch_size, str) and self.batch_size != "auto":
            raise InputError(_fmt("batch_size", f"is {self.batch_size!r}", "pass a positive integer or 'auto'"))
        vf = self.validation_fraction
        if not (isinstance(vf, (int, float)) and not isinstance(vf, bool) and 0 <= vf < 0.5):
            raise InputError(_fmt("validation_fraction", f"is {vf!r}", "pass a fraction in [0, 0.5), e.g. 0.1 (0 = no held-out data)"))
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0 < self.ema < 1):
            raise InputError(_fmt("ema", f"is {self.ema!r}", "pass a decay in (0, 1) such as 0.999, or None"))
        if self.patience is not None and not (isinstance(self.patience, (int, np.integer)) and self.patience >= 1):
            raise InputError(_fmt("patience", f"is {self.patience!r}", "pass a positive number of epochs, or None"))
        kw = self.knn_weight
        if not (isinstance(kw, (int, float)) and not isinstance(kw, bool) and 0 <= kw <= 1):
            raise InputError(_fmt("knn_weight", f"is {kw!r}", "pass a weight in [0, 1] (0 = the method's own score)"))
        for name in ("n_members", "n_neighbors"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise InputError(_fmt(name, f"is {v!r}", f"pass a positive integer for {name}"))
        for name in ("latent_dim", "epochs", "n_critic", "score_batch_size") + (() if isinstance(self.batch_size, str) else ("batch_size",)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                why = " (0 epochs would train nothing)" if name == "epochs" else ""
                raise InputError(_fmt(name, f"is {v!r}{why}", f"pass a positive integer for {name}"))
        for name in ("width", "depth"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1):
                raise InputError(_fmt(name, f"is {v!r}", f"pass a positive integer for {name}, or None for the family's default"))
        _check_common(self)
        if not isinstance(self.batch_size, str) and self.batch_size < 2:
            raise InputError(_fmt("batch_size", f"is {self.batch_size}: a batch of one sample cannot train the networks' "
                                  "BatchNorm layers, so no step would run", "pass batch_size >= 2, or 'auto' (the default)"))
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise InputError(_fmt(name, f"is {v!r}", "pass a positive learning rate such as 2e-4"))
        try:
            resolve_scaler(self.scaler, image=False)
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from exc

    def _inference_net(self, name: str) -> runtime.Runner:
        """The runner (:func:`ganad.runtime.compile`) of a frozen, BatchNorm-folded copy of a trained
        network, made once after fit / load; ``.module`` is the copy."""
        cache = self.__dict__.setdefault("_frozen", {})
        if name not in cache:
            cache[name] = runtime.compile(frozen_copy(self.nets_[name]).to(self.device_))
        return cache[name]

    def _score_chunk(self, bs: int) -> int:
        """Samples per scoring step (``score_batch_size``; encoder methods may take less)."""
        return bs

    def _check_fitted(self):
        if not hasattr(self, "nets_") and "members_" not in self.__dict__:
            raise NotFittedError(f"{type(self).__name__}: this detector is not fitted yet. Fix: call fit(X) first, or load a saved model with ganad.load(path)")

    def _validate_for_scoring(self, X, name="X") -> np.ndarray:
        self._check_fitted()
        v = self.score_batch_size
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise InputError(_fmt("score_batch_size", f"is {v!r}", "pass a positive integer, such as 1024"))
        import scipy.sparse as sp
        if sp.issparse(X):
            raise InputError(_fmt(name, "is a sparse matrix; sparse input is not supported", "convert it with X.toarray()"))
        self._check_feature_names(feature_names(X), name)
        X = check_array(X, name)
        if X.shape[1:] != tuple(self.data_shape_):
            if X.ndim == 2 and len(self.data_shape_) == 1:
                raise InputError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.data_shape_[0]} features as input. "
                                 f"Fix: pass the same columns, in the same order, as at fit time")
            raise InputError(_fmt(name, f"has samples of shape {X.shape[1:]}, but the detector was fitted on samples of shape {tuple(self.data_shape_)}",
                                  "pass data with the same channels / length / image size as at fit time"))
        return X

    def _check_feature_names(self, names, name="X") -> None:
        """Columns given by name (DataFrame, CSV header) must be the training columns, in order."""
        fitted = self.__dict__.get("feature_names_in_")
        if names is None or fitted is None:
            return
        names, fitted = [str(c) for c in names], [str(c) for c in fitted]
        if names == fitted:
            return
        unseen = [c for c in names if c not in fitted]
        missing = [c for c in fitted if c not in names]
        if unseen or missing:
            problem = " and ".join(([f"has column(s) {unseen[:5]} not seen at fit time"] if unseen else [])
                                   + ([f"lacks training column(s) {missing[:5]}"] if missing else []))
        else:
            problem = f"has the training columns in another order ({names[:6]} ... instead of {fitted[:6]} ...)"
        raise InputError(_fmt(name, problem, f"pass exactly the training columns, in the training order: {fitted[:10]}"
                              f"{' ...' if len(fitted) > 10 else ''} (for a DataFrame: X[detector.feature_names_in_])"))

    # ------------------------------------------------------------------ API
    def fit(self, X, y=None, *, robust_contamination=None, robust_warmup=None, robust_mode="hard", robust_proxy=None):
        """Train on (mostly) normal data ``X``; ``y`` is ignored (unsupervised).

        Robust training (training data contaminated with anomalies): with
        ``robust_contamination=c``, after ``robust_warmup`` plain epochs (default
        ``max(1, epochs // 3)``) every epoch down-weights the fraction ``c`` of training samples
        the current model scores as most anomalous (``robust_mode`` 'hard': weight 0, 'soft':
        a sigmoid weight), ranked by the cheap proxy score ``robust_proxy`` (None = the method's
        ``_robust_proxy_kind``); see :mod:`ganad.training.robust`. The final weights end in
        ``robust_weights_``, the per-epoch excluded fraction in ``history_``.
        """
        import scipy.sparse as sp
        if sp.issparse(X):
            raise InputError(_fmt("X", "is a sparse matrix; sparse input is not supported", "convert it with X.toarray()"))
        names = feature_names(X)
        X = check_array(X, "X", min_samples=2)
        self._check_params()
        self._set_robust(robust_contamination, robust_warmup, robust_mode, robust_proxy)
        for attr in ("_frozen", "members_", "_decision_scores", "_train_ref", "knn_bank_", "selection_"):
            self.__dict__.pop(attr, None)
        self.data_shape_ = tuple(int(s) for s in X.shape[1:])
        self.n_features_in_ = int(np.prod(self.data_shape_))
        self.__dict__.pop("feature_names_in_", None)
        if names is not None and X.ndim == 2:
            self.feature_names_in_ = names
        try:
            self.family_ = resolve_family(self.net, self.data_shape_)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        self.device_ = resolve_device(self.device)
        self.seed_ = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        self.prior_ = make_prior(self.prior)
        if int(self.n_members) > 1:
            return self._fit_ensemble(X)
        self.scaler_ = self._make_scaler().fit(X)
        Xt = torch.from_numpy(self.scaler_.transform(X))
        train_idx, val_idx = self._holdout(X.shape[0])
        self.validation_index_ = val_idx
        Xtr = Xt[torch.from_numpy(train_idx)] if len(val_idx) else Xt
        Xval = Xt[torch.from_numpy(val_idx)] if len(val_idx) else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            self.nets_ = nn.ModuleDict(self._build_networks()).to(self.device_)
            gen = torch.Generator().manual_seed(self.seed_)
            from ganad.training.selection import Selector
            criterion = (lambda: self._selection_criterion(Xval)) if Xval is not None else None
            selector = Selector(self.nets_, criterion, ema=self.ema, patience=self.patience)
            t0 = time.perf_counter()
            self.history_ = train(self._stages(gen), Xtr, batch_size=self._batch_size(Xtr.shape[0]), generator=gen,
                                  device=self.device_, verbose=self.verbose, weight_fn=self._weight_fn(Xtr),
                                  selector=selector)
            self.selection_ = selector.info
            train_s = time.perf_counter() - t0
        self.nets_.eval()
        self._fit_extra(Xval if Xval is not None else Xtr)
        self._finish_robust()
        self.disc_train_mean_ = self._fit_disc_train_mean(Xtr)
        self.knn_bank_ = self._fit_knn_bank(Xtr)
        self.calibration_ = {"compose": "fit", "composer": "method default", "threshold": "contamination",
                             "contamination": float(self.contamination),
                             "data": "held-out training slice" if Xval is not None else "training"}
        self.composer_ = self._default_composer()
        t1 = time.perf_counter()
        val_res = self._blend_knn(X, val_idx)
        self.default_composer_ = self.composer_  # what calibrate(compose='weights') keeps when given no weights
        self._set_threshold_and_training_scores(X, val_idx, val_res)
        self.timing_ = {"train_s": train_s, "n_train": int(Xtr.shape[0]), "batch_size": self._batch_size(Xtr.shape[0]),
                        "epochs_run": {k.split("/")[0]: len(v) for k, v in self.history_.items() if "/" in k and not k.startswith("select/")},
                        "score_s": time.perf_counter() - t1}
        return self

    # ------------------------------------------------------------------ issue 15: held-out slice, kNN bank, ensembles
    def _holdout(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Seeded split of the training rows into (trained on, held out); no hold-out where it
        would leave fewer than 16 held-out or 16 training samples. The members of an ensemble
        share their ensemble's split."""
        n_val = int(round(float(self.validation_fraction) * n))
        if n_val < 16 or n - n_val < 16:
            return np.arange(n), np.arange(0)
        perm = np.random.RandomState(self.__dict__.get("_split_seed", self.seed_) % (2**32 - 1)).permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _fit_ensemble(self, X) -> "BaseGANDetector":
        """``n_members`` members, each this detector with its own seed, trained on the same split;
        each member's score is standardised by its median / MAD on the held-out slice (or on the
        training data without one) and the ensemble's score is their mean (Han et al., AAAI 2021)."""
        from sklearn.base import clone
        from ganad.scoring.composition import robust_location_scale
        k = int(self.n_members)
        seeds = np.random.RandomState(self.seed_ % (2**32 - 1)).randint(0, 2**31 - 1, size=k)
        members = []
        for i in range(k):
            m = clone(self).set_params(n_members=1, random_state=int(seeds[i]))
            m._split_seed = self.seed_
            members.append(m.fit(X))
        self.members_ = members
        m0 = members[0]
        self.scaler_, self.validation_index_ = m0.scaler_, m0.validation_index_
        val_idx = m0.validation_index_
        ref = [m.validation_scores_ if len(val_idx) else m.decision_scores_ for m in members]
        loc, scale = robust_location_scale(np.stack(ref, axis=1))
        self.member_stats_ = [[float(a), float(b)] for a, b in zip(loc, scale)]
        self.history_ = {f"member{i}/{key}": v for i, m in enumerate(members) for key, v in m.history_.items()}
        self.selection_ = {f"member{i}": m.selection_ for i, m in enumerate(members)}
        self.calibration_ = {"compose": "fit", "composer": "ensemble mean of standardised member scores",
                             "threshold": "contamination", "contamination": float(self.contamination),
                             "data": "held-out training slice" if len(val_idx) else "training"}
        self.composer_ = self.default_composer_ = WeightedSum({f"member{i}": 1.0 for i in range(k)})
        self._set_threshold_and_training_scores(X, val_idx)
        return self

    def _score_ensemble(self, X, needed, return_map, return_reconstruction) -> ScoreResult:
        from ganad.scoring.composition import required_components
        comps, maps, recons = {}, [], []
        res0 = None
        for i, (m, (loc, scale)) in enumerate(zip(self.members_, self.member_stats_)):
            m.on_nonfinite = self.on_nonfinite
            name = f"member{i}"
            if needed is not None and name not in needed and not (return_map or return_reconstruction):
                continue
            r = m._score(X, required_components(m.composer_), return_map, return_reconstruction)
            res0 = res0 or r
            comps[name] = (r.scores - loc) / scale
            if return_map:
                maps.append(r.map)
            if return_reconstruction:
                recons.append(r.reconstruction)
        scores = self._guard_scores(np.asarray(self.composer_(comps), dtype=np.float64))
        return ScoreResult(scores=scores, components=comps, map=np.mean(maps, axis=0) if return_map else None,
                           reconstruction=np.mean(recons, axis=0) if return_reconstruction else None,
                           z=res0.z if res0 is not None else None)

    #: where the ``knn`` component measures distances: 'code' = the encoder's E(x), 'feature' = D's features f(x)
    _knn_space = "code"
    _knn_bank_max = 4096

    def _knn_embed(self, x: torch.Tensor, inv: dict | None = None) -> torch.Tensor:
        """The representation the ``knn`` component compares (scaled batch -> (n, k))."""
        if self._knn_space == "code":
            if inv is not None and not self._search_scoring():
                return inv["z"]
            return self._encode(x)
        if inv is not None:
            return self._d_out(inv, "x", x)[1]
        return self._inference_net("D")(x)[1]

    def _fit_knn_bank(self, Xtr: torch.Tensor):
        if self._knn_space == "code" and "E" not in self._networks:
            return None
        n = Xtr.shape[0]
        idx = torch.from_numpy(np.sort(np.random.RandomState(self.seed_ % (2**32 - 1) + 7).permutation(n)[:self._knn_bank_max]))
        self._knn_bank_index = idx.numpy()
        X = Xtr[idx]
        bs = int(self.score_batch_size)
        out = []
        with torch.inference_mode():
            for i in range(0, X.shape[0], bs):
                out.append(self._knn_embed(X[i:i + bs].to(self.device_)).float().cpu())
        return torch.cat(out)

    def _knn_distance(self, emb: torch.Tensor) -> torch.Tensor:
        bank = self.knn_bank_.to(emb.device, torch.float64)  # float64: d² = |e|² + |b|² − 2 e·b cancels
        loo = int(bool(self.__dict__.get("_knn_leave_one_out")))  # scoring the bank's own samples: skip the nearest (itself)
        k = min(int(self.n_neighbors) + loo, bank.shape[0])
        e = emb.reshape(emb.shape[0], -1).to(torch.float64)
        # squared distances as one matrix multiply (exportable to ONNX, unlike cdist)
        d2 = (e * e).sum(1, keepdim=True) + (bank * bank).sum(1)[None, :] - 2.0 * e @ bank.T
        return d2.clamp_min(0.0).topk(k, dim=1, largest=False).values[:, loo:].sqrt().mean(1)

    def _selection_criterion(self, Xval: torch.Tensor) -> float:
        """Label-free criterion on held-out normal data, lower = better: the mean L1 reconstruction
        residual |x − G(E(x))| for methods with an encoder (how well the model explains normal data
        it was not trained on: what every residual-based score presumes); for AnoGAN, whose
        inversion is a costly search, the mean squared distance of each held-out sample to the
        nearest of 512 fixed generated samples G(z) (a one-step search over a fixed code book)."""
        kind = "encoder" if "E" in self._networks else "generated"
        return float(self._proxy(Xval, kind).double().mean())

    #: methods whose scoring runs the latent search compute ``decision_scores_`` on first access
    def _search_scoring(self) -> bool:
        return getattr(self, "inversion", "search") == "search"

    #: latent-search methods set ``threshold_`` from the scores of at most this many training samples
    _threshold_sample = 2048

    def _blend_knn(self, X, val_idx):
        """With ``knn_weight`` > 0: the default score becomes the method's own blended with the
        ``knn`` component (:class:`KnnBlend`), standardised on the held-out slice, or on the
        training data with each sample's own bank entry left out where there is no slice.
        Returns the held-out ScoreResult under the final composer (None without a slice)."""
        from ganad.scoring.composition import KnnBlend
        w = float(self.knn_weight)
        if w <= 0 or self.__dict__.get("knn_bank_") is None:
            return None if not len(val_idx) else self.score_components(X[val_idx])
        ref = X[val_idx] if len(val_idx) else X[self._knn_bank_index]  # no slice: the bank's own rows, leave-one-out
        self._knn_leave_one_out = not len(val_idx)
        try:
            res = self.score_components(ref)
        finally:
            self._knn_leave_one_out = False
        self.composer_ = KnnBlend.fit(self.composer_, res.components, w)
        self.calibration_["composer"] = f"method default blended with knn (weight {w})"
        if not len(val_idx):
            return None
        res.scores = np.asarray(self.composer_(res.components), dtype=np.float64)
        return res

    def _set_threshold_and_training_scores(self, X, val_idx, val_res=None):
        """``threshold_`` = the (1 − contamination) quantile of the training scores (PyOD's meaning
        of ``contamination``). Latent-search methods estimate it from a seeded random sample of at
        most 2,048 training rows instead of searching every one, and compute ``decision_scores_``
        on first access. The held-out slice's scores are kept in ``validation_scores_``."""
        if len(val_idx):
            self.validation_scores_ = (val_res if val_res is not None else self.score_components(X[val_idx])).scores
        if self._search_scoring():
            self._train_ref = X  # decision_scores_ on first access: the search is per sample and costly
            n = X.shape[0]
            if n > self._threshold_sample:
                idx = np.sort(np.random.RandomState(self.seed_ % (2**32 - 1) + 11).permutation(n)[:self._threshold_sample])
                sample = self.score_components(X[idx]).scores
            else:
                sample = self.decision_scores_
            self.threshold_ = contamination_threshold(sample, self.contamination)
            return
        res = self.score_components(X)
        self._train_components = res.components  # in memory only: lets calibrate() rescore the training set
        self._decision_scores = res.scores
        self.threshold_ = contamination_threshold(res.scores, self.contamination)

    @property
    def decision_scores_(self) -> np.ndarray:
        """Scores of the training data (PyOD). For latent-search methods computed on first access."""
        d = self.__dict__
        if "_decision_scores" not in d:
            X = d.get("_train_ref")
            if X is None:
                raise AttributeError("decision_scores_")
            res = self.score_components(X)
            d["_train_components"] = res.components
            d["_decision_scores"] = res.scores
            d.pop("_train_ref", None)
        return d["_decision_scores"]

    @decision_scores_.setter
    def decision_scores_(self, value):
        self.__dict__["_decision_scores"] = np.asarray(value, dtype=np.float64)
        self.__dict__.pop("_train_ref", None)

    @property
    def labels_(self) -> np.ndarray:
        """0/1 labels of the training data: ``decision_scores_ > threshold_`` (always in step with both)."""
        return (self.decision_scores_ > self.threshold_).astype(np.int64)

    def _fit_extra(self, Xt: torch.Tensor) -> None:
        """Runs after training, before the training data is scored: where a method fits
        statistics of the TRAINING data its score needs (e.g. GANomaly's normalisation)."""

    def _weight_fn(self, Xt):
        cfg = self.__dict__.get("_robust_cfg")
        if cfg is None:
            return None
        from ganad.training.robust import RobustWeighter
        self._robust_weighter = RobustWeighter(lambda stage: self._robust_proxy(Xt, stage), Xt.shape[0], *cfg)
        return self._robust_weighter

    def _extra_state(self) -> dict:
        """Fitted numbers to store in the model's JSON. Subclasses that add their own must
        merge ``super()._extra_state()`` (calibration record, training D mean, robust settings)."""
        return {"calibration": self.__dict__.get("calibration_"), "disc_train_mean": self.__dict__.get("disc_train_mean_"),
                "robust": self.__dict__.get("robust_")}

    def _load_extra_state(self, state: dict) -> None:
        """Restore :meth:`_extra_state`; subclasses must call ``super()._load_extra_state(state)``."""
        for key, attr in (("calibration", "calibration_"), ("disc_train_mean", "disc_train_mean_"), ("robust", "robust_")):
            if state.get(key) is not None:
                setattr(self, attr, state[key])

    # ------------------------------------------------------------------ issue 4: robust training, D normalisation
    #: proxy score of robust training: 'generated' = mean squared distance of x to the nearest of 512
    #: samples G(z) (a latent search with the search replaced by picking the best of 512 fixed codes);
    #: 'encoder' = mean |x - G(E(x))| (methods whose encoder trains jointly with G); 'discriminator' =
    #: -log σ(D(x)) on the real sample (cheapest, but a discriminator often finds far-away real
    #: outliers *more* real, since no fake ever lands there: not recommended)
    _robust_proxy_kind = "generated"
    _robust_proxy_kinds = ("generated", "encoder", "discriminator")

    def _set_robust(self, contamination, warmup, mode, proxy=None):
        self.__dict__.pop("_robust_cfg", None)
        for attr in ("robust_", "robust_weights_", "_robust_weighter"):
            self.__dict__.pop(attr, None)
        if contamination is None:
            return
        from ganad.training.robust import check_robust
        warmup = max(1, int(self.epochs) // 3) if warmup is None else warmup
        self._robust_cfg = check_robust(contamination, warmup, mode)
        proxy = self._robust_proxy_kind if proxy is None else proxy
        if proxy not in self._robust_proxy_kinds or (proxy == "encoder" and "E" not in self._networks):
            raise InputError(_fmt("robust_proxy", f"is {proxy!r}", f"use one of {[k for k in self._robust_proxy_kinds if k != 'encoder' or 'E' in self._networks]}"))
        self._robust_proxy_used = proxy

    def _robust_proxy(self, Xt: torch.Tensor, stage: str) -> torch.Tensor:
        """Cheap anomaly score of every training sample under the networks being trained."""
        return self._proxy(Xt, self.__dict__.get("_robust_proxy_used", self._robust_proxy_kind))

    def _train_code(self, x: torch.Tensor) -> torch.Tensor:
        """The code of a batch under the encoder being trained (VAEGAN: the posterior mean)."""
        return self.nets_["E"](x)

    def _proxy(self, Xt: torch.Tensor, kind: str) -> torch.Tensor:
        """Per-sample proxy score under the networks being trained (see ``_robust_proxy_kind``)."""
        from ganad.training.robust import batched_proxy
        if kind == "encoder":
            G, E = self.nets_["G"], self.nets_["E"]
            return batched_proxy(lambda x: C.residual(x, G(self._train_code(x)), 1), Xt, [G, E], self.device_,
                                 int(self.score_batch_size))
        if kind == "generated":
            G = self.nets_["G"]
            z = self.prior_.sample(512, self.latent_dim, generator=torch.Generator().manual_seed(self.seed_ + 1))
            fake = batched_proxy(lambda zb: G(zb), z, [G], self.device_, int(self.score_batch_size), flatten=False)
            fake = fake.reshape(fake.shape[0], -1).to(self.device_)
            return batched_proxy(lambda x: torch.cdist(x.flatten(1), fake).min(1).values.pow(2) / fake.shape[1], Xt, [G],
                                 self.device_, int(self.score_batch_size))
        D = self.nets_["D"]
        return batched_proxy(lambda x: torch.nn.functional.softplus(-D(x)[0].reshape(-1)), Xt, [D], self.device_,
                             int(self.score_batch_size))

    def _finish_robust(self):
        w = self.__dict__.pop("_robust_weighter", None)
        cfg = self.__dict__.pop("_robust_cfg", None)
        if w is None or cfg is None:
            return
        self.history_.update(w.log)
        n = w.n
        trained = w.weights.numpy().astype(np.float64) if w.weights is not None else np.ones(n)
        val = self.__dict__.get("validation_index_")
        if val is not None and len(val):  # one weight per row of X; NaN for the held-out rows (never trained on)
            full = np.full(n + len(val), np.nan)
            full[np.setdiff1d(np.arange(n + len(val)), val)] = trained
            trained = full
        self.robust_weights_ = trained
        self.robust_ = {"contamination": cfg[0], "warmup": cfg[1], "mode": cfg[2], "proxy": self.__dict__.pop("_robust_proxy_used"),
                        "final_excluded_fraction": float(np.mean(self.robust_weights_[~np.isnan(self.robust_weights_)] < 0.5))}

    def _fit_disc_train_mean(self, Xt: torch.Tensor):
        """Mean of -log σ(D(x)) over the training data, the reference of 'disc_normalised'
        (None for methods whose discriminator does not take x alone)."""
        if "D" not in self.nets_:
            return None
        from ganad.training.robust import batched_proxy
        D = self._inference_net("D")
        try:
            v = batched_proxy(lambda x: torch.nn.functional.softplus(-D(x)[0].reshape(-1)), Xt, [D.module], self.device_,
                              int(self.score_batch_size))
        except (TypeError, ValueError):  # D(x, z) of BiGAN-style methods
            return None
        m = float(v.double().mean())
        return m if math.isfinite(m) and m > 0 else None

    def _disc_normalised(self, logit_x: torch.Tensor) -> dict[str, torch.Tensor]:
        """'disc_normalised': -log σ(D(x)) / its training mean (1 = as typical as training data)."""
        m = self.__dict__.get("disc_train_mean_")
        return {} if m is None else {"disc_normalised": torch.nn.functional.softplus(-logit_x.reshape(-1)) / m}

    def calibrate(self, X_val, y_val=None, *, compose="default", threshold="contamination", weights=None,
                  metric="auroc", beta=1.0, fpr=0.05):
        """Fit the composition and the threshold on validation data (labels optional); returns self.

        See :func:`ganad.scoring.calibration.calibrate`. Scoring afterwards applies the stored
        composer and ``threshold_`` and never refits; both and ``calibration_`` are saved by :meth:`save`.
        """
        from ganad.scoring.calibration import calibrate
        X_val = self._validate_for_scoring(X_val, "X_val")
        return calibrate(self, X_val, y_val, compose=compose, threshold=threshold, weights=weights, metric=metric,
                         beta=beta, fpr=fpr)

    def score_components(self, X, *, return_map: bool = False, return_reconstruction: bool = False) -> ScoreResult:
        """Score ``X`` and return the score, each component, and optionally the anomaly map and x̂."""
        return self._score(X, None, return_map, return_reconstruction)

    def _score(self, X, needed, return_map=False, return_reconstruction=False) -> ScoreResult:
        """score_components, computing only the components in ``needed`` (None: all of them)."""
        X = self._validate_for_scoring(X)
        if "members_" in self.__dict__:
            return self._score_ensemble(X, needed, return_map, return_reconstruction)
        comps: dict[str, list[np.ndarray]] = {}
        extras: dict[str, list[np.ndarray]] = {}
        maps, recons, zs = [], [], []
        Xs = self.scaler_.transform(X)
        bs = self._score_chunk(int(self.score_batch_size))
        with self._score_context():
            for start in range(0, len(Xs), bs):
                x = torch.from_numpy(Xs[start:start + bs]).to(self.device_)
                inv = self._invert(x)
                for k, v in self._all_components(x, inv).items():
                    if needed is None or k in needed:
                        comps.setdefault(k, []).append((v() if callable(v) else v).detach().cpu().numpy())
                for k, v in inv.items():
                    if k not in ("z", "x_hat") and not k.startswith("_"):
                        extras.setdefault(k, []).append(v.detach().cpu().numpy())
                zs.append(inv["z"].detach().cpu().numpy())
                if return_map:
                    maps.append(C.residual_map(x, inv["x_hat"], 1).cpu().numpy())
                if return_reconstruction:
                    recons.append(inv["x_hat"].detach().cpu().numpy())
        components = {k: np.concatenate(v).astype(np.float64) for k, v in comps.items()}
        scores = self._guard_scores(np.asarray(self.composer_(components), dtype=np.float64))
        return ScoreResult(
            scores=scores, components=components,
            map=np.concatenate(maps) if return_map else None,
            reconstruction=self.scaler_.inverse_transform(np.concatenate(recons)) if return_reconstruction else None,
            z=np.concatenate(zs), extra={k: np.concatenate(v) for k, v in extras.items()},
        )

    #: what a non-finite score (NaN / inf: values the float32 networks overflow on) becomes:
    #: 'raise' (default) an InputError naming the rows; 'max' the most anomalous score (+inf, label 1).
    #: Never a silent NaN, which compares as "normal". Set it on the instance: ``det.on_nonfinite = "max"``.
    on_nonfinite = "raise"

    def _guard_scores(self, scores: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(scores)
        if not bad.any():
            return scores
        rows = np.flatnonzero(bad)
        if self.on_nonfinite == "max":
            scores = scores.copy()
            scores[rows] = np.inf
            return scores
        if self.on_nonfinite != "raise":
            raise InputError(_fmt("on_nonfinite", f"is {self.on_nonfinite!r}", "use 'raise' or 'max'"))
        raise InputError(_fmt("X", f"row(s) {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} ({len(rows)} of {len(scores)}) "
                                   "get a non-finite anomaly score (NaN / inf): their values overflow the float32 networks",
                              "check these rows for extreme values and rescale or drop them, or set detector.on_nonfinite = 'max' "
                              "(CLI: ganad score --nonfinite max) to score them as the most anomalous"))

    def decision_function(self, X) -> np.ndarray:
        """Anomaly score per sample: higher = more anomalous (computes only the components the
        composer reads)."""
        from ganad.scoring.composition import required_components
        self._check_fitted()
        return self._score(X, required_components(self.composer_)).scores

    def score_samples(self, X) -> np.ndarray:
        """Same as :meth:`decision_function` (higher = more anomalous).

        Note: scikit-learn's outlier detectors use the opposite sign for ``score_samples``;
        ganad follows PyOD, where every score grows with abnormality.
        """
        return self.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """0 = normal, 1 = anomaly, by comparing the score with ``threshold_``."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_

    def explain(self, X) -> np.ndarray:
        """Anomaly map: |x - x̂| per feature / time step / pixel (scaled units), the shape of ``X``."""
        return self.score_components(X, return_map=True).map

    def save(self, path) -> None:
        """Write the model to directory ``path``: safetensors weights + JSON; see :func:`ganad.io.save_model`."""
        from ganad.io import save_model
        save_model(self, path)

    @classmethod
    def load(cls, path):
        from ganad.io import load_model
        model = load_model(path)
        if not isinstance(model, cls):
            raise InputError(_fmt(str(path), f"holds a {type(model).__name__}, not a {cls.__name__}", f"use ganad.load(path) or {type(model).__name__}.load(path)"))
        return model

    # scikit-learn estimator tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

    def __getstate__(self):
        # networks travel as state dicts (torch cannot pickle spectral-norm parametrisations);
        # __setstate__ rebuilds them from the fitted shape. ganad's own model files never use
        # pickle: see save() / ganad.load().
        state = self.__dict__.copy()
        state.pop("_frozen", None)
        nets = state.pop("nets_", None)
        if nets is not None:
            state["_nets_state"] = {k: {n: t.detach().cpu() for n, t in v.state_dict().items()} for k, v in nets.items()}
        return state

    def __setstate__(self, state):
        nets_state = state.pop("_nets_state", None)
        self.__dict__.update(state)
        if nets_state is not None:
            with torch.random.fork_rng(devices=[]):
                nets = nn.ModuleDict(self._build_networks())
            for k, sd in nets_state.items():
                nets[k].load_state_dict(sd)
            self.nets_ = nets.to(self.device_).eval()
