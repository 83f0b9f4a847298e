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

import contextlib
import copy
import inspect
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from torch import nn

from ganad.data.scaling import Scaler, resolve_scaler
from ganad.data.validation import as_pandas_frame, check_array
from ganad.exceptions import InputError, NotFittedError, _fmt
from ganad.io import load_model, member_seeds, save_model
from ganad.nets import LEGACY_DEFAULT_WIDTH, build_discriminator, build_encoder, build_generator, default_depth, default_width, resolve_family
from ganad import runtime
from ganad.nets.inference import frozen_copy
from ganad.nets.modes import modes_differ, own_modes
from ganad.params import Param, below, custom, instance, integer, is_int, kept_on_failure, none, options, params_as_written, real, validate_params
from ganad.runtime import dense
from ganad.scoring import components as C
from ganad.scoring.calibration import calibrate
from ganad.scoring.composition import WeightedSum, composer_from_dict
from ganad.scoring.threshold import check_contamination, contamination_threshold
from ganad.training.loop import MIN_TAIL, Stage, resolve_device, train
from ganad.training.objectives import OBJECTIVES
from ganad.training.priors import make_prior
from ganad.training.robust import RobustTraining

#: the fewest training samples ``fit`` accepts: below, the only batch of an epoch is smaller than the
#: loop's MIN_TAIL (BatchNorm statistics of so few samples are degenerate) and the scores' median /
#: MAD rest on a handful of values (2 samples: the two training scores are the same two numbers whatever the data;
#: fresh normal samples scored 1e3 to 1e8, see docs/training.md, "How much data")
MIN_FIT_SAMPLES = MIN_TAIL

#: held while a fit trains (and while networks are built): torch's random state is process-global, so
#: fits running at once in threads of one process drew from each other's seeded stream and gave other
#: models than the same fit alone. Threads fit one at a time now, each as it would alone (processes, e.g.
#: joblib's default loky backend, still fit in parallel). Re-entrant: an ensemble's members fit inside.
_TORCH_RNG_LOCK = threading.RLock()
def _rng_devices(device) -> list[int]:
    """The CUDA devices whose random state a fit on ``device`` draws from (its own), restored after the
    fit as the CPU's is: the caller's CUDA stream of random numbers is not moved by a fit."""
    d = torch.device(device)
    if d.type != "cuda":
        return []
    return [d.index if d.index is not None else torch.cuda.current_device()]


#: the fewest samples in the held-out slice and in what is left to train on (else no slice)
HOLDOUT_MIN = 16

#: parameters every detector shares, with the same names and meanings everywhere
COMMON_PARAMS = """
    contamination : float, default 0.1
        Expected fraction of anomalies; sets ``threshold_`` as that quantile of the training scores.
    latent_dim : int, default 16
        Dimension of the latent code z.
    net : {'auto', 'mlp', 'conv1d', 'lstm', 'dcgan'}, default 'auto'
        Network family; 'auto' picks mlp for (n, d), conv1d for (n, c, l), dcgan for (n, c, h, w).
    width, depth : int or None
        Width (units / channels of the first stage) and depth (layers / stages); None = family default
        (width: mlp 128, conv1d 4, lstm 64, dcgan 8; ``ganad.nets.default_width``). A model file
        records the width and depth its networks were built with.
    epochs : int, default 30
        Training length (the last stage's best epoch is kept, see ``validation_fraction``).
    batch_size : int or 'auto', default 'auto'
        Mini-batch size; 'auto' = n/32 rounded down to a power of two, between 32 and 256 (large
        data sets get large batches, which is where training throughput comes from on a CPU; small
        ones keep enough optimisation steps per epoch).
    validation_fraction : float, default 0.1
        Fraction of the (normal) training data held out, never trained on. It chooses, label-free,
        the epoch whose weights are kept (lowest held-out reconstruction residual, see
        :mod:`ganad.training.selection`), standardises the knn blend, GANomaly's latent score and the
        members of an ensemble, and keeps its scores (``validation_scores_``) as the reference of
        ``predict_proba`` / ``predict_confidence``. ``threshold_`` keeps PyOD's meaning, the
        (1 - contamination) quantile of the training scores. 0 = train on everything, keep the last
        epoch.
    ema : float or None, default 0.999
        Decay of the exponential moving average of the weights used for selection and scoring
        (None = the raw weights).
    patience : int or None, default None
        Stop once the held-out criterion has not improved for this many epochs (None = run all epochs).
    n_members : int, default 1
        Ensemble size (Han et al., AAAI 2021): k members trained with different seeds; the score is
        the mean of their scores, each standardised by its median / MAD on the held-out data.
    n_neighbors : int, default 5
        k of the ``knn`` score component with ``knn_metric='euclidean'``: the mean distance of a
        sample to its k nearest training samples in the space of ``knn_space``, kept in the model
        file (a bank of at most 4,096 training samples). Unused by the Mahalanobis distance.
    knn_space : {'auto', 'code', 'feature', 'both', 'input', 'feature+input'}, default 'auto'
        Where the ``knn`` component measures distances: 'code' = the encoder's code E(x),
        'feature' = the discriminator's penultimate features f(x) (wider than 64: their coordinates
        on the bank's principal directions that explain 99 % of its variance, at most 512, plus the
        length of the remainder). 'both' = the mean of the code distance and the feature
        distance, each divided by its typical size on the held-out slice (two searches).
        'input' = the scaled input itself, flattened (compressed as the features are), as PyOD's
        KNN measures it: the default blend then mixes the GAN's own score with a classical kNN
        (benchmarks/RESULTS.md, "A kNN in the scaled input space": ADBench AUROC 0.918 against
        PyOD KNN's 0.914; opt-in, level with the features on the validation sets).
        'feature+input' = the mean of the features' Mahalanobis distance and the inputs' Euclidean
        kNN distance (the input block compressed above 64 numbers as the features are), each divided
        by its typical size on the held-out slice (``knn_metric`` must stay 'auto').
        'auto' = the method's own choice (fitted ``knn_space_``): 'feature+input' for GANomaly,
        f-AnoGAN and β-VAEGAN (with ``knn_weight='auto'``, i.e. 1.0: chosen on held-out MIT-BIH DS1
        records and the MNIST training split, mean AUROC 0.925 against 0.909 for the features'
        Mahalanobis distance blended at 0.75, the default until November 2026; benchmarks/RESULTS.md,
        "The feature and input distances as the default score"), and for AnoGAN (December 2026:
        mean AUROC 0.928 against 0.910 for the features' distance blended with its latent search's
        score at 0.75, which it was until then; its search still gives the score components, the map
        and the reconstruction, and the default score no longer runs it); 'code' for BiGAN, ALAD and TadGAN, whose discriminators do not
        judge x alone (they accept 'code' and 'input'). 'feature' scores 1.1–2.4× faster than
        'feature+input' on beats, tables and digits, more on wide noisy inputs (no search among
        4,096 training rows; benchmarks/RESULTS.md), for scoring-bound uses. Where 'auto' is
        'feature+input' (not with a 'feature+input' named), fit also chooses, without labels, which of
        the two blocks the component reads: both, or the inputs' distance alone where that one tells
        the held-out slice from synthetic anomalies made of it better by more than 0.005
        (slices of 32 rows and more; fitted ``knn_blocks_``, the AUROCs in ``knn_selection_``;
        docs/training.md). In 'feature+input' the features' Mahalanobis distance d is read two-sided,
        |d − m| with m its median on the held-out slice (fitted ``knn_typical_``): features more central
        than normal rows' count as far too (a typicality test; docs/training.md).
    knn_metric : {'auto', 'euclidean', 'mahalanobis'}, default 'auto'
        How the ``knn`` component measures a sample's distance to the training data in that space:
        'euclidean' = the mean Euclidean distance to its ``n_neighbors`` nearest bank samples;
        'mahalanobis' = the Mahalanobis distance to the mean of the bank under its Ledoit–Wolf
        shrunk covariance (a Gaussian model of the normal representations, as Lee et al. 2018 and
        Rippel et al. 2020 use on deep features): every direction counts by how much the training
        data vary along it, so a sample that moves along a direction the normal data hardly move in
        stands out (``n_neighbors`` is unused; the model file keeps the mean and the whitening, not a
        bank; wider than 512: the first 512 principal directions, the rest as one). Not with
        ``knn_space='both'``. 'auto' (fitted ``knn_metric_``) = 'mahalanobis' in the feature space,
        'euclidean' in the code space, the input space and for 'both' (chosen on held-out MIT-BIH
        DS1 records and the MNIST training split, benchmarks/RESULTS.md).
    knn_weight : 'auto' or float in [0, 1], default 'auto'
        Weight w of the ``knn`` component in the default score: (1 − w)·z(method's own score) +
        w·z(knn), each standardised by median / MAD on the held-out slice
        (:class:`ganad.scoring.composition.KnnBlend`). 0 = the method's own score alone, 1 = the knn
        component alone (the method's own score stays a component, and its residual the anomaly
        map). 'auto' = the weight chosen with the fitted ``knn_space_`` on held-out MIT-BIH DS1
        records and the MNIST training split (benchmarks/RESULTS.md): 1.0 for 'feature+input', 0.75
        for the other spaces. Fitted into the composer: a value set after fit takes effect at the
        next fit or ``calibrate`` (as do the methods' own score weights: ``lam``, ``kappa``,
        ``score_weights``).
    divergence_guard : bool, default True
        Check every optimisation step for non-finite losses, gradients or weights, an exploding
        gradient norm and (BCE GANs) a collapsed discriminator; on a symptom roll back to the last
        good state (start of the epoch or latest checkpoint), multiply the stage's learning rates
        by ``divergence_lr_factor`` and retry, at most ``divergence_retries`` times, then stop with
        ``TrainingDiverged`` naming the stage, the epoch and the symptom (see
        :mod:`ganad.training.guard`, docs/training.md).
    divergence_lr_factor : float in (0, 1), default 0.1
        Learning-rate multiplier of each roll-back.
    divergence_retries : int >= 0, default 1
        Roll-backs allowed before training stops with an error.
    objective : {'bce', 'wgan-gp', 'hinge'}
        Adversarial objective (the method's default: 'bce' unless its docstring says otherwise).
    n_critic : int, default 1
        Discriminator steps per generator step.
    gp_weight : float, default 10.0
        Weight of WGAN-GP's gradient penalty (objective='wgan-gp').
    gp_every : int >= 1, default 1
        Lazy regularisation (Karras et al., CVPR 2020, "Analyzing and improving the image quality of
        StyleGAN", sec. 3.1): the gradient penalty on one discriminator step in ``gp_every``, weighted
        ``gp_every`` so that its average pull is the same. The penalty's double backward is about half
        of a WGAN-GP discriminator step on images; 1 = every step (objective='wgan-gp' only).
    spectral_norm : bool
        Spectral normalisation on the discriminator.
    prior : {'normal', 'uniform', 'truncated_normal'} or dict
        Latent prior p(z).
    lr_g : float, default 0.0002
        Adam learning rate of the generator (and encoder).
    lr_d : float, default 0.0002
        Adam learning rate of the discriminator.
    betas : (float, float), default (0.5, 0.999)
        Adam's betas.
    scaler : {'auto', 'per-feature', 'standard', 'minmax', 'none'} or dict
        Scaling fitted on training data; 'auto' = minmax to [-1, 1] for images, 'per-feature' for vectors and
        series (per feature / channel: constant ones centred, few-valued ones mapped by their range to [-1, 1],
        continuous ones standardised; values clipped to the training range widened by ``clip`` = 1 range each
        side). A dict such as ``{"kind": "per-feature", "clip": 3.0, "max_levels": 10}`` sets the options; see
        docs/scaling.md.
    feature_layer : int or 'auto'
        Discriminator block whose output is D's features: the features feature matching trains on and the
        default score's Mahalanobis distance reads (negative counts from the last). 'auto' = the method's
        choice (:attr:`_feature_layer_auto`, clamped to the blocks D has): the last block (-1) for every
        method but GANomaly, whose default is 'auto' = the second-to-last block where D has two or more,
        chosen on validation data (benchmarks/RESULTS.md, thirty-fifth session).
    score_batch_size : int, default 1024
        Samples per batch when scoring.
    device : 'auto', 'cpu', 'cuda', ...
    random_state : int or None
        Seed of weights, training order and latent-search starts; the same seed gives the same scores on CPU.
    verbose : bool
        Show a progress bar with the losses during training.
"""


def params_with_defaults(text: str, **defaults) -> str:
    """A parameters section (:data:`COMMON_PARAMS`, ``ENCODER_PARAMS``) with the ``default`` of each
    named entry set to a method's own (f-AnoGAN's ``n_critic=5``, TadGAN's ``latent_dim=20``)."""
    for name, value in defaults.items():
        text, n = re.subn(rf"^(\s{{4}}{name} : [^\n]*?, default ).+$", lambda m: m.group(1) + repr(value), text, count=1, flags=re.M)
        if not n:
            raise ValueError(f"{name} has no 'default' entry to set")
    return text


def _check_scaler(spec) -> None:
    try:
        resolve_scaler(spec, image=False)
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from exc


def _is_device(dev) -> bool:
    if dev in (None, "auto"):
        return True
    try:
        torch.device(dev)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def _positive(name: str = "{name}") -> str:
    return f"pass a positive integer for {name}"


#: the parameters every detector shares, typed once: name -> (type, default). COMMON_PARAMS
#: documents them, COMMON_CONSTRAINTS says what each accepts, :func:`method_init` puts them in a
#: method's constructor (a method may change a default, e.g. f-AnoGAN's objective='wgan-gp')
COMMON_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "contamination": (float, 0.1),
    "latent_dim": (int, 16),
    "net": (str, "auto"),
    "width": (int | None, None),
    "depth": (int | None, None),
    "epochs": (int, 30),
    "batch_size": (int | str, "auto"),
    "objective": (str, "bce"),
    "n_critic": (int, 1),
    "gp_weight": (float, 10.0),
    "gp_every": (int, 1),
    "spectral_norm": (bool, False),
    "prior": (str | dict, "normal"),
    "lr_g": (float, 2e-4),
    "lr_d": (float, 2e-4),
    "betas": (tuple[float, float], (0.5, 0.999)),
    "scaler": (str | dict, "auto"),
    "feature_layer": (int, -1),
    "score_batch_size": (int, 1024),
    "device": (str, "auto"),
    "random_state": (int | np.random.RandomState | None, None),
    "verbose": (bool, False),
    "validation_fraction": (float, 0.1),
    "ema": (float | None, 0.999),
    "patience": (int | None, None),
    "n_members": (int, 1),
    "n_neighbors": (int, 5),
    "knn_space": (str, "auto"),
    "knn_metric": (str, "auto"),
    "knn_weight": (float | str, "auto"),
    "divergence_guard": (bool, True),
    "divergence_lr_factor": (float, 0.1),
    "divergence_retries": (int, 1),
}


def method_init(*groups: dict[str, Any], **own: Any) -> Callable[..., None]:
    """A detector's ``__init__``: the keyword-only parameters of :data:`COMMON_PARAMETERS`, then
    those of ``groups`` (such as :data:`ganad.detectors.encoder_base.ENCODER_PARAMETERS`), then
    ``own`` (``name=default``; a name already there only changes its default). It stores every
    argument unchanged (scikit-learn's contract); ``get_params`` / ``clone`` read its signature::

        class MyMethod(EncoderDetector):
            __init__ = method_init(ENCODER_PARAMETERS, objective="hinge", my_weight=1.0)
    """
    table: dict[str, tuple[Any, Any]] = dict(COMMON_PARAMETERS)
    for g in groups:
        table.update(g)
    for name, default in own.items():
        table[name] = (table[name][0] if name in table else Any, default)
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
               for name, (kind, default) in table.items()]
    signature = inspect.Signature(params)

    def __init__(self, **kwargs: Any) -> None:
        bound = signature.bind(self, **kwargs)  # TypeError naming an unknown parameter
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            if name != "self":
                setattr(self, name, value)
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


def check_prior(value, name: str = "prior"):
    """The prior ``value`` names (a name, a dict with 'name' and its arguments, or a Prior), or an InputError."""
    from ganad.training.priors import PRIORS
    fix = f"use one of {', '.join(repr(p) for p in PRIORS)}, or a dict such as {{'name': 'truncated_normal', 'bound': 2.0}}"
    if isinstance(value, str) and value not in PRIORS:
        raise InputError(_fmt(name, f"is {value!r}, not a prior", fix))
    try:
        return make_prior(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(_fmt(name, f"is {value!r}, which is not a prior ({type(exc).__name__}: {exc})", fix)) from None


#: what each shared parameter accepts
COMMON_CONSTRAINTS: dict[str, Param] = {
    "contamination": Param(validator=check_contamination),
    "objective": Param(options(*OBJECTIVES), fix=f"use one of {', '.join(OBJECTIVES)}"),
    "batch_size": Param(options("auto"), integer(2),
                        fix="a batch of one sample cannot train the networks' BatchNorm layers: pass an integer >= 2, or 'auto' (the default)"),
    "validation_fraction": Param(real(0, 0.5, open="right"), fix="pass a fraction in [0, 0.5), e.g. 0.1 (0 = no held-out data)"),
    "ema": Param(none, real(0, 1, open="both"), fix="pass a decay in (0, 1) such as 0.999, or None"),
    "patience": Param(none, integer(1), fix="pass a positive number of epochs, or None"),
    "knn_weight": Param(options("auto"), real(0, 1), fix="pass 'auto' (the default) or a weight in [0, 1] (0 = the method's own score)"),
    "knn_space": Param(options("auto", "code", "feature", "both", "input", "feature+input"),
                       fix="use 'auto' (the default), 'code', 'feature', 'both', 'input' or 'feature+input'"),
    "knn_metric": Param(options("auto", "euclidean", "mahalanobis"), fix="use 'auto' (the default), 'euclidean' or 'mahalanobis'"),
    "n_members": Param(integer(1), fix=_positive()),
    "n_neighbors": Param(integer(1), fix=_positive()),
    "latent_dim": Param(integer(1, 2**31 - 1), fix=_positive()),
    "epochs": Param(integer(1), why=below(1, " (0 epochs would train nothing)"), fix=_positive()),
    "n_critic": Param(integer(1), fix=_positive()),
    "score_batch_size": Param(integer(1), fix=_positive()),
    "width": Param(none, integer(1, 2**31 - 1), fix=_positive() + ", or None for the family's default"),
    "depth": Param(none, integer(1, 2**31 - 1), fix=_positive() + ", or None for the family's default"),
    "betas": Param(custom(lambda b: isinstance(b, (tuple, list)) and len(b) == 2 and all(real(0, 1, open="right")(x) for x in b),
                          "two numbers in [0, 1)"), fix="pass Adam's two betas in [0, 1), such as (0.5, 0.999)"),
    "gp_weight": Param(real(0), fix="pass a non-negative gradient-penalty weight such as 10.0"),
    "gp_every": Param(integer(1), fix=_positive() + " (1 = the penalty on every discriminator step)"),
    "feature_layer": Param(integer(), options("auto"), fix="pass a block index such as -1 (the last block)"),
    "random_state": Param(none, instance(np.random.RandomState), integer(0, 2**32 - 1),
                          fix="pass None, a seed between 0 and 2**32 - 1 (CLI: --seed 0), or a numpy RandomState"),
    "device": Param(custom(_is_device, "a device"), why=", which is not a device", fix="use 'auto', 'cpu', 'cuda' or 'cuda:0'"),
    "lr_g": Param(real(0, open="left"), fix="pass a positive learning rate such as 2e-4"),
    "lr_d": Param(real(0, open="left"), fix="pass a positive learning rate such as 2e-4"),
    "scaler": Param(validator=_check_scaler),
    "divergence_guard": Param(instance(bool, np.bool_), fix="pass True (check every step, the default) or False"),
    "spectral_norm": Param(instance(bool, np.bool_), fix="pass True (spectral normalisation of D's layers) or False (the default)"),
    "verbose": Param(instance(bool, np.bool_), integer(0), fix="pass True (progress bars) or False"),
    "prior": Param(validator=lambda v: check_prior(v)),
    "divergence_lr_factor": Param(real(0, 1, open="both"), fix="pass a learning-rate multiplier in (0, 1) such as 0.1"),
    "divergence_retries": Param(integer(0), fix="pass a number of roll-backs >= 0 such as 1"),
}


def feature_names(X):
    """Column names of a DataFrame whose columns are all strings (scikit-learn's rule), else None
    (a polars / pyarrow frame's too: :func:`~ganad.data.validation.as_pandas_frame`)."""
    X = as_pandas_frame(X)
    cols = getattr(X, "columns", None)
    if cols is None or not hasattr(X, "dtypes"):
        return None
    kinds = [isinstance(c, str) for c in cols]
    if any(kinds) and not all(kinds):  # scikit-learn refuses them too (a TypeError): names dropped, a renamed column went unseen
        other = next(c for c in cols if not isinstance(c, str))
        raise InputError(_fmt("X", f"has column names of mixed types (strings and {type(other).__name__} {other!r})",
                              "name every column with a string (df.columns = df.columns.astype(str)), or pass an array"))
    if not all(kinds):
        return None
    return np.asarray(list(cols), dtype=object)


def proba_from_scores(scores, reference, method: str = "linear") -> np.ndarray:
    """(n, 2) [P(normal), P(anomaly)] from anomaly scores, as PyOD's ``BaseDetector.predict_proba``
    (pyod/models/base.py): 'linear' = min-max scaling by the ``reference`` scores' range, clipped to
    [0, 1]; 'unify' = erf((s − μ) / (σ·√2)) clipped to [0, 1], μ, σ the reference's mean and
    standard deviation (Kriegel et al., SDM 2011)."""
    if method not in ("linear", "unify"):
        raise InputError(_fmt("method", f"is {method!r}", "use 'linear' (min-max of the reference scores) or 'unify' (Gaussian erf)"))
    scores = np.asarray(scores, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if method == "linear":
            lo, span = float(ref.min()), float(ref.max() - ref.min())
            p1 = (scores - lo) / (span if span > 0 else 1.0)  # zero range: as scikit-learn's MinMaxScaler (scale 1)
        else:
            from scipy.special import erf
            mu, sigma = float(ref.mean()), float(ref.std())
            p1 = erf((scores - mu) / ((sigma if sigma > 0 else 1.0) * np.sqrt(2.0)))
    p1 = np.clip(np.nan_to_num(p1, nan=1.0), 0.0, 1.0)  # NaN only from inf - inf: an overflowing row, most anomalous
    return np.column_stack([1.0 - p1, p1])


def _ledoit_wolf_from_gram(G: torch.Tensor, d: int) -> float:
    """scikit-learn's ``ledoit_wolf_shrinkage(C, assume_centered=True)`` of centred rows C (n, d) from
    their Gram matrix G = C Cᵀ alone, in O(n²) instead of O(n d²): Σ (C²)ᵀC² = Σ_k ‖c_k‖⁴ and
    ‖CᵀC‖_F = ‖C Cᵀ‖_F (the features of large images: d of 50,000 took 7 s there)."""
    n = G.shape[0]
    r = G.diagonal()
    tr = float(r.sum()) / n  # the empirical covariance's trace
    mu = tr / d
    delta = float(G.square().sum()) / n**2
    beta = (float(r.square().sum()) / n - delta) / (d * n)
    delta = (delta - 2.0 * mu * tr + d * mu**2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


def looks_like_label(name) -> bool:
    """A column named like a ground-truth label (y, label, target, class, anomaly, outlier, ...)."""
    n = str(name).strip().lower()
    return n in ("y", "label", "labels", "target", "class", "anomaly", "is_anomaly", "outlier", "is_outlier", "ground_truth")


def ambiguous_layout(shape: tuple) -> str | None:
    """A note when samples of ``shape`` read two ways: (C, L) with C == L >= 8 is read as series windows
    (C channels x L steps) but may be images without a channel axis; (H, W, C) with C in 1, 3, 4 and
    H, W > 4 (square or not) is read as H channels of W x C pixels but may be channels-last images.
    None otherwise."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2 and shape[0] == shape[1] >= 8:
        a = shape[0]
        return _fmt("X", f"has samples of shape {shape}, read as series windows ({a} channels x {a} time steps, conv1d nets)",
                    f"if they are {a}x{a} images, add a channel axis: fit(X[:, None]) (shape (n, 1, {a}, {a})); "
                    "if they are series windows, nothing to do")
    if len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] > 4 and shape[1] > 4:
        h, w, c = shape
        return _fmt("X", f"has samples of shape {shape}, read as images of {h} channels, {w} x {c} pixels (channels first)",
                    f"if they are {h}x{w} images with {c} channel(s) last, put the channels first: fit(X.transpose(0, 3, 1, 2)) "
                    f"(shape (n, {c}, {h}, {w}))")
    return None


def exceed_confidence(scores, reference, threshold: float, n_above: int | None = None) -> np.ndarray:
    """ExCeed (Perini, Vercruyssen and Davis, ECML PKDD 2020) as PyOD's ``BaseDetector.predict_confidence``:
    with n reference scores, k of them above ``threshold``, and a score ranking above m of them,
    p = (1 + m) / (2 + n) and the confidence of an anomaly prediction is 1 − BinomialCDF(n − k; n, p),
    of a normal prediction one minus that. k is counted on the reference (right when the threshold
    was fitted on it: a calibration set, or the training scores) unless ``n_above`` gives it (PyOD's
    ⌊n·contamination⌋ when the threshold is the contamination quantile of other scores).

    k = 0 (a threshold at or above every reference score: ``calibrate(threshold='fpr', fpr=0)``, or
    n·contamination < 1) counts as k = 1: 1 − BinomialCDF(n; n, p) is 0 for every p, which gave every
    anomaly label confidence 0 and every normal label confidence 1, whatever the score. Above every
    reference score is the one way to be labelled an anomaly there, and its probability is
    P(Binomial(n, p) ≥ n) = pⁿ = 1 − BinomialCDF(n − 1; n, p)."""
    from scipy.stats import binom
    scores = np.asarray(scores, dtype=np.float64)
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    n = ref.size
    k = int(np.count_nonzero(ref > threshold)) if n_above is None else int(n_above)
    k = max(k, 1)
    m = np.searchsorted(ref, scores, side="right")  # reference scores <= s
    conf = 1.0 - binom.cdf(n - k, n, (1.0 + m) / (2.0 + n))
    return np.where(scores > threshold, conf, 1.0 - conf)


def _is_itself(d2: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Whether a training row's nearest bank entry (squared float64 distance ``d2``) is the row itself:
    0 up to the rounding of two passes through the networks, relative to the row's size (``e``, its
    float64 embedding). One rule for the Euclidean search and the Mahalanobis leave-one-out."""
    return d2 <= 1e-9 * (1.0 + e.square().sum(1))


_TRAINING_ROWS = threading.local()


def _training_rows_marks() -> set:
    """The ids of the detectors whose training rows this thread is scoring (see
    ``BaseGANDetector._scoring_training_rows``)."""
    marks = getattr(_TRAINING_ROWS, "ids", None)
    if marks is None:
        marks = _TRAINING_ROWS.ids = set()
    return marks


@dataclass
class ScoreResult:
    """Everything a detector computes for a batch of samples, as NumPy arrays: scores and components
    per sample, ``map`` in scaled units (as :meth:`BaseGANDetector.explain` explains), ``reconstruction``
    in the input's units."""

    scores: np.ndarray
    components: dict[str, np.ndarray]
    map: np.ndarray | None = None  # per-element anomaly map |x - x̂|, same shape as X (scaled units)
    reconstruction: np.ndarray | None = None  # x̂ in the input's units
    z: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)




class BaseGANDetector(RobustTraining, BaseEstimator):
    """Shared machinery; see the concrete detectors for the methods."""

    #: what each shared parameter accepts, declared once for every detector; a method's class
    #: adds its own parameters (or overrides one) in its own ``_parameter_constraints``
    _parameter_constraints: dict[str, Param] = COMMON_CONSTRAINTS

    #: networks the method trains (keys of ``nets_``)
    _networks: tuple[str, ...] = ("G", "D")
    #: context for scoring; latent search needs autograd, so it uses no_grad + a local enable_grad
    _score_context: Any = staticmethod(torch.inference_mode)

    # ------------------------------------------------------------------ hooks
    #: the block ``feature_layer='auto'`` means (clamped to the blocks the discriminator has)
    _feature_layer_auto = -1

    def _build_discriminator(self, fam, shape, w, k):
        """D with its features taken from ``feature_layer`` ('auto': :attr:`_feature_layer_auto`, or the first
        block of a discriminator with fewer blocks; an index out of range is refused by the network)."""
        fl = self.feature_layer
        if isinstance(fl, str):  # 'auto' (the parameter check refuses other strings)
            D = build_discriminator(fam, shape, w, k, self.spectral_norm, -1)
            D.feature_layer = self._auto_feature_index(len(D.blocks))
            return D
        return build_discriminator(fam, shape, w, k, self.spectral_norm, fl)

    def _auto_feature_index(self, n_blocks: int) -> int:
        """The block index ``feature_layer='auto'`` means for a discriminator of ``n_blocks`` blocks."""
        return max(int(self._feature_layer_auto), -n_blocks) % n_blocks

    def _build_networks(self) -> dict[str, nn.Module]:
        fam, shape, d = self.family_, self.data_shape_, self.latent_dim
        w, k = self._width(), self._depth()
        nets = {"G": build_generator(fam, d, shape, w, k, self._out_act()),
                "D": self._build_discriminator(fam, shape, w, k)}
        if "E" in self._networks:
            nets["E"] = build_encoder(fam, shape, d, w, k)
        return nets

    def _build_networks_or_explain(self) -> dict[str, nn.Module]:
        """:meth:`_build_networks`, with an allocation failure (a width or latent_dim far too large)
        as an InputError naming the settings instead of the allocator's traceback."""
        try:
            return self._build_networks()
        except (RuntimeError, MemoryError) as exc:
            if not isinstance(exc, MemoryError) and "alloc" not in str(exc).lower():
                raise
            self.__dict__.pop("nets_", None)
            import re
            asked = re.search(r"allocate (\d+) bytes", str(exc))
            what = f"one of their weights alone takes {int(asked.group(1)) / 2**30:.3g} GiB" if asked else type(exc).__name__
            raise InputError(_fmt("width / latent_dim", f"are {self._width()} / {self.latent_dim}: the networks they make do not "
                                                        f"fit in memory ({what})",
                                  "pass a smaller width or latent_dim (the defaults: width=None, the family's own; "
                                  "latent_dim=16)")) from None

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

    def _twin_components(self) -> set[str]:
        """Components computed as another one (the same score under a second name): left out of the
        compositions over all components (calibrate's 'standardised', 'grid', 'svm'), which would count
        that score twice. ``<name>_raw`` twins are found by name (:func:`ganad.scoring.composition.composable`)."""
        return set()

    # ------------------------------------------------------------------ the scoring settings threshold_ goes with
    #: the parameters of the latent search (read when a score is computed by search)
    _SEARCH_KEYS = ("search_distance", "search_eps", "search_n_max", "search_lr", "search_restarts", "search_feature_weight")

    def _scoring_key(self) -> dict[str, Any]:
        """The parameters, changeable by ``set_params`` after fit, that decide how the score components are
        computed: ``n_neighbors`` where the knn component searches the nearest bank rows (a Euclidean
        metric; the Mahalanobis distance does not read it), the search's settings where scores come from a
        latent search, and (encoder methods) ``inversion`` and ``search_init``. ``threshold_``, the
        composer's standardisation (the knn blend's median / MAD) and the reference scores are fitted under
        the key recorded in ``_threshold_scored_with`` (by fit, calibrate and load)."""
        members = self.__dict__.get("members_")
        if members:  # an ensemble scores through its members, with its own scoring-time parameters passed down
            m = members[0]
            m.set_params(**self._member_scoring_params())
            return m._scoring_key()
        key: dict[str, Any] = {}
        if self.__dict__.get("knn_space_") is not None and "euclidean" in self._knn_metric_now():
            key["n_neighbors"] = self.n_neighbors
        if self._search_scoring():
            key.update({k: getattr(self, k) for k in self._SEARCH_KEYS if hasattr(self, k)})
        return key

    def _check_scoring_current(self, what: str) -> None:
        """Refuse to compare scores with a threshold / reference scores fitted under other scoring settings."""
        was = self.__dict__.get("_threshold_scored_with")
        now = self._scoring_key()
        if was is None or was == now:
            return
        keys = [k for k in dict.fromkeys([*was, *now]) if was.get(k) != now.get(k)]
        # a setting that exists under one scoring only (the search's, after inversion changed) follows from one
        # both have: name that one
        keys = [k for k in keys if k in was and k in now] or keys
        now_s = ", ".join(f"{k}={now.get(k)!r}" for k in keys)
        was_s = ", ".join(f"{k}={was.get(k)!r}" for k in keys)
        raise InputError(_fmt(f"{type(self).__name__}.{what}",
                              f"scores with {now_s} (set after fit), but threshold_, the score's standardisation and the reference "
                              f"scores were fitted on scores computed with {was_s}; they do not apply to the new scores",
                              f"call det.calibrate(X_normal) with normal data to fit the composition and the threshold under the new "
                              f"settings, or set it back (det.set_params({was_s}))"))

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
        if self.width is not None:
            return self.width
        built = self.__dict__.get("_built_width")  # a loaded model: the width its file was built with
        return built if built is not None else default_width(self.family_)

    def _depth(self):
        if self.depth is not None:
            return self.depth
        built = self.__dict__.get("_built_depth")
        return built if built is not None else default_depth(self.family_, self.data_shape_)

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

    def _check_params(self) -> None:
        """Check every parameter against the class's constraints (:attr:`_parameter_constraints`)."""
        validate_params(self)
        if self.knn_metric == "mahalanobis" and self.knn_space == "both":
            raise InputError(_fmt("knn_metric", "is 'mahalanobis' with knn_space='both', which averages two separate searches",
                                  "use knn_metric='mahalanobis' with knn_space 'code', 'feature' or 'input', or knn_metric='euclidean' with 'both'"))
        if self.knn_space == "feature+input" and self.knn_metric != "auto":
            raise InputError(_fmt("knn_metric", f"is {self.knn_metric!r} with knn_space='feature+input', whose two distances have their own "
                                                "metrics (Mahalanobis in the features, Euclidean between the inputs)", "leave knn_metric='auto'"))

    def _check_series_only_options(self) -> None:
        """Soft-DTW compares series windows (n, channels, length): a DTW setting on vectors or images is
        refused before training, not after it when the first score fails."""
        if len(self.data_shape_) == 2:
            return
        for name in ("search_distance", "rec_error"):
            if self.__dict__.get(name) == "dtw":
                raise InputError(_fmt(name, f"is 'dtw', but the samples have shape {tuple(self.data_shape_)}, not series windows (channels, length)",
                                      "use 'dtw' on series windows only" + (" (here 'l2' or 'l1')" if name == "search_distance" else " (here 'point')")))

    def _check_depth_fits(self) -> None:
        """Each stride-2 stage (kernel 4, padding 1) of the conv1d / dcgan families needs a side of at
        least 2 and leaves floor(side / 2): refuse a sample shape or ``depth`` that would leave an empty
        (zero-width) map, which otherwise fails deep inside torch or, worse, trains a network whose
        every score is the same constant."""
        if self.family_ not in ("conv1d", "dcgan"):
            return
        depth, sides = int(self._depth()), list(self.data_shape_[1:])
        for stage in range(depth):
            if min(sides) < 2:
                most = stage
                raise InputError(_fmt(
                    "depth" if self.depth is not None else "X",
                    f"{'is ' + str(depth) if self.depth is not None else 'has samples of shape ' + str(tuple(self.data_shape_))}: "
                    f"the {self.family_} networks halve the length / image sides at each of {depth} stage(s), which leaves "
                    f"nothing after {most} stage(s) for samples of shape {tuple(self.data_shape_)}",
                    (f"pass depth <= {max(most, 1)}" if most >= 1 else
                     "use net='mlp' (or net='lstm' for series), or give the samples a length / sides of at least 2")))
            sides = [s // 2 for s in sides]

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

    #: images (n, C, H, W): input values per scoring step at most (2**21: 13 RGB images of 224 x 224,
    #: 42 of 128 x 128, all 1,024 of ``score_batch_size`` from 32 x 32 RGB down). The DCGAN networks'
    #: activations take about 17 times the input (10 MB per 224 x 224 RGB image): a step of 1,024
    #: such images needed 10 GB, and the per-sample scores do not depend on the step's size.
    _image_score_values = 1 << 21

    def _image_score_rows(self) -> int:
        """Rows per scoring step that :attr:`_image_score_values` allows for image samples (no limit otherwise)."""
        shape = tuple(self.__dict__.get("data_shape_") or ())
        if len(shape) != 3:
            return 1 << 62
        dev = self.__dict__.get("device_")
        values = self._image_score_values * (1 if dev is None or dev.type == "cpu" else 8)  # an accelerator: larger steps keep it busy
        return max(1, values // max(1, int(np.prod(shape))))

    def _check_fitted(self):
        if not hasattr(self, "nets_") and "members_" not in self.__dict__:
            raise NotFittedError(f"{type(self).__name__}: this detector is not fitted yet. Fix: call fit(X) first, or load a saved model with ganad.load(path)")

    def _validate_for_scoring(self, X, name="X") -> np.ndarray:
        self._check_fitted()
        v = self.score_batch_size
        if not is_int(v) or v < 1:
            raise InputError(_fmt("score_batch_size", f"is {v!r}", "pass a positive integer, such as 1024"))
        import scipy.sparse as sp
        if sp.issparse(X):
            raise InputError(_fmt(name, "is a sparse matrix; sparse input is not supported", "convert it with X.toarray()"))
        X = as_pandas_frame(X)
        self._check_feature_names(feature_names(X), name)
        X = check_array(X, name, dtype="float")  # float64 stays float64 until scaled (Scaler)
        if X.shape[1:] != tuple(self.data_shape_):
            if X.ndim == 2 and len(self.data_shape_) == 1:
                raise InputError(f"{name} has {X.shape[1]} features, but {type(self).__name__} is expecting {self.data_shape_[0]} features as input. "
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
        hint = ""
        if unseen or missing:
            problem = " and ".join(([f"has column(s) {unseen[:5]} not seen at fit time"] if unseen else [])
                                   + ([f"lacks training column(s) {missing[:5]}"] if missing else []))
            lab = [c for c in missing if looks_like_label(c)]
            if lab:  # the label was trained as a feature: asking for it at scoring time is the wrong fix
                hint = (f"; if {lab[0]!r} is a label column the model was trained on as a feature, fit again without it "
                        f"(CLI: --exclude {lab[0]})")
        else:
            problem = f"has the training columns in another order ({names[:6]} ... instead of {fitted[:6]} ...)"
        exc = InputError(_fmt(name, problem, f"pass exactly the training columns, in the training order: {fitted[:10]}"
                              f"{' ...' if len(fitted) > 10 else ''} (for a DataFrame: X[detector.feature_names_in_]){hint}"))
        exc.unseen_columns = unseen  # every one (the message names five): the CLI's --exclude flags for them
        exc.expected_columns = [str(c) for c in fitted]
        raise exc

    # ------------------------------------------------------------------ API
    def fit(self, X: ArrayLike, y: Any = None, *, robust_contamination: float | None = None, robust_warmup: int | None = None,
            robust_mode: str = "hard", robust_proxy: str | None = None, checkpoint_dir: str | os.PathLike[str] | None = None,
            checkpoint_every: int | None = None, checkpoint_seconds: float | None = None, resume: bool = False) -> Self:
        """Train on (mostly) normal data ``X``; ``y`` is ignored (unsupervised).

        Checkpoints (issue 13): with ``checkpoint_dir``, the whole training state is written there
        every ``checkpoint_every`` optimisation steps and / or every ``checkpoint_seconds`` seconds
        (default: every 60 s when neither is given), and at the end of training, atomically (a
        kill -9 at any moment leaves the previous checkpoint intact). ``resume=True`` continues
        from the checkpoint there; on CPU the result is the same, bit for bit, as an
        uninterrupted run. A checkpoint of other data or other parameters is refused, naming
        what differs; so is a directory holding a checkpoint without ``resume=True``. See
        :mod:`ganad.training.checkpoint` and docs/training.md.

        Robust training (training data contaminated with anomalies): with
        ``robust_contamination=c``, after ``robust_warmup`` plain epochs (default
        ``max(1, epochs // 3)``) every epoch down-weights the fraction ``c`` of training samples
        the current model scores as most anomalous (``robust_mode`` 'hard': weight 0, 'soft':
        ``exp(-(s - q) / σ)`` above the (1 - c) quantile ``q``), ranked by the cheap proxy score ``robust_proxy`` (None = the method's
        ``_robust_proxy_kind``); see :mod:`ganad.training.robust`. The final weights end in
        ``robust_weights_``, the per-epoch excluded fraction in ``history_``.
        """
        if modes_differ(grad=True):
            with own_modes(grad=True):
                return self.fit(X, y, robust_contamination=robust_contamination, robust_warmup=robust_warmup, robust_mode=robust_mode,
                                robust_proxy=robust_proxy, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                                checkpoint_seconds=checkpoint_seconds, resume=resume)
        # a refit refused on the way (a parameter or device check, bad data, a diverged or interrupted run)
        # leaves the model it had, fitted or not, as it was: never half cleared (which scored wrongly and
        # saved a file that would not load)
        with kept_on_failure(self):
            import scipy.sparse as sp
            if sp.issparse(X):
                raise InputError(_fmt("X", "is a sparse matrix; sparse input is not supported", "convert it with X.toarray()"))
            X = as_pandas_frame(X)  # a polars / pyarrow frame: named as a pandas one (converted once)
            names = feature_names(X)
            X = check_array(X, "X", dtype="float")  # float64 stays float64 until scaled (Scaler)
            note = None if self.__dict__.get("_layout_given") else ambiguous_layout(X.shape[1:])
            if note is not None:  # (the CLI and SeriesDetector know the layout: they set _layout_given)
                from ganad.exceptions import AmbiguousShapeWarning
                warnings.warn(AmbiguousShapeWarning(note), stacklevel=2)
            if X.shape[0] < MIN_FIT_SAMPLES:
                raise InputError(_fmt("X", f"has {X.shape[0]} sample{'s' if X.shape[0] != 1 else ''}, but at least {MIN_FIT_SAMPLES} are needed to train: with fewer, the "
                                           f"only batch of every epoch is smaller than {MIN_TAIL} samples (its BatchNorm statistics are degenerate; "
                                           "two samples normalise every feature to ±1) and the median / MAD that standardise the scores rest "
                                           "on a handful of values, so that new normal samples score hundreds of times or more above the training ones",
                                      f"pass at least {MIN_FIT_SAMPLES} samples (a few hundred normal samples give reliable scores)"))
            self._check_params()
            if self.knn_space == "auto" and self.knn_metric != "auto" and self._resolve_knn_space() == "feature+input":
                # checked at fit, not in _check_params: a model file fitted when 'auto' meant another space loads as it was
                raise InputError(_fmt("knn_metric", f"is {self.knn_metric!r}, but knn_space='auto' is 'feature+input' for {type(self).__name__}, "
                                                    "whose two distances have their own metrics (Mahalanobis in the features, Euclidean between "
                                                    "the inputs), so the metric would be ignored",
                                      f"leave knn_metric='auto', or name the space it should measure: knn_space='feature' (or 'code', "
                                      f"'input') with knn_metric={self.knn_metric!r}"))
            self._set_robust(robust_contamination, robust_warmup, robust_mode, robust_proxy)
            ckpt = self._checkpoint_setup(X, checkpoint_dir, checkpoint_every, checkpoint_seconds, resume,
                                          (robust_contamination, robust_warmup, robust_mode, robust_proxy))
            for attr in ("_frozen", "members_", "_decision_scores", "_train_components", "_train_components_partial", "_built_width", "_built_depth", "_train_ref", "knn_bank_", "_knn_cache", "knn_space_", "knn_basis_", "knn_center_",
                         "knn_scale_", "knn_metric_", "knn_input_basis_", "knn_input_center_",
                         "knn_split_", "knn_scales_", "knn_typical_", "knn_blocks_", "knn_selection_", "selection_", "calibration_scores_", "_knn_own", "checkpoint_",
                         "validation_scores_", "nets_", "disc_train_mean_", "latent_stats_", "_knn_bank_index", "member_stats_",
                         "tuning_"):  # a refit is no longer the tuned model: its save writes no tuning.json
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
            self._check_depth_fits()
            self._check_series_only_options()
            self.device_ = resolve_device(self.device)
            from ganad.training import distributed
            ddp = distributed.setup(self.device_)  # None unless launched by torchrun (or a process group exists)
            if ddp is not None:
                self.device_ = ddp.device
            self.seed_ = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
            if ddp is not None and ckpt is not None:
                raise InputError(_fmt("checkpoint_dir", "was given to a distributed (torchrun) fit, where every rank would write the same checkpoint",
                                      "train without checkpoint_dir under torchrun, or checkpoint a single-process run"))
            if ddp is not None:  # random_state=None draws a seed per process: every rank takes rank 0's
                self.seed_ = ddp.agree(self.seed_)
            if ckpt is not None and ckpt[1] is not None:
                self.seed_ = int(ckpt[1][0]["extra"]["seed"])  # random_state=None: the resumed run's own seed
            self.prior_ = make_prior(self.prior)
            self._built_with = self._structure()
            if int(self.n_members) > 1:
                return self._fit_ensemble(X, dict(robust_contamination=robust_contamination, robust_warmup=robust_warmup,
                                                  robust_mode=robust_mode, robust_proxy=robust_proxy))
            self.scaler_ = self._make_scaler().fit(X)
            Xt = torch.from_numpy(self.scaler_.transform(X))
            train_idx, val_idx = self._holdout(X.shape[0])
            self.validation_index_ = val_idx
            if self.patience is not None and not len(val_idx):  # no held-out criterion: nothing to stop on
                warnings.warn(_fmt("patience", f"is {self.patience}, but there is no held-out slice to judge epochs on "
                                               f"(validation_fraction={float(self.validation_fraction):g}, {X.shape[0]} samples): every epoch runs",
                                   "train on more samples, or set validation_fraction > 0 (e.g. 0.1), or leave patience at None"),
                              UserWarning, stacklevel=2)
            self._warn_small(X.shape[0], val_idx)
            Xtr = Xt[torch.from_numpy(train_idx)] if len(val_idx) else Xt
            Xval = Xt[torch.from_numpy(val_idx)] if len(val_idx) else None
            with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=_rng_devices(self.device_)):  # (one random state per process: see the lock)
                torch.manual_seed(self.seed_)
                self.nets_ = nn.ModuleDict(self._build_networks_or_explain()).to(self.device_)
                gen = torch.Generator().manual_seed(self.seed_)
                from ganad.training.selection import Selector
                criterion = (lambda: self._selection_criterion(Xval)) if Xval is not None else None
                if ddp is not None and criterion is not None:
                    criterion = ddp.from_rank0(criterion)
                selector = Selector(self.nets_, criterion, ema=self.ema, patience=self.patience)
                t0 = time.perf_counter()
                checkpointer, snapshot = ckpt if ckpt is not None else (None, None)
                if checkpointer is not None:
                    checkpointer.extra = {"seed": self.seed_}
                guard = None
                if self.divergence_guard:
                    from ganad.training.guard import DivergenceGuard
                    guard = DivergenceGuard(self.divergence_lr_factor, self.divergence_retries)
                if ddp is not None:
                    ddp.prepare(self.nets_)
                try:
                    if checkpointer is not None:
                        checkpointer.lock.acquire()
                    self.history_ = train(ddp.stages(self, gen) if ddp is not None else self._stages(gen), Xtr,
                                          batch_size=self._batch_size(Xtr.shape[0]), generator=gen, device=self.device_,
                                          verbose=self.verbose, weight_fn=self._weight_fn(Xtr), selector=selector, ddp=ddp,
                                          callbacks=self.__dict__.get("_train_callbacks"),  # ganad.tune's per-epoch reports
                                          nets=self.nets_, checkpointer=checkpointer,
                                          resume=snapshot[1] if snapshot is not None else None, guard=guard)
                finally:
                    if checkpointer is not None:
                        checkpointer.lock.release()
                    if ddp is not None:
                        ddp.restore(self.nets_)
                self.selection_ = selector.info
                if guard is not None and guard.events:
                    self.selection_["divergence"] = guard.events
                train_s = time.perf_counter() - t0
                if checkpointer is not None:
                    self.checkpoint_ = {"dir": str(checkpointer.dir), "written": checkpointer.n_written,
                                        "seconds": checkpointer.seconds, "resumed": snapshot is not None}
            self.nets_.eval()
            self._check_trained_weights()
            self._fit_extra(Xval if Xval is not None else Xtr)
            self._finish_robust()
            self.disc_train_mean_ = self._fit_disc_train_mean(Xtr)
            self._fit_knn(Xt, val_idx, Xtr, keep=self._robust_kept(val_idx))
            self.calibration_ = {"compose": "fit", "composer": "method default", "threshold": "contamination",
                                 "contamination": float(self.contamination),
                                 "data": "held-out training slice" if Xval is not None else "training"}
            self.composer_ = self._default_composer()
            t1 = time.perf_counter()
            val_res = self._blend_knn(X, val_idx)
            self.default_composer_ = self.composer_  # what calibrate(compose='weights') keeps when given no weights
            self._set_threshold_and_training_scores(X, val_idx, val_res)
            self.timing_ = {"train_s": train_s, "n_train": int(Xtr.shape[0]),
                            "batch_size": min(self._batch_size(Xtr.shape[0]), int(Xtr.shape[0])),  # as the loop batches: at most every row
                            "epochs_run": {k.split("/")[0]: len(v) for k, v in self.history_.items() if "/" in k and not k.startswith("select/")},
                            "score_s": time.perf_counter() - t1}
            return self

    # ------------------------------------------------------------------ issue 13: checkpoints, divergence
    def _checkpoint_setup(self, X, directory, every, seconds, resume, robust):
        """(Checkpointer, (manifest, snapshot) or None) for a run with checkpoints, else None."""
        from ganad.training import checkpoint as ck
        if directory is None:
            if resume:
                raise InputError(_fmt("resume", "is True but no checkpoint_dir is given",
                                      "pass checkpoint_dir (CLI: --checkpoint DIR) naming the checkpoint to resume from"))
            if every is not None or seconds is not None:
                raise InputError(_fmt("checkpoint_every / checkpoint_seconds", "are given without checkpoint_dir",
                                      "pass checkpoint_dir (CLI: --checkpoint DIR) as well"))
            return None
        if int(self.n_members) > 1:
            raise InputError(_fmt("checkpoint_dir", f"is not supported with an ensemble (n_members={self.n_members})",
                                  "train without checkpoints, or checkpoint single models (n_members=1), each a model of its own: "
                                  "ganad does not join separately trained members into one ensemble"))
        if every is not None and (not is_int(every) or every < 1):
            raise InputError(_fmt("checkpoint_every", f"is {every!r}", "pass a positive number of optimisation steps, or None"))
        if seconds is not None and not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds) and seconds > 0):
            raise InputError(_fmt("checkpoint_seconds", f"is {seconds!r}", "pass a positive number of seconds, or None"))
        from pathlib import Path
        d = Path(directory)
        if d.exists() and not d.is_dir():
            raise InputError(_fmt(f"checkpoint_dir {d}", "is a file", "pass a directory (new, or holding a checkpoint to resume)"))
        from ganad.io import MODEL_MARKERS
        held = [m for m in MODEL_MARKERS if (d / m).exists()]
        if held:  # its checkpoint files would sit beside a model, whose next save (calibrate in place) then refuses them
            raise InputError(_fmt(f"checkpoint_dir {d}", f"is a saved model's directory (it holds {held[0]})",
                                  "pass a directory of its own for the checkpoint, e.g. beside the model: model.ckpt/"))
        nets = self._planned_networks(tuple(X.shape[1:]))
        fp = ck.fingerprint(self, X, {"robust": self._robust_fingerprint(robust), **nets})
        loaded = None
        if resume:
            loaded = ck.load(d)
            stored = dict(loaded[0].get("fingerprint") or {})
            extra = stored.get("extra")
            if isinstance(extra, dict) and isinstance(extra.get("robust"), list) and len(extra["robust"]) == 4:
                # a checkpoint written with the options as spelled (before they were normalised) compares the same way
                stored["extra"] = {**extra, "robust": self._robust_fingerprint(extra["robust"])}
            if isinstance(stored.get("extra"), dict) and nets and "width" not in stored["extra"]:
                # written before checkpoints recorded the networks: built with the default widths of that time
                was = stored.get("params") if isinstance(stored.get("params"), dict) else {}
                legacy = self._planned_networks(tuple(X.shape[1:]), LEGACY_DEFAULT_WIDTH.get, was)
                stored["extra"] = {**stored["extra"], **legacy}
            if isinstance(stored.get("params"), dict):  # written before a parameter existed: the value its run had
                stored["params"] = params_as_written(type(self), stored["params"])
            ck.compare_fingerprints(stored, fp, d)
        elif ck.exists(d):
            raise InputError(_fmt(f"checkpoint_dir {d}", "already holds a checkpoint",
                                  "pass resume=True (CLI: --resume) to continue it, or delete it / choose another directory to start afresh"))
        if every is None and seconds is None:
            seconds = 60.0
        try:  # now, not when the first checkpoint is written (after training, with the default 60 s)
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(_fmt(f"checkpoint_dir {d}", f"cannot be created ({exc.strerror or exc})",
                                  "pass a writable directory path (not under a file)")) from exc
        cp = ck.Checkpointer(d, fp, every, seconds)
        cp.lock.acquire()  # refused now, before any work, when another fit writes there; held again while training
        cp.lock.release()
        if loaded is not None:
            cp.seq = int(loaded[0].get("seq", 0))
        return cp, loaded

    def _planned_networks(self, shape: tuple[int, ...], widths=None, params=None) -> dict[str, Any]:
        """The family, width and depth fit will build for samples of ``shape`` (``widths``: the family's
        default width, today's unless given; ``params``: net / width / depth, this detector's unless given),
        for a checkpoint's fingerprint: a default changed between writing a checkpoint and resuming it is
        named, not found as weights of another shape. {} when the shape has no family (fit refuses it
        with its own message)."""
        p = {k: getattr(self, k) for k in ("net", "width", "depth")}
        p.update({k: v for k, v in (params or {}).items() if k in p})
        try:
            fam = resolve_family(p["net"], shape)
        except (TypeError, ValueError):
            return {}
        if p["net"] == "auto" and len(shape) == 2 and self._series_family is not None:
            fam = self._series_family
        width = p["width"] if p["width"] is not None else (widths or default_width)(fam)
        return {"family": fam, "width": width, "depth": p["depth"] if p["depth"] is not None else default_depth(fam, shape)}

    def _robust_fingerprint(self, robust) -> list:
        """The robust fit options (contamination, warmup, mode, proxy) as they train, for a checkpoint's
        fingerprint: every spelling of the same run compares equal (robust training off: the other three
        are unused; warmup None: epochs // 3, at least 1; proxy None: the method's default). Options that
        do not resolve stay as given (and so differ)."""
        from ganad.training.robust import check_robust
        c, warmup, mode, proxy = robust
        if c is None:
            return [None, None, None, None]
        try:
            c, warmup, mode = check_robust(c, max(1, int(self.epochs) // 3) if warmup is None else warmup, mode)
        except (TypeError, ValueError):
            return list(robust)
        return [c, warmup, mode, self._robust_proxy_kind if proxy is None else proxy]

    def _check_trained_weights(self):
        """A model whose weights are not finite would score NaN: stop here, with the cause."""
        from ganad.exceptions import TrainingDiverged
        from ganad.training.checkpoint import finite_weights
        if not finite_weights(self.nets_):
            raise TrainingDiverged(
                f"{type(self).__name__}: training ended with non-finite weights (NaN / inf), so every score would be NaN; "
                "no model was kept. Fix: lower lr_g and lr_d, use objective='wgan-gp' or spectral_norm=True, check the "
                "input scaling, and keep divergence_guard=True")

    # ------------------------------------------------------------------ issue 15: held-out slice, kNN bank, ensembles
    def _holdout(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Seeded split of the training rows into (trained on, held out); no hold-out where it
        would leave fewer than 16 held-out or 16 training samples. The members of an ensemble
        share their ensemble's split."""
        n_val = int(round(float(self.validation_fraction) * n))
        if n_val < HOLDOUT_MIN or n - n_val < HOLDOUT_MIN:
            return np.arange(n), np.arange(0)
        perm = np.random.RandomState(self.__dict__.get("_split_seed", self.seed_) % (2**32 - 1)).permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _warn_small(self, n: int, val_idx: np.ndarray) -> None:
        """Too few samples for a held-out slice (below ``HOLDOUT_MIN`` held-out or training samples):
        scores are then standardised and thresholded on the training samples themselves, which the
        networks have fit, so fresh normal samples score higher than the training ones and more than
        ``contamination`` of them are flagged (docs/training.md, "How much data"). A warning, not an
        error: the model works, its scale and threshold are optimistic. ``validation_fraction=0``
        asks for that on purpose and is not warned about."""
        f = float(self.validation_fraction)
        if len(val_idx) or f <= 0:
            return
        need = next((m for m in range(n, 10**7) if round(f * m) >= HOLDOUT_MIN and m - round(f * m) >= HOLDOUT_MIN), 10**7)
        noun = self.__dict__.get("_sample_noun", "samples")  # a series detector's samples are its windows
        flagged = self.__dict__.get("_flagged_note",  # a series detector thresholds points with its own contamination
                                    f"new normal samples tend to score higher and more than contamination={float(self.contamination):g} of them are flagged")
        warnings.warn(_fmt("X", f"has {n} {noun}, too few for a held-out slice (validation_fraction={f:g} would hold "
                                f"{int(round(f * n))}, fewer than {HOLDOUT_MIN}): the scores are standardised (median / MAD) and the "
                                f"threshold set on the training samples themselves, which the networks have fit, so {flagged}",
                           f"train on at least {need} {noun}, or calibrate the fitted model on separate normal data "
                           "(det.calibrate(X_val); CLI: ganad calibrate)"), UserWarning, stacklevel=3)

    def _fit_ensemble(self, X, robust: dict | None = None) -> "BaseGANDetector":
        """``n_members`` members, each this detector with its own seed, trained on the same split
        (each with ``fit``'s robust-training arguments ``robust``);
        each member's score is standardised by its median / MAD on the held-out slice (or on the
        training data without one) and the ensemble's score is their mean (Han et al., AAAI 2021).

        Per-epoch callbacks (``_train_callbacks``, ganad.tune's pruning reports), which ``clone``
        drops, go to the first member only, each bound to it by its ``bind(member, label)`` where
        it has one (it reads the networks being trained): the members differ only in their seed, so
        the first member's epochs are the trial's per-epoch signal, on the steps a single model
        reports, and a trial stopped there never trains the others (docs/tuning.md, "Pruning")."""
        from sklearn.base import clone

        from ganad.scoring.composition import robust_location_scale
        k = int(self.n_members)
        seeds = member_seeds(self.seed_, k)
        callbacks = self.__dict__.get("_train_callbacks")
        members = []
        for i in range(k):
            m = clone(self).set_params(n_members=1, random_state=seeds[i])
            m._split_seed = self.seed_
            m._layout_given = True  # the ensemble's own fit said it once
            if i == 0 and callbacks:
                m._train_callbacks = [cb.bind(m, f"member 1 of {k}") if hasattr(cb, "bind") else cb for cb in callbacks]
            try:
                members.append(m.fit(X, **(robust or {})))
            finally:
                m.__dict__.pop("_train_callbacks", None)  # never kept (nor saved) with the member
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
        t1 = time.perf_counter()
        self._set_threshold_and_training_scores(X, val_idx)
        # the members' figures summed (they train one after the other), their epochs by member
        self.timing_ = {"train_s": sum(m.timing_["train_s"] for m in members), "n_train": m0.timing_["n_train"],
                        "batch_size": m0.timing_["batch_size"],
                        "epochs_run": {f"member{i}/{s}": e for i, m in enumerate(members) for s, e in m.timing_["epochs_run"].items()},
                        "score_s": sum(m.timing_["score_s"] for m in members) + time.perf_counter() - t1}
        return self

    def _member_scoring_params(self) -> dict[str, Any]:
        """The ensemble's scoring-time parameters (inversion, search_*, n_neighbors, ...) set after fit, which
        reach its members, as ganad.load gives them (structural ones only ever apply to the next fit)."""
        return {k: v for k, v in self.get_params(deep=False).items()
                if k not in ("n_members", "random_state") + self._structure_params}

    def _score_ensemble(self, X, needed, return_map, return_reconstruction, guard_parts=False) -> ScoreResult:
        from ganad.scoring.composition import required_components
        comps, maps, recons = {}, [], []
        res0 = None
        own = self._member_scoring_params()
        for i, (m, (loc, scale)) in enumerate(zip(self.members_, self.member_stats_)):
            m.set_params(**own)
            m.on_nonfinite = self.on_nonfinite
            m.score_batch_size = self.score_batch_size  # set after fit (checked above): every member's network calls
            name = f"member{i}"
            if needed is not None and name not in needed and not (return_map or return_reconstruction):
                continue
            r = m._score(X, required_components(m.composer_), return_map, return_reconstruction, guard_parts=guard_parts)
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

    #: what knn_space='auto' means for the method (see the ``knn_space`` parameter)
    _knn_space_auto = "feature+input"
    #: the family net='auto' builds for series windows (None: ganad.nets.resolve_family's, conv1d)
    _series_family: str | None = None
    #: the space of models saved before ``knn_space`` existed (their JSON state has no ``knn_space``)
    _knn_space_legacy = "code"
    _knn_bank_max = 4096
    #: feature spaces wider than this are compressed (:meth:`_fit_knn_projection`) ...
    _knn_compress_above = 64
    #: ... to at most this many principal directions
    _knn_max_dim = 512
    #: the input block of knn_space='feature+input' keeps at most this many. Fewer would search faster
    #: (inputs with noise in every sample keep hundreds at 99 %), but directions fitted to the bank
    #: rows hold more of those rows than of new data, and with 64 the training rows out-scored new
    #: normal rows: 0.2 % flagged at contamination 0.1 (tests/test_selection.py; RESULTS.md, nineteenth session)
    _knn_input_max_dim = 512
    #: the share of the bank's feature variance the kept principal directions explain
    _knn_variance = 0.99
    #: knn_metric='mahalanobis' on features wider than the bank has rows: the spectrum from the Gram matrix
    _knn_whiten_gram = True

    def _resolve_knn_space(self) -> str:
        return self._knn_space_auto if self.knn_space == "auto" else str(self.knn_space)

    #: what knn_weight='auto' means in each fitted knn space (see the ``knn_weight`` parameter)
    _knn_weight_auto = {"feature+input": 1.0}
    _knn_weight_auto_other = 0.75

    def _knn_weight_now(self, space: str | None = None) -> float:
        """The ``knn_weight`` of the default score: the number given, or for 'auto' the weight chosen
        for the space (``space``, by default the fitted one: 1.0 for 'feature+input', 0.75 for the others)."""
        w = getattr(self, "knn_weight", 0.0)
        if isinstance(w, str):  # 'auto' (the parameter check refuses other strings)
            return float(self._knn_weight_auto.get(space or self._knn_space_now(), self._knn_weight_auto_other))
        return float(w or 0.0)

    def _knn_space_now(self) -> str:
        """The fitted space (``knn_space_``); a model saved before it existed: the space it used."""
        return self.__dict__.get("knn_space_") or self._knn_space_legacy

    def _knn_code(self, x: torch.Tensor, inv: dict | None = None) -> torch.Tensor:
        """The code E(x) of a scaled batch, as (n, d)."""
        e = inv["z"] if inv is not None and not self._search_scoring() else self._encode(x)
        return e.reshape(e.shape[0], -1)

    def _knn_feature(self, x: torch.Tensor, inv: dict | None = None) -> torch.Tensor:
        """The discriminator's features f(x) of a scaled batch, as (n, d) (uncompressed)."""
        e = self._d_out(inv, "x", x)[1] if inv is not None else self._inference_net("D")(x)[1]
        return e.reshape(e.shape[0], -1)

    @staticmethod
    def _knn_input(x: torch.Tensor) -> torch.Tensor:
        """The scaled batch itself, flattened, as (n, d) (knn_space='input')."""
        return x.reshape(x.shape[0], -1).to(torch.float32)

    def _knn_features_kept(self, f: torch.Tensor) -> torch.Tensor:
        return f if self.__dict__.get("knn_basis_") is None else self._knn_embed_rows(f)

    def _knn_input_kept(self, x: torch.Tensor) -> torch.Tensor:
        """knn_space='feature+input': the input block, compressed on its own principal directions
        (``knn_input_center_``, ``knn_input_basis_``) when wider than :attr:`_knn_compress_above`."""
        basis = self.__dict__.get("knn_input_basis_")
        if basis is None:
            return x.to(torch.float32)
        return self._knn_embed_rows(x, self.knn_input_center_, basis, None, torch.float64)

    def _knn_embed(self, x: torch.Tensor, inv: dict | None = None) -> torch.Tensor:
        """The representation the ``knn`` component compares (scaled batch -> (n, k)). Wide feature
        spaces are compressed: the coordinates on the bank's principal directions plus, as one more
        coordinate, the length of what those directions leave out (:meth:`_fit_knn_projection`).
        'both': the code, then the (compressed) features, side by side (searched separately)."""
        space = self._knn_space_now()
        if space == "code":
            return self._knn_features_kept(self._knn_code(x, inv))
        if space == "input":
            return self._knn_features_kept(self._knn_input(x))
        if space == "feature+input":  # the whitened features, then the (compressed) input
            return torch.cat([self._knn_embed_rows(self._knn_feature(x, inv)), self._knn_input_kept(self._knn_input(x))], dim=1)
        f = self._knn_features_kept(self._knn_feature(x, inv))
        if space == "feature":
            return f
        return torch.cat([self._knn_code(x, inv).to(f.dtype), f], dim=1)

    def _fit_knn_projection(self, F: torch.Tensor, prefix: str = "knn_") -> None:
        """For a feature space wider than :attr:`_knn_compress_above`: the bank's mean and its principal
        directions explaining :attr:`_knn_variance` of the variance (at most :attr:`_knn_max_dim`).
        A sample is then compared by its coordinates on them and by the length of its remainder off
        them, so a sample unlike the bank in a direction the bank does not vary in stays far from it:
        the distance is a lower bound of the full one that loses only the bank's own small
        remainders, and the search costs a fraction of the full width's."""
        self.__dict__.pop(f"{prefix}basis_", None)
        self.__dict__.pop(f"{prefix}center_", None)
        if F.shape[1] <= self._knn_compress_above or F.shape[0] < 2:
            return
        F = F.double()
        mu = F.mean(0)
        C = F - mu
        n, d = C.shape
        if d > n:
            # wider than the bank has rows (long multichannel windows, images): the same nonzero
            # spectrum from the n x n Gram matrix, directions C' u / sqrt(lambda); a d x d covariance
            # would cost O(n d^2) and its eigendecomposition O(d^3) (19 s at d = 4,096, minutes beyond)
            vals, U = torch.linalg.eigh(C @ C.T)
            vals, U = vals.flip(0).clamp_min(0), U.flip(1)
            keep = vals > 1e-12 * max(float(vals[0]), 1e-300)
            vals, U = vals[keep], U[:, keep]
            vecs = None
        else:
            vals, vecs = torch.linalg.eigh(C.T @ C)
            vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
        share = vals.cumsum(0) / vals.sum().clamp_min(1e-300)
        max_dim = self._knn_input_max_dim if prefix == "knn_input_" else self._knn_max_dim
        r = int(min(max_dim, int((share < self._knn_variance).sum()) + 1, vals.shape[0]))
        # from the Gram matrix: only the r directions kept are formed (all n of them, d x n doubles, reach gigabytes)
        V = vecs[:, :r] if vecs is not None else (C.T @ U[:, :r]) / vals[:r].sqrt()
        V = V * torch.where(V.sum(0) < 0, -1.0, 1.0)  # a fixed sign per direction: the same basis whatever eigh returns
        setattr(self, f"{prefix}center_", mu.float().contiguous())
        setattr(self, f"{prefix}basis_", V.float().contiguous())

    def _fit_knn_whitening(self, F: torch.Tensor) -> torch.Tensor:
        """knn_metric='mahalanobis': the bank's mean, its principal directions (all of them, at most
        :attr:`_knn_max_dim`) and the whitening scales 1/√λ of the Ledoit–Wolf shrunk covariance
        (``knn_center_``, ``knn_basis_``, ``knn_scale_``; what the first directions leave out counts
        as one more coordinate, scaled by the mean shrunk variance of the directions left out). The
        embedding of a sample is then its whitened offset from the mean, and the "bank" is that
        mean, the origin: the distance to it is the Mahalanobis distance. Returns that bank."""
        from sklearn.covariance import ledoit_wolf_shrinkage
        F = F.double()
        n, d = F.shape
        mu = F.mean(0)
        C = F - mu
        gram = d > n and self._knn_whiten_gram
        G = C @ C.T if gram else None
        a = (1.0 if n <= 1 else _ledoit_wolf_from_gram(G, d) if G is not None
             else float(ledoit_wolf_shrinkage(C.numpy(), assume_centered=True)))
        if G is not None:
            # wider than the bank has rows (the features of large images): S has at most n - 1 nonzero
            # eigenvalues, found from the n x n Gram matrix (directions C' u / sqrt(n lambda)); the d x d
            # eigendecomposition took 94 s at 100 x 100 x 3 images and grows as d^3. The directions S
            # does not vary in share one shrunk variance, so whether they are kept as coordinates or
            # left to the remainder coordinate, the distance is the same.
            g, U = torch.linalg.eigh(G / n)
            g, U = g.flip(0).clamp_min(0), U.flip(1)
            keep = g > 1e-12 * max(float(g[0]), 1e-300)
            g, U = g[keep], U[:, keep]
            vals = torch.cat([g, g.new_zeros(d - g.shape[0])])
            top = min(g.shape[0], self._knn_max_dim)  # only the directions kept: d x n doubles reach gigabytes
            vecs = (C.T @ U[:, :top]) / (n * g[:top]).sqrt()
            if vecs.shape[1] == 0:  # every bank row the same: one direction, of no variance
                vecs = torch.zeros(d, 1, dtype=C.dtype)
                vecs[0, 0] = 1.0
        else:
            vals, vecs = torch.linalg.eigh(C.T @ C / max(n, 1))
            vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
        lam = (1.0 - a) * vals + a * vals.sum() / d
        lam = lam.clamp_min(1e-12 * max(float(lam.max()), 1e-12))
        r = int(min(d, self._knn_max_dim, vecs.shape[1]))
        V = vecs[:, :r]
        V = V * torch.where(V.sum(0) < 0, -1.0, 1.0)
        rest = 0.0 if r == d else float(1.0 / lam[r:].mean().sqrt())
        self.knn_center_ = mu.float().contiguous()
        self.knn_basis_ = V.float().contiguous()
        self.knn_scale_ = torch.cat([1.0 / lam[:r].sqrt(), lam.new_tensor([rest])]).float().contiguous()
        self.__dict__.pop("_knn_own", None)
        if n > 2:
            # Leave-one-out for the bank's own rows (in memory only, used while fit scores its data):
            # with a and the shrinkage target a·tr(S)/d fixed, removing row i (offset c from the mean)
            # gives Σ_-i = B − β c cᵀ, B = (1 − a)·n/(n − 1)·S + a·tr(S)/d·I (same eigenvectors as S,
            # eigenvalues b), β = (1 − a)·n/(n − 1)², and its offset from the other rows' mean is
            # c·n/(n − 1); by Sherman–Morrison d²_-i = (n/(n − 1))²·q/(1 − β q), q = cᵀB⁻¹c =
            # Σ_k (λ_k/b_k)·e_k² for the whitened embedding e (what the rest leaves out: its mean λ, b).
            b = (1.0 - a) * n / (n - 1) * vals + a * vals.sum() / d
            b = b.clamp_min(1e-12 * max(float(b.max()), 1e-12))
            ratio = lam[:r] / b[:r]
            ratio_rest = lam.new_tensor([float(lam[r:].mean() / b[r:].mean()) if r < d else 0.0])
            white = self._knn_embed_rows(F.float()).double()  # the bank rows' own embeddings, to recognise them
            self._knn_own: dict[str, Any] = {"rows": white, "norms": white.square().sum(1), "ratio": torch.cat([ratio, ratio_rest]),
                             "n": float(n), "beta": (1.0 - a) * n / (n - 1) ** 2}
        return torch.zeros(1, r + 1)

    #: what knn_metric='auto' means in each space (see the ``knn_metric`` parameter)
    _knn_metric_auto = {"feature": "mahalanobis", "code": "euclidean", "both": "euclidean", "input": "euclidean",
                        "feature+input": "mahalanobis+euclidean"}

    def _resolve_knn_metric(self, space: str) -> str:
        return self._knn_metric_auto[space] if self.knn_metric == "auto" else str(self.knn_metric)

    def _knn_metric_now(self) -> str:
        """The fitted metric; models saved before ``knn_metric`` existed: 'euclidean'."""
        return self.__dict__.get("knn_metric_") or "euclidean"

    def _fit_knn_bank(self, Xtr: torch.Tensor, rows: np.ndarray | None = None):
        """The bank's embeddings of at most :attr:`_knn_bank_max` rows of ``Xtr`` (``rows``: the
        positions of ``Xtr``'s rows among the trained rows, where it is a subset of them)."""
        self.knn_space_ = self._resolve_knn_space()
        self.knn_metric_ = self._resolve_knn_metric(self.knn_space_)
        for key in ("knn_basis_", "knn_center_", "knn_scale_"):
            self.__dict__.pop(key, None)
        n = Xtr.shape[0]
        idx = torch.from_numpy(np.sort(np.random.RandomState(self.seed_ % (2**32 - 1) + 7).permutation(n)[:self._knn_bank_max]))
        self._knn_bank_index = idx.numpy() if rows is None else np.asarray(rows)[idx.numpy()]
        X = Xtr[idx]
        bs = int(self.score_batch_size)
        self.__dict__.pop("knn_split_", None)
        self.__dict__.pop("knn_scales_", None)
        self.__dict__.pop("knn_typical_", None)
        # the blocks chosen for the previous bank (knn_space='auto'): a bank of another space has none, and a
        # model saved with them beside a space other than 'feature+input' would not load
        self.__dict__.pop("knn_blocks_", None)
        self.__dict__.pop("knn_selection_", None)
        space = self.knn_space_
        for key in ("knn_input_basis_", "knn_input_center_"):
            self.__dict__.pop(key, None)
        codes, feats, inputs = [], [], []
        with torch.inference_mode():
            for i in range(0, X.shape[0], bs):
                xb = X[i:i + bs].to(self.device_)
                if space in ("code", "both"):
                    codes.append(self._knn_code(xb).float().cpu())
                if space in ("feature", "both", "feature+input"):
                    feats.append(self._knn_feature(xb).float().cpu())
                if space == "input":  # compressed and searched as the features are
                    feats.append(self._knn_input(xb).cpu())
                if space == "feature+input":
                    inputs.append(self._knn_input(xb).cpu())
            if space == "feature+input":
                # the features' Mahalanobis distance (whitening: knn_center_, knn_basis_, knn_scale_,
                # the bank rows' leave-one-out) beside a Euclidean search among the inputs, whose
                # bank is knn_bank_ (compressed on knn_input_basis_ above 64 numbers)
                white = self._fit_knn_whitening(torch.cat(feats))
                self.knn_split_ = int(white.shape[1])
                raw = torch.cat(inputs)
                self._fit_knn_projection(raw, prefix="knn_input_")
                return torch.cat([self._knn_input_kept(raw[i:i + bs]) for i in range(0, raw.shape[0], bs)])
            if self.knn_metric_ == "mahalanobis":
                return self._fit_knn_whitening(torch.cat(codes if space == "code" else feats))
            if space == "code":
                return torch.cat(codes)
            raw = torch.cat(feats)
            self._fit_knn_projection(raw)
            kept = torch.cat([self._knn_features_kept(raw[i:i + bs]) for i in range(0, raw.shape[0], bs)])
            if space in ("feature", "input"):
                return kept
            code = torch.cat(codes)
            self.knn_split_ = int(code.shape[1])
            return torch.cat([code, kept], dim=1)

    def _fit_knn(self, Xt: torch.Tensor, val_idx: np.ndarray, Xtr: torch.Tensor | None = None, keep: np.ndarray | None = None) -> None:
        """The knn bank (and, for 'both', the two distances' scales) from the scaled data ``Xt``
        that fit was given; ``Xtr`` = its rows outside the held-out slice ``val_idx``; ``keep``: which
        of them the bank may hold (robust training: the rows it kept, see :meth:`_robust_kept`)."""
        if Xtr is None:
            Xtr = Xt[torch.from_numpy(np.setdiff1d(np.arange(Xt.shape[0]), val_idx))] if len(val_idx) else Xt
        if keep is not None and not keep.all():
            rows = np.flatnonzero(keep)
            self.knn_bank_ = self._fit_knn_bank(Xtr[torch.from_numpy(rows)], rows)
        else:
            self.knn_bank_ = self._fit_knn_bank(Xtr)
        self._fit_knn_scales(Xt, val_idx)

    def _robust_kept(self, val_idx: np.ndarray) -> np.ndarray | None:
        """Robust training: the trained rows whose final weight is at least 0.5 (hard mode: the rows
        it did not exclude), the rows the knn bank may hold. The default score is the distance to the
        bank; a row robust training threw out as an anomaly, kept in the bank, made a test anomaly like
        it find it as its neighbour and score as normal (the robust fit scored like the plain one).
        None without robust training, or where too few rows would be left for the search."""
        w = self.__dict__.get("robust_weights_")
        if w is None:
            return None
        trained = np.delete(np.asarray(w), val_idx) if len(val_idx) else np.asarray(w)
        keep = trained >= 0.5
        return keep if keep.sum() > max(int(self.n_neighbors), 1) else None

    def _refit_knn(self, X) -> None:
        """Rebuild the knn bank for the current ``knn_space`` on the trained networks, from the same
        ``X`` fit was given (benchmarks compare the spaces on one set of networks; the composer is
        not refitted). Needs the fitted ``validation_index_``, which model files do not keep."""
        val_idx = np.asarray(self.validation_index_)
        # robust training's bank holds only the rows it kept, as fit built it
        self._fit_knn(torch.from_numpy(self.scaler_.transform(np.asarray(X))), val_idx, keep=self._robust_kept(val_idx))

    @contextlib.contextmanager
    def _knn_reference(self, X, val_idx):
        """The rows that standardise the knn component: the held-out slice, or without one the
        bank's own rows, scored as fit scores its data (:meth:`_scoring_training_rows`: each row
        leaves its own entry out of the Euclidean neighbours and of the Mahalanobis mean and
        covariance)."""
        if len(val_idx):
            yield X[val_idx]
            return
        with self._scoring_training_rows():
            yield X[self._knn_bank_index]

    def _fit_knn_scales(self, X: torch.Tensor, val_idx: np.ndarray) -> None:
        """knn_space='both': the typical size (median / MAD scale) of the code and of the feature
        distance on the held-out slice (no slice: the bank's own rows, each leaving itself out), by
        which each is divided before the two are averaged, so that each counts the same."""
        if self.__dict__.get("knn_split_") is None:
            return
        from ganad.scoring.composition import robust_location_scale
        bs = int(self.score_batch_size)
        parts = []
        with self._knn_reference(X, val_idx) as ref, torch.inference_mode():
            for i in range(0, ref.shape[0], bs):
                emb = self._knn_embed(ref[i:i + bs].to(self.device_))
                parts.append(torch.stack(self._knn_block_distances(emb), dim=1).double().cpu())
        ref_d = torch.cat(parts).numpy()
        loc, scale = robust_location_scale(ref_d)
        self.knn_scales_ = [float(v) for v in scale]
        if self._knn_space_now() == "feature+input" and self._knn_two_sided:
            self.knn_typical_ = float(loc[0])
        self._select_knn_blocks(X, val_idx, ref_d)

    #: knn_space='feature+input': the features' Mahalanobis distance is read as a two-sided typicality test,
    #: |d - m| with m its median on the held-out slice (``knn_typical_``), so that features *more* central
    #: than held-out normal rows' count as far too (Nalisnick et al. 2019, "Detecting out-of-distribution
    #: inputs to deep generative models using typicality"): GANomaly's discriminator maps samples between the
    #: modes of normal data of several modes among the training features, closer to their mean than held-out
    #: normal rows. Chosen on validation data by a rule written before the run (benchmarks/RESULTS.md,
    #: thirty-first session). Models fitted before it have no ``knn_typical_`` and score one-sided, as fitted.
    _knn_two_sided = True

    def _knn_feature_block(self, d: torch.Tensor) -> torch.Tensor:
        """The features' distance as the ``knn`` component reads it: |d - knn_typical_| where the fit set
        that median (two-sided), else d."""
        m = self.__dict__.get("knn_typical_")
        return d if m is None else (d - float(m)).abs()

    #: knn_space='auto' resolved to 'feature+input': a single block replaces the two blocks' mean only
    #: where its AUROC on the synthetic anomalies is higher by more than this (ties keep both)
    _knn_select_margin = 0.005
    #: ... and only with at least this many held-out rows: the choice was validated on slices of 400 rows
    #: and more; on fewer than 32 an AUROC's standard error (> 0.04) is many times the margin
    _knn_select_min_rows = 32
    #: the single blocks that may replace both: the inputs' distance alone, the remedy for the feature block's
    #: blind spot on normal data of several modes. The features' distance alone was a candidate (twenty-eighth
    #: session) until validation at 30 epochs showed its switches losing (MNIST training split: 4 of 4, 0.0005 to
    #: 0.0135; benchmarks/RESULTS.md, twenty-ninth session); its AUROC is still measured and saved.
    _knn_select_candidates = ("input",)

    def _select_knn_blocks(self, X: torch.Tensor, val_idx: np.ndarray, ref_d: np.ndarray) -> None:
        """knn_space='auto' resolved to 'feature+input' (the default of GANomaly, f-AnoGAN, β-VAEGAN and
        AnoGAN): which of the two distances the ``knn`` component reads, chosen per fit without labels.

        The candidates are both blocks (the mean of the two standardised distances, the default) and the
        inputs' kNN distance alone (:attr:`_knn_select_candidates`; the features' Mahalanobis distance alone
        is measured and recorded too, no longer a candidate since the twenty-ninth session). Each is scored on the
        held-out slice and on one corrupted copy of each slice row (:func:`ganad.scoring.synthetic.synthetic_anomalies`:
        features swapped in from other slice rows or noised, the label-free objective of ``ganad tune``),
        standardised by median / MAD on the slice; a single block replaces both where its AUROC between
        the slice and its copies is higher by more than :attr:`_knn_select_margin`. On normal data of
        several modes D's features can place samples between the modes among the training samples' features
        (the default's blind spot; a local distance in the features does not remove it, benchmarks/RESULTS.md),
        where the inputs' distance alone is the better score. Chosen on
        validation data by rules written before the runs (DS1 held-out records, the MNIST training split,
        synthetic tables of several modes; ``benchmarks/select_knn_space.py``, twenty-eighth and twenty-ninth
        sessions). Sets ``knn_blocks_`` ('both' or 'input'; model files of the twenty-eighth session may hold
        'feature', which still scores as fitted) and ``knn_selection_`` (the three AUROCs, saved with the model)."""
        self.__dict__.pop("knn_blocks_", None)
        self.__dict__.pop("knn_selection_", None)
        if self.knn_space != "auto" or self.knn_space_ != "feature+input" or len(val_idx) < self._knn_select_min_rows:
            return
        from ganad.scoring.composition import robust_location_scale
        from ganad.scoring.synthetic import auroc, synthetic_anomalies
        slice_rows = X[torch.from_numpy(np.asarray(val_idx))]
        syn = torch.from_numpy(synthetic_anomalies(slice_rows.numpy(), seed=int(self.seed_) % (2**31)).astype(np.float32))
        bs = int(self.score_batch_size)
        parts = []
        with torch.inference_mode():
            for i in range(0, syn.shape[0], bs):
                emb = self._knn_embed(syn[i:i + bs].to(self.device_))
                parts.append(torch.stack(self._knn_block_distances(emb), dim=1).double().cpu())
        syn_d = torch.cat(parts).numpy()
        loc, scale = robust_location_scale(ref_d)
        z = (np.concatenate([ref_d, syn_d]) - loc) / scale
        if self.__dict__.get("knn_typical_") is not None:  # the features' block as scoring reads it: two-sided
            z[:, 0] = np.abs(z[:, 0])
        y = np.r_[np.zeros(len(ref_d)), np.ones(len(syn_d))]
        cand = {"both": z.mean(1), "input": z[:, 1], "feature": z[:, 0]}
        auc = {}
        for name, s in cand.items():
            try:
                auc[name] = auroc(y, s)
            except FloatingPointError:  # an overflowing distance: that candidate cannot be judged
                auc[name] = float("nan")
        chosen = "both"
        for name in self._knn_select_candidates:
            if np.isfinite(auc[name]) and np.isfinite(auc["both"]) and auc[name] > max(auc[chosen], auc["both"] + self._knn_select_margin):
                chosen = name
        self.knn_blocks_ = chosen
        self.knn_selection_ = {"synthetic_auroc": {k: (round(float(v), 6) if np.isfinite(v) else None) for k, v in auc.items()},
                               "chosen": chosen, "rows": int(len(ref_d))}

    def _knn_embed_rows(self, e: torch.Tensor, center=None, basis=None, scale=None, work=None) -> torch.Tensor:
        """Raw (n, d) features -> (n, r + 1): coordinates on the kept directions, length of the rest
        (knn_metric='mahalanobis': each divided by its shrunk standard deviation, ``knn_scale_``).
        ``center`` / ``basis`` / ``scale`` / ``work``: another projection than the fitted ``knn_*``
        one (the input block of knn_space='feature+input')."""
        if basis is None:
            center, basis, scale = self.knn_center_, self.knn_basis_, self.__dict__.get("knn_scale_")
        c = e.to(torch.float32) - center.to(e.device)
        basis = basis.to(e.device)
        if work is None:  # knn_space='input' projects in float64 (see below), the whitening of a narrow space too
            work = torch.float64 if self._knn_space_now() == "input" else torch.float32
        if scale is not None and basis.shape[0] == basis.shape[1] and float(scale[-1]) == 0.0:
            # every direction kept (the Mahalanobis whitening of a narrow space): nothing is left
            # out, and the remainder's coordinate is scaled by 0 whatever rounding leaves in it
            p = dense.matmul(c.to(work), basis.to(work)).to(torch.float32)
            return torch.cat([p, p.new_zeros(p.shape[0], 1)], dim=1) * scale.to(e.device)
        # the length of the remainder itself, not sqrt(|c|² − |p|²): where the kept directions hold
        # (nearly) all of a row (low-rank data, e.g. clean periodic windows) that difference is
        # cancellation noise, and a training row no longer recognised its own bank entry (leave-one-out).
        # knn_space='input' (a classical kNN on the data, the series default) projects in float64,
        # rounded to float32 once, so that a row's embedding does not depend on the batch it arrives in
        # (float32 products round differently for different row counts: a stream fed point by point
        # differed from batch scoring by ~1e-6); the learned spaces keep the float32 rate (the MNIST
        # DCGAN's 3,136 features: float64 made scoring 1.4x slower)
        cw, bw = c.to(work), basis.to(work)
        p = dense.matmul(cw, bw)  # float32: oneDNN's kernels for a wide basis (ganad.runtime.dense)
        rest = torch.linalg.vector_norm(cw - dense.matmul(p, bw, transposed=True), dim=1)
        out = torch.cat([p, rest[:, None]], dim=1).to(torch.float32)
        return out if scale is None else out * scale.to(e.device)

    #: bank columns per group of the two-stage nearest-neighbour search in :meth:`_knn_distance`
    _knn_group = 64

    def _knn_plan(self, device: torch.device, cols: tuple[int, int] | None = None) -> dict:
        """The bank (or its columns ``cols``) prepared for :meth:`_knn_distance` (cached per bank
        object, device and columns): centred on its mean (float32 distances then lose little to
        cancellation), padded to whole groups of :attr:`_knn_group` columns whose padding is never
        nearest (squared norm +inf), plus the bank in float64 for the exact distances of the chosen
        neighbours."""
        bank = self.knn_bank_
        caches = self.__dict__.get("_knn_cache")
        if not isinstance(caches, dict) or caches.get("bank") is not bank or caches.get("device") != device:
            caches = {"bank": bank, "device": device}
            self.__dict__["_knn_cache"] = caches
        if cols in caches:
            return caches[cols]
        if cols is not None:
            bank = bank[:, cols[0]:cols[1]]
        b = bank.to(device, torch.float32).contiguous()
        nb, dim = b.shape
        s = self._knn_group
        groups = -(-nb // s)
        pad = groups * s - nb
        mu = b.double().mean(0).float()  # float64 sum: the same centre whatever the layout or thread count
        bc = b - mu
        plan = {"mu": mu, "groups": groups, "size": s,
                "centred": torch.cat([bc, bc.new_zeros(pad, dim)]),
                "norms": torch.cat([(bc * bc).sum(1), bc.new_full((pad,), float("inf"))]),
                "exact": torch.cat([b, b.new_zeros(pad, dim)]).to(torch.float64)}
        caches[cols] = plan
        return plan

    def _knn_distance(self, emb: torch.Tensor) -> torch.Tensor:
        """Mean Euclidean distance of each row of ``emb`` to its ``n_neighbors`` nearest bank codes.

        Exact neighbours, found in two stages: squared distances to the (centred) bank as one float32
        matrix multiply, |b|² − 2 e·b (|e|² is the same along a row, so it does not change the order);
        the minimum of each group of :attr:`_knn_group` bank columns; the k groups with the smallest
        minima hold the k nearest codes (each of those minima is a distinct code at most as far as any
        code of another group), so the k nearest are chosen among those k groups' columns only. The
        chosen neighbours' distances are then computed directly in float64 (no cancellation). Two
        light passes over the (n, bank) matrix instead of a top-k over all of it; exportable to ONNX."""
        if self.__dict__.get("knn_split_") is not None:  # knn_space='both' or 'feature+input'
            sc = self.__dict__.get("knn_scales_") or [1.0, 1.0]
            blocks = self.__dict__.get("knn_blocks_") or "both"  # chosen at fit (_select_knn_blocks)
            if blocks != "both":  # one block read: the other is not computed (the input block is a search)
                k, e, own = int(self.knn_split_), emb.reshape(emb.shape[0], -1), self._knn_leaves_own()
                if blocks == "input":
                    return self._knn_nearest(e[:, k:], None, own) / sc[1]
                return self._knn_feature_block(self._knn_whitened_length(e[:, :k], own)) / sc[0]
            d_a, d_b = self._knn_block_distances(emb)  # knn_typical_ exists for 'feature+input' only ('both': codes first)
            return 0.5 * (self._knn_feature_block(d_a) / sc[0] + d_b / sc[1])
        return self._knn_search(emb, None)

    def _knn_block_distances(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """knn_space='both': the code distance and the feature distance, each from its own search.
        'feature+input': the features' Mahalanobis distance (the whitened block's length; training
        rows measured against the other rows' mean and covariance) and the Euclidean search among the
        inputs (``knn_bank_`` holds the input block only)."""
        k = int(self.knn_split_)
        if self._knn_space_now() == "feature+input":
            e = emb.reshape(emb.shape[0], -1)
            own = self._knn_leaves_own()
            return self._knn_whitened_length(e[:, :k], own), self._knn_nearest(e[:, k:], None, own)
        d = self.knn_bank_.shape[1]
        return self._knn_search(emb[:, :k], (0, k)), self._knn_search(emb[:, k:], (k, d))

    def _knn_search(self, emb: torch.Tensor, cols: tuple[int, int] | None) -> torch.Tensor:
        own = self._knn_leaves_own()  # scoring fit's data: skip a row's own bank entry
        if self._knn_metric_now() == "mahalanobis" and self.knn_bank_.shape[0] == 1:
            return self._knn_whitened_length(emb, own)
        return self._knn_nearest(emb, cols, own)

    def _knn_whitened_length(self, emb: torch.Tensor, own: int) -> torch.Tensor:
        """The Mahalanobis distance of whitened embeddings: the bank is the whitened mean, the origin,
        so the distance is the embedding's length, with no search (the same float64 sum the search
        ends with for its one row); ``own``: a training row is measured against the other rows'
        mean and covariance (:meth:`_knn_mahalanobis_own`)."""
        d2 = emb.reshape(emb.shape[0], -1).to(torch.float64).square().sum(1)
        if own and self.__dict__.get("_knn_own") is not None:
            return self._knn_mahalanobis_own(emb, d2)
        return d2.sqrt()

    def _knn_nearest(self, emb: torch.Tensor, cols: tuple[int, int] | None, own: int) -> torch.Tensor:
        """The search itself (see :meth:`_knn_distance`); ``own``: leave a training row's own entry out."""
        plan = self._knn_plan(emb.device, cols)
        k = min(int(self.n_neighbors) + own, self.knn_bank_.shape[0])
        e = emb.reshape(emb.shape[0], -1).to(torch.float32)
        d2 = torch.addmm(plan["norms"][None, :], e - plan["mu"], plan["centred"].T, alpha=-2.0)
        groups, s = plan["groups"], plan["size"]
        if groups > k:
            g = d2.reshape(-1, groups, s)
            top_g = g.amin(2).topk(k, dim=1, largest=False).indices  # (n, k) groups
            cand = torch.gather(g, 1, top_g[:, :, None].expand(-1, -1, s)).reshape(-1, k * s)
            ci = cand.topk(k, dim=1, largest=False).indices
            col = torch.gather(top_g, 1, torch.div(ci, s, rounding_mode="floor")) * s + ci % s
        else:
            col = d2.topk(k, dim=1, largest=False).indices
        e64 = emb.reshape(emb.shape[0], -1).to(torch.float64)
        near = (e64[:, None, :] - plan["exact"][col]).square().sum(2)
        # a copy of a bank row, embedded by the networks in another batch, lands at the rounding of the
        # float32 pass (1e-8 in a code space): distance 0, by the rule that recognises a row as itself.
        # Kept as noise, a slice of such copies (binary data with many duplicate rows) gave the knn
        # component a MAD of 1e-7, which blew it up 1e7 times in the blend and made a row's score
        # depend on its batch. (The input spaces are exact in float64: their copies are at 0 already.)
        if self._knn_space_now() not in ("input", "feature+input"):
            near = torch.where(near <= 1e-9 * (1.0 + e64.square().sum(1, keepdim=True)), torch.zeros_like(near), near)
        # ascending: the mean sums in one order whatever order the search returned them in, so equal
        # inputs give bit-equal scores (a saved and reloaded model's scores equal the original's)
        near = near.sort(1).values
        if own and near.shape[1] > 1:
            # a training row in the bank finds itself at distance 0 (up to the rounding of two passes
            # through the networks): leave that entry out, as PyOD's KNN does for its training scores;
            # a row outside the bank (held out, or beyond the bank's 4,096) keeps its k nearest
            itself = _is_itself(near[:, 0], emb.reshape(emb.shape[0], -1).to(torch.float64))
            if k <= int(self.n_neighbors):  # n_neighbors >= the bank's rows: no extra entry was searched, and
                # a row outside the bank keeps all k (as new data do), a row in the bank the k - 1 others
                return torch.where(itself, near[:, 1:].sqrt().mean(1), near.sqrt().mean(1))
            near = torch.where(itself[:, None], near[:, 1:], near[:, :-1])
        return near.sqrt().mean(1)

    def _knn_mahalanobis_own(self, emb: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
        """knn_metric='mahalanobis' while fit scores its own data: a row that is one of the rows the
        mean and covariance were estimated from (recognised by its embedding, as the Euclidean search
        recognises itself at distance 0) is measured against the mean and covariance of the *other*
        rows (closed form, see :meth:`_fit_knn_whitening`); measured against estimates it shaped, its
        distance, and ``threshold_`` with it, would be lower than those of new normal data. Other
        rows keep their distance ``d2`` (squared)."""
        own = self._knn_own
        e = emb.reshape(emb.shape[0], -1).to(torch.float64)
        rows: torch.Tensor = own["rows"].to(e.device)
        norms: torch.Tensor = own["norms"].to(e.device)
        ratio: torch.Tensor = own["ratio"].to(e.device)
        # the nearest bank rows in float32 (one matrix product at the float32 rate; a few candidates,
        # as rounding can reorder rows closer than it resolves), their distances then exactly in
        # float64: a row of the bank finds itself at 0 (near-duplicates count as itself)
        cand = (norms.float()[None, :] - 2.0 * e.float() @ rows.float().T).topk(min(4, rows.shape[0]), dim=1, largest=False).indices
        itself = _is_itself((e[:, None, :] - rows[cand]).square().sum(2).amin(1), e)
        n, beta = float(own["n"]), float(own["beta"])
        q = (e.square() * ratio).sum(1)
        loo = (n / (n - 1.0)) ** 2 * q / (1.0 - beta * q).clamp_min(1e-12)
        return torch.where(itself, loo, d2).sqrt()

    @contextlib.contextmanager
    def _scoring_training_rows(self):
        """Score the data ``fit`` was given (``decision_scores_``, ``threshold_``): with the Euclidean
        ``knn`` component, a row that is in the bank would count itself among its own neighbours at
        distance 0, so training scores, and ``threshold_`` with them, would be lower than the scores
        of new normal data. Inside this block each such row leaves its own entry out (PyOD's KNN
        scores its training rows the same way); members of an ensemble alike.

        The mark is the calling thread's own (a per-thread set of detectors): on the instance, another
        thread scoring new data meanwhile (a first ``decision_scores_`` read while a service scores) left
        out the nearest bank entry of its rows too, and got other scores."""
        dets = [self, *self.__dict__.get("members_", [])]
        marked = _training_rows_marks()
        added = [id(d) for d in dets if id(d) not in marked]
        marked.update(added)
        try:
            yield
        finally:
            marked.difference_update(added)

    def _knn_leaves_own(self) -> int:
        """1 inside :meth:`_scoring_training_rows` in this thread (each row skips its own bank entry), else 0."""
        return int(id(self) in _training_rows_marks())

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
        w = self._knn_weight_now()
        if w <= 0 or self.__dict__.get("knn_bank_") is None:
            return None if not len(val_idx) else self._score(X[val_idx], None)
        with self._knn_reference(X, val_idx) as ref:
            if self._search_scoring() and w == 1.0 and self._scores_without_inversion(["knn"], False, False):
                # AnoGAN's default score reads the knn component alone: the latent search over the
                # reference rows would run for nothing (the own score's standardisation counts 0 at weight 1)
                from ganad.scoring.composition import WeightedSum
                res = self._score(ref, ["knn"], composer=WeightedSum({"knn": 1.0}))
                self.composer_ = KnnBlend.fit(self.composer_, res.components, w, own=False)
            else:
                res = self._score(ref, None)
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
        from ganad.scoring.composition import required_components
        self._threshold_scored_with = self._scoring_key()
        needed = required_components(self.composer_)
        cheap = self._scores_without_inversion(needed, False, False)  # the default score reads no inversion
        if len(val_idx):
            self.validation_scores_ = (val_res if val_res is not None else self._score(X[val_idx], needed if cheap else None)).scores
        if self._search_scoring() and cheap:
            # every training row's score without a search (AnoGAN's default score: the knn component);
            # _train_ref stays, so a calibration whose score needs the search computes it on first access
            with self._scoring_training_rows():
                res = self._score(X, needed)
            self._train_ref = X
            self._train_components, self._train_components_partial = res.components, True
            self._decision_scores = res.scores
            self.threshold_ = contamination_threshold(res.scores, self.contamination, "training scores")
            return
        if self._search_scoring():
            self._train_ref = X  # decision_scores_ on first access: the search is per sample and costly
            n = X.shape[0]
            if n > self._threshold_sample:
                idx = np.sort(np.random.RandomState(self.seed_ % (2**32 - 1) + 11).permutation(n)[:self._threshold_sample])
                with self._scoring_training_rows():
                    sample = self._score(X[idx], None).scores
            else:
                sample = self.decision_scores_
            self.threshold_ = contamination_threshold(sample, self.contamination, "training scores (a seeded sample of the rows)")
            return
        with self._scoring_training_rows():
            res = self._score(X, None)
        self._train_components = res.components  # in memory only: lets calibrate() rescore the training set
        self._decision_scores = res.scores
        self.threshold_ = contamination_threshold(res.scores, self.contamination, "training scores")

    @property
    def decision_scores_(self) -> np.ndarray:
        """Scores of the training data (PyOD). For latent-search methods computed on first access."""
        d = self.__dict__
        if "_decision_scores" not in d:
            X = d.get("_train_ref")
            if X is None:
                if "threshold_" in d:  # fitted, then saved and loaded before the scores were first read
                    raise AttributeError(_fmt("decision_scores_", "are not in this model: a latent-search model computes its training "
                                                                  "scores on first access, and it was saved before they were read (the "
                                                                  "training data is not kept in the model file)",
                                              "read det.decision_scores_ before det.save(...), or score the training data with "
                                              "det.decision_function(X_train)"))
                raise AttributeError("decision_scores_")
            # computed now under the settings of now: refused when set_params changed them since fit, or
            # labels_ would compare them with the threshold of the fit-time scoring
            self._check_scoring_current("decision_scores_")
            with self._scoring_training_rows():
                res = self._score(X, None)
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
        """0/1 labels of the training data: ``decision_scores_ >`` the threshold those scores go with:
        ``threshold_``, or, after calibrating a loaded model (whose training scores could not follow the new
        composer: ``calibration_['decision_scores_updated']`` False), the threshold in force when they were
        computed, so that the labels never compare scores of one composer with another's threshold."""
        cal = self.__dict__.get("calibration_") or {}
        thr = cal.get("decision_scores_threshold", self.threshold_) if cal.get("decision_scores_updated") is False else self.threshold_
        return (self.decision_scores_ > thr).astype(np.int64)

    def _fit_extra(self, Xt: torch.Tensor) -> None:
        """Runs after training, before the training data is scored: where a method fits
        statistics of the TRAINING data its score needs (e.g. GANomaly's normalisation)."""

    def _extra_state(self) -> dict:
        """Fitted numbers to store in the model's JSON. Subclasses that add their own must
        merge ``super()._extra_state()`` (calibration record, training D mean, robust settings)."""
        return {"width": int(self._width()), "depth": int(self._depth()),
                "calibration": self.__dict__.get("calibration_"), "disc_train_mean": self.__dict__.get("disc_train_mean_"),
                "robust": self.__dict__.get("robust_"), "knn_space": self.__dict__.get("knn_space_"),
                "knn_metric": self.__dict__.get("knn_metric_"), "knn_split": self.__dict__.get("knn_split_"), "knn_scales": self.__dict__.get("knn_scales_"),
                "knn_blocks": self.__dict__.get("knn_blocks_"), "knn_selection": self.__dict__.get("knn_selection_"),
                "knn_typical": self.__dict__.get("knn_typical_")}

    def _load_extra_state(self, state: dict) -> None:
        """Restore :meth:`_extra_state`; subclasses must call ``super()._load_extra_state(state)``."""
        for key, attr in (("calibration", "calibration_"), ("disc_train_mean", "disc_train_mean_"), ("robust", "robust_"),
                          ("knn_space", "knn_space_"), ("knn_metric", "knn_metric_"), ("knn_split", "knn_split_"),
                          ("knn_scales", "knn_scales_"), ("knn_blocks", "knn_blocks_"), ("knn_selection", "knn_selection_")):
            if state.get(key) is not None:
                setattr(self, attr, state[key])
        if state.get("knn_typical") is not None:  # a float, whatever number type the JSON held
            self.knn_typical_ = float(state["knn_typical"])
        if state.get("knn_scales") is not None:  # as fit stores them: floats (a file's 2**70 would overflow torch's division)
            self.knn_scales_ = [float(v) for v in state["knn_scales"]]

    # ------------------------------------------------------------------ issue 4: D normalisation (robust training: ganad.training.robust)
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
        return {} if m is None else {"disc_normalised": torch.nn.functional.softplus(-logit_x.reshape(-1)) / float(m)}  # a file's int: float

    def calibrate(self, X_val: ArrayLike, y_val: ArrayLike | None = None, *, compose: str = "default", threshold: str = "contamination",
                  weights: dict[str, float] | None = None, metric: str = "auroc", beta: float = 1.0, fpr: float = 0.05,
                  contamination: float | None = None) -> Self:
        """Fit the composition and the threshold on validation data (labels optional); returns self.

        See :func:`ganad.scoring.calibration.calibrate`. ``contamination`` (``threshold='contamination'``):
        the expected anomaly fraction, as at fit, here of ``X_val``: the threshold is the (1 − contamination)
        quantile of its scores (default: the detector's ``contamination``). Scoring afterwards applies the
        stored composer and ``threshold_`` and never refits; both and ``calibration_`` are saved by :meth:`save`.
        """
        if modes_differ():  # a float64 session: AnoGAN's feature size probe failed there ('mat1 and mat2 must have the same dtype')
            with own_modes():
                return self.calibrate(X_val, y_val, compose=compose, threshold=threshold, weights=weights, metric=metric, beta=beta,
                                      fpr=fpr, contamination=contamination)
        if contamination is not None and threshold != "contamination":  # it would be ignored without a word
            raise InputError(_fmt("contamination", f"is {contamination!r}, but threshold={threshold!r} does not read it",
                                  "pass threshold='contamination' with it, or drop it"))
        if contamination is not None:
            contamination = check_contamination(contamination)  # before scoring
        X_val = self._validate_for_scoring(X_val, "X_val")
        return calibrate(self, X_val, y_val, compose=compose, threshold=threshold, weights=weights, metric=metric,
                         beta=beta, fpr=fpr, contamination=contamination)

    def score_components(self, X: ArrayLike, *, return_map: bool = False, return_reconstruction: bool = False) -> ScoreResult:
        """Score ``X`` and return the score, each component, and optionally the anomaly map and x̂. A
        non-finite component or map entry follows ``on_nonfinite`` as the score does."""
        return self._score(X, None, return_map, return_reconstruction, guard_parts=True)

    def _score_with_map(self, X: ArrayLike) -> ScoreResult:
        """The score and the anomaly map, computing (and checking) only the components the score reads:
        ``explain``, ``ganad score --maps`` and the service's ``map=true`` (a component nobody asked for,
        non-finite beside a finite score, must not refuse the row)."""
        from ganad.scoring.composition import required_components
        return self._score(X, required_components(self.composer_), return_map=True, guard_parts=True)

    def _score(self, X, needed, return_map=False, return_reconstruction=False, composer=None, guard_parts=False) -> ScoreResult:
        """score_components, computing only the components in ``needed`` (None: all of them); ``composer``:
        the one the scores are composed with instead of ``composer_`` (fit, before ``composer_`` is final);
        ``guard_parts``: non-finite components and map entries follow ``on_nonfinite`` (what the caller
        hands to the user: :meth:`score_components`); off, they are returned as they are (fit's own
        passes, calibrate, which refuses them in its own words, the benchmark's diagnostic columns)."""
        if modes_differ():
            with own_modes():
                return self._score(X, needed, return_map, return_reconstruction, composer, guard_parts)
        X = self._validate_for_scoring(X)
        from ganad.progress import scoring_bar
        with scoring_bar(len(X), f"scoring ({type(self).__name__})", self.verbose, slow=self._search_scoring()) as bar:
            if "members_" in self.__dict__:
                if bar is not None:
                    bar.batch(0, len(X))
                return self._score_ensemble(X, needed, return_map, return_reconstruction, guard_parts)
            return self._score_single(X, needed, return_map, return_reconstruction, bar, composer, guard_parts)

    def _score_single(self, X, needed, return_map, return_reconstruction, bar, composer=None, guard_parts=False) -> ScoreResult:
        comps: dict[str, list[np.ndarray]] = {}
        extras: dict[str, list[np.ndarray]] = {}
        maps, recons, zs = [], [], []
        skip_inversion = self._scores_without_inversion(needed, return_map, return_reconstruction)
        bs = min(self._score_chunk(int(self.score_batch_size)), self._image_score_rows())
        with self._score_context():
            for start in range(0, len(X), bs):  # scaled a batch at a time: no scaled copy of the whole input
                x = torch.from_numpy(self.scaler_.transform(X[start:start + bs])).to(self.device_)
                if bar is not None:
                    bar.batch(start, x.shape[0])
                if skip_inversion:  # the score is the knn distance of D(x) and / or x alone: no E, G or search
                    comps.setdefault("knn", []).append(self._knn_distance(self._knn_embed(x)).detach().cpu().numpy())
                    if bar is not None:
                        bar.done_batch()
                    continue
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
                if bar is not None:
                    bar.done_batch()
        components = {k: np.concatenate(v).astype(np.float64) for k, v in comps.items()}
        scores = self._guard_scores(np.asarray((composer or self.composer_)(components), dtype=np.float64))
        anomaly_map = np.concatenate(maps) if return_map else None
        if guard_parts:
            components, anomaly_map = self._guard_outputs(components, anomaly_map)
        return ScoreResult(
            scores=scores, components=components,
            map=anomaly_map,
            reconstruction=self.scaler_.inverse_transform(np.concatenate(recons)) if return_reconstruction else None,
            z=np.concatenate(zs) if zs else None, extra={k: np.concatenate(v) for k, v in extras.items()},
        )

    def _scores_without_inversion(self, needed, return_map: bool, return_reconstruction: bool) -> bool:
        """Whether the components asked for need no inversion: only ``knn``, in a space measured on
        D(x) and / or x itself ('feature', 'input', 'feature+input'; not the codes). The default score of
        GANomaly, f-AnoGAN and β-VAEGAN (``knn_weight`` 1 in 'feature+input') is such a score: the
        encoder and generator passes (AnoGAN's latent search) would run for nothing."""
        if needed is None or return_map or return_reconstruction or set(needed) != {"knn"}:
            return False
        return self.__dict__.get("knn_bank_") is not None and self._knn_space_now() in ("feature", "input", "feature+input")

    #: what a non-finite score (NaN / inf: values the float32 networks overflow on) becomes:
    #: 'raise' (default) an InputError naming the rows; 'max' the most anomalous score (+inf, label 1).
    #: Never a silent NaN, which compares as "normal". Set it on the instance: ``det.on_nonfinite = "max"``.
    on_nonfinite = "raise"

    def __sklearn_clone__(self):
        """``sklearn.base.clone``: the constructor parameters, as for every estimator, and
        ``on_nonfinite`` where it was set on the instance (it is not a constructor parameter, so
        clone would otherwise drop it and a cross-validated or ensembled copy would raise again)."""
        new = super().__sklearn_clone__()
        if "on_nonfinite" in self.__dict__:
            new.on_nonfinite = self.on_nonfinite
        return new

    def _nonfinite_policy(self) -> str:
        """``on_nonfinite``, checked (a bad value is named as such, whichever part overflowed)."""
        if self.on_nonfinite not in ("raise", "max"):
            raise InputError(_fmt("on_nonfinite", f"is {self.on_nonfinite!r}", "use 'raise' or 'max'"))
        return self.on_nonfinite

    @staticmethod
    def _nonfinite_error(rows: np.ndarray, n: int, what: str, then: str) -> InputError:
        """The error of ``on_nonfinite='raise'``, naming the rows; ``nonfinite_rows`` (a series names its points from them)."""
        exc = InputError(_fmt("X", f"row(s) {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} ({len(rows)} of {n}) "
                                   f"get {what}: their values overflow the float32 networks",
                              "check these rows for extreme values and rescale or drop them, or set detector.on_nonfinite = 'max' "
                              f"(CLI: ganad score --nonfinite max) {then}"))
        exc.nonfinite_rows = rows
        return exc

    def _guard_scores(self, scores: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(scores)
        if not bad.any():
            return scores
        rows = np.flatnonzero(bad)
        if self._nonfinite_policy() == "max":
            scores = scores.copy()
            scores[rows] = np.inf
            return scores
        raise self._nonfinite_error(rows, len(scores), "a non-finite anomaly score (NaN / inf)", "to score them as the most anomalous")

    def _guard_outputs(self, components: dict, anomaly_map):
        """The ``on_nonfinite`` policy for the score components and the anomaly map, as for the score: a
        finite score can sit beside non-finite parts (an extreme value overflows the float32 networks while
        the default score's knn distance, in float64, stays finite; AnoGAN's search turns NaN), which were
        handed back as they were (the service wrote them as JSON null). 'raise': an InputError naming the
        rows and the parts; 'max': those entries become +inf, the most anomalous."""
        n = len(next(iter(components.values()))) if components else (0 if anomaly_map is None else len(anomaly_map))
        bad, parts = np.zeros(n, dtype=bool), []
        for k, v in components.items():
            b = ~np.isfinite(v)
            if b.any():
                bad |= b
                parts.append(k)
        if anomaly_map is not None and anomaly_map.size:
            b = ~np.isfinite(anomaly_map.reshape(len(anomaly_map), -1)).all(axis=1)
            if b.any():
                bad |= b
                parts.append("the anomaly map")
        if not parts:
            return components, anomaly_map
        if self._nonfinite_policy() == "max":
            return ({k: np.where(np.isfinite(v), v, np.inf) for k, v in components.items()},
                    None if anomaly_map is None else np.where(np.isfinite(anomaly_map), anomaly_map, np.inf).astype(anomaly_map.dtype))
        raise self._nonfinite_error(np.flatnonzero(bad), n, f"non-finite values (NaN / inf) in {', '.join(parts)}",
                                    "to report those values as +inf, the most anomalous")

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Anomaly score per sample: higher = more anomalous (computes only the components the
        composer reads)."""
        from ganad.scoring.composition import required_components
        self._check_fitted()
        return self._score(X, required_components(self.composer_)).scores

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Same as :meth:`decision_function` (higher = more anomalous).

        Note: scikit-learn's outlier detectors use the opposite sign for ``score_samples``;
        ganad follows PyOD, where every score grows with abnormality.
        """
        return self.decision_function(X)

    def predict(self, X: ArrayLike, return_confidence: bool = False):
        """0 = normal, 1 = anomaly, by comparing the score with ``threshold_``.

        ``return_confidence=True`` also returns :meth:`predict_confidence` (PyOD's signature),
        from the same scores (the data is scored once)."""
        self._check_scoring_current("predict")
        scores = self.decision_function(X)
        labels = (scores > self.threshold_).astype(np.int64)
        if return_confidence:
            return labels, self._confidence(scores)
        return labels

    # ------------------------------------------------------------------ PyOD's probability and confidence
    def reference_scores(self) -> np.ndarray:
        """The scores that probabilities and confidences are read against (a 1-D copy):

        * after :meth:`calibrate`: the calibration data's scores under the calibrated composer
          (``calibration_scores_``, what the threshold was fitted on);
        * else the held-out slice of the training data (``validation_scores_``: normal samples
          the networks never trained on, scored under the fitted composer);
        * else, without a held-out slice, the training scores ``decision_scores_`` (PyOD's choice).

        Refused (``InputError``) after ``set_params`` changed how scores are computed (``inversion``)
        until :meth:`calibrate` fits them again.
        """
        self._check_fitted()
        self._check_scoring_current("reference_scores")
        for key in ("calibration_scores_", "validation_scores_"):
            v = self.__dict__.get(key)
            if v is not None and len(v):
                ref = np.asarray(v, dtype=np.float64)
                break
        else:
            ref = np.asarray(self.decision_scores_, dtype=np.float64)
        ref = ref[np.isfinite(ref)]
        if ref.size < 2:
            raise InputError(_fmt(type(self).__name__, "has fewer than two finite reference scores to convert scores into probabilities",
                                  "fit on more data, or calibrate on a validation set with at least two samples"))
        return ref

    def predict_proba(self, X, method: str = "linear", return_confidence: bool = False):
        """Probability of being normal / anomalous, shape (n, 2), as PyOD's ``BaseDetector.predict_proba``.

        ``method='linear'``: min-max scaling of the score by the range of :meth:`reference_scores`,
        clipped to [0, 1]. ``method='unify'``: erf((s − μ) / (σ·√2)) clipped to [0, 1], μ and σ the
        mean and standard deviation of the reference scores (Kriegel et al., SDM 2011, "Interpreting
        and unifying outlier scores"). Column 1 is the anomaly probability, column 0 one minus it.
        These are monotone rescalings of the score, not calibrated probabilities: for a decision
        use :meth:`predict` (the threshold) and :meth:`calibrate`. ``return_confidence=True`` also
        returns :meth:`predict_confidence`.
        """
        scores = self.decision_function(X) if method in ("linear", "unify") else None
        probs = proba_from_scores(scores, self.reference_scores(), method)
        if return_confidence:
            assert scores is not None  # proba_from_scores refused any other method
            return probs, self._confidence(scores)
        return probs

    def predict_confidence(self, X) -> np.ndarray:
        """Confidence in [0, 1] that each prediction of :meth:`predict` would stay the same under a
        slightly different training set: ExCeed (Perini, Vercruyssen and Davis, ECML PKDD 2020),
        as PyOD's ``BaseDetector.predict_confidence``.

        With n reference scores (:meth:`reference_scores`), k of them above ``threshold_``, and a
        test score s ranking above m of them, the anomaly probability is p = (1 + m) / (2 + n)
        (a Bayesian estimate with a uniform prior) and the confidence of an anomaly prediction
        1 − BinomialCDF(n − k; n, p); of a normal prediction one minus that. Where the reference is
        the held-out slice (after ``fit``), k = ⌊n · contamination⌋, as PyOD takes it (``threshold_``
        is that quantile of the training scores, not of the slice); otherwise (the training scores
        without a slice, or the calibration data after :meth:`calibrate`) k is counted, so the
        confidence stays consistent with a threshold set another way (``fpr``, ``f1``, ...).
        """
        return self._confidence(self.decision_function(X))

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        """ExCeed confidence against :meth:`reference_scores`. Where the reference is the held-out
        slice, ``threshold_`` is the contamination quantile of the *training* scores, not of the
        slice: k = ⌊n·contamination⌋, as PyOD (counting the slice's few scores above a threshold set
        elsewhere is noisy, and with none above it a far anomaly would get confidence 0)."""
        ref = self.reference_scores()
        held_out = self.__dict__.get("calibration_scores_") is None and self.__dict__.get("validation_scores_") is not None \
            and len(self.validation_scores_) > 0
        return exceed_confidence(scores, ref, self.threshold_, int(ref.size * float(self.contamination)) if held_out else None)

    def fit_predict(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def explain(self, X: ArrayLike) -> np.ndarray:
        """Anomaly map: |x - x̂| per feature / time step / pixel (scaled units), the shape of ``X``."""
        m = self._score_with_map(X).map
        assert m is not None  # return_map=True always makes one
        return m

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to directory ``path``: safetensors weights + JSON; see :func:`ganad.io.save_model`."""
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        model = load_model(path)
        if not isinstance(model, cls):
            raise InputError(_fmt(str(path), f"holds a {type(model).__name__}, not a {cls.__name__}", f"use ganad.load(path) or {type(model).__name__}.load(path)"))
        return model

    # scikit-learn estimator tags: an outlier detector (sklearn.base.is_outlier_detector is True)
    _estimator_type = "outlier_detector"  # scikit-learn < 1.6 reads this attribute

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

    def __getstate__(self):
        # networks travel as state dicts (torch cannot pickle spectral-norm parametrisations);
        # __setstate__ rebuilds them from the fitted shape. ganad's own model files never use
        # pickle: see save() / ganad.load().
        state = self.__dict__.copy()
        state.pop("_frozen", None)
        state.pop("_knn_cache", None)  # rebuilt from knn_bank_ on the first score
        if "_train_ref" not in state:
            state.pop("_knn_own", None)  # only used while fit scores its own data, done by now
        else:  # decision_scores_ still to come (latent search): its training rows need their leave-one-out
            # (the Mahalanobis one lives in _knn_own, which cannot be rebuilt after fit), the members' too
            members = state.get("members_")
            if members:
                state["_members_knn_own"] = [m.__dict__.get("_knn_own") for m in members]
        nets = state.pop("nets_", None)
        if nets is not None:
            state["_nets_state"] = {k: {n: t.detach().cpu() for n, t in v.state_dict().items()} for k, v in nets.items()}
        return state

    def __setstate__(self, state):
        nets_state = state.pop("_nets_state", None)
        members_own = state.pop("_members_knn_own", None)
        self.__dict__.update(state)
        if members_own is not None:
            for m, own in zip(self.__dict__.get("members_") or [], members_own):
                if own is not None:
                    m.__dict__["_knn_own"] = own
        if nets_state is not None:
            # the networks as fitted: set_params(latent_dim=...) after fit applies to the next fit, and built
            # from the parameters of now, a pickle (or deepcopy) of such a model could not be loaded back
            built = self.__dict__.get("_built_with") or {}
            now = {k: self.__dict__[k] for k in built if k in self.__dict__}
            try:
                self.__dict__.update(built)
                self._load_networks(nets_state)
            finally:
                self.__dict__.update(now)

    # ------------------------------------------------------------------ fitted state: the one way back
    # A fitted detector comes back from a model file (ganad.io.load_model) or from pickle
    # (__setstate__) through these two methods only; calibration changes it through
    # _set_calibration only.
    #: the parameters the fitted state is built from (the networks, the generator's output activation, the
    #: latent prior): set_params after fit changes them for the next fit only, and a model file written
    #: meanwhile would rebuild other networks than the fitted ones (save refuses it, see ganad.io.save_model)
    _structure_params = ("net", "width", "depth", "latent_dim", "spectral_norm", "feature_layer", "scaler", "prior")

    def _structure(self) -> dict[str, Any]:
        """The values of :attr:`_structure_params` now (dicts and lists copied)."""
        return {k: copy.deepcopy(v) if isinstance(v, (dict, list)) else v for k in self._structure_params for v in [getattr(self, k)]}

    def _resolved_structure(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` of :attr:`_structure_params` with every spelling that builds the same fitted state
        made equal, for the fitted data shape: ``net='auto'`` -> its family, ``width`` / ``depth`` None ->
        the family's default, ``scaler`` -> (kind, clip, max_levels) of the scaler it makes ('auto' ->
        'per-feature' or 'minmax'), ``prior`` -> its full dict. A value that does not resolve stays as it is."""
        out = dict(values)
        shape = tuple(self.data_shape_)
        try:
            family = resolve_family(values["net"], shape)
            out["net"] = family
            if "width" in values and values["width"] is None:
                out["width"] = default_width(family)
            if "depth" in values and values["depth"] is None:
                out["depth"] = default_depth(family, shape)
        except (TypeError, ValueError, KeyError):
            pass
        if "scaler" in values:
            try:
                sc = resolve_scaler(values["scaler"], image=len(shape) == 3)
                out["scaler"] = (sc.kind, sc.clip, sc.max_levels)
            except (TypeError, ValueError):
                pass
        if "prior" in values:
            try:
                out["prior"] = make_prior(values["prior"]).to_dict()
            except (TypeError, ValueError, KeyError):
                pass
        nets = self.__dict__.get("nets_")
        blocks = getattr(nets["D"], "blocks", None) if nets is not None and "D" in nets else None
        if "feature_layer" in values and blocks is not None:  # 'auto' and the index it built make the same D
            n, fl = len(blocks), values["feature_layer"]
            if isinstance(fl, str):
                out["feature_layer"] = self._auto_feature_index(n)
            elif is_int(fl) and -n <= fl < n:
                out["feature_layer"] = int(fl) % n
        return out

    def _restore_fitted_state(self, st: dict[str, Any]) -> None:
        """Set the fitted attributes from a model file's JSON state (checked by the caller)."""
        self.data_shape_ = tuple(st["data_shape"])
        self.n_features_in_ = int(st["n_features_in"])
        self.family_ = st["family"]
        # the networks' width and depth as built: a file written before they were stored (and with
        # width / depth None) was built with the defaults of that time (images: width 32)
        self._built_width = int(st["width"]) if st.get("width") is not None else LEGACY_DEFAULT_WIDTH.get(st["family"])
        self._built_depth = int(st["depth"]) if st.get("depth") is not None else None
        self.seed_ = int(st["seed"])
        self.threshold_ = float(st["threshold"])
        self.scaler_ = Scaler.from_dict(st["scaler"])
        self.composer_ = composer_from_dict(st["composer"])
        self.history_ = st["history"]
        self.prior_ = make_prior(self.prior)
        self._built_with = self._structure()
        self.device_ = resolve_device(self.device)
        if st.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(st["feature_names_in"], dtype=object)
        if "selection" in st:
            self.selection_ = st["selection"]
        if "default_composer" in st:
            self.default_composer_ = composer_from_dict(st["default_composer"])
        elif isinstance(st.get("members"), list):  # an ensemble saved before its state kept it (28 Nov): the members' mean, as fit composed
            # (calibrate's compose='default' fell back to the method's own composition, of components an ensemble does not compute)
            self.default_composer_ = WeightedSum({f"member{i}": 1.0 for i in range(len(st["members"]))})
        if st.get("robust") is not None:  # None: not trained robustly (fit sets no robust_); re-saving writes the same file
            self.robust_ = st["robust"]
        if "members" not in st:
            self._load_extra_state(st)
        elif st.get("calibration") is not None:
            self.calibration_ = st["calibration"]
        # (after the extra state: the key reads the fitted knn space and metric) saved after set_params changed
        # the scoring settings, before calibrate: stays refused (predict) after load
        self._threshold_scored_with = st["scored_with"] if st.get("scored_with") is not None else self._scoring_key()

    #: fitted arrays a model file keeps beside the networks' weights
    _fitted_arrays = ("decision_scores_", "validation_scores_", "calibration_scores_", "knn_bank_", "knn_basis_", "knn_center_", "knn_scale_",
                      "knn_input_basis_", "knn_input_center_", "robust_weights_")

    def _restore_arrays(self, arrays: dict[str, torch.Tensor]) -> None:
        """Set the fitted arrays of :attr:`_fitted_arrays` present in ``arrays``."""
        for key in self._fitted_arrays:
            if key in arrays:
                setattr(self, key, arrays[key] if key.startswith("knn_") else arrays[key].numpy())

    def _load_networks(self, state_dicts: dict[str, dict[str, torch.Tensor]]) -> None:
        """Build the networks for the fitted shape and load their weights (every network, strictly)."""
        with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=[]):
            nets = nn.ModuleDict(self._build_networks())
        for name, net in nets.items():
            net.load_state_dict(state_dicts.get(name, {}), strict=True)
        self.nets_ = nets.to(self.device_).eval()
        self.__dict__.pop("_frozen", None)

    def _set_calibration(self, composer, threshold: float, record: dict[str, Any], scores: np.ndarray | None = None) -> None:
        """Install a composer and threshold fitted on validation data (:mod:`ganad.scoring.calibration`).
        The training scores follow the new composer where the training components are in memory
        (not after loading; latent-search methods not yet scored compute them under it on first access).
        ``scores``, the calibration data's scores, become ``calibration_scores_``: the reference of
        :meth:`predict_proba` and :meth:`predict_confidence` (saved with the model)."""
        prev = self.__dict__.get("calibration_") or {}
        # the threshold the training scores in memory go with (before this calibration, or an earlier one's record)
        stale_thr = prev.get("decision_scores_threshold", self.threshold_) if prev.get("decision_scores_updated") is False else self.threshold_
        if self.__dict__.get("_threshold_scored_with") not in (None, self._scoring_key()):
            # the training components in memory were computed under the old scoring settings: never compose them
            # with a composer fitted under the new ones (the training scores keep the threshold they go with)
            self.__dict__.pop("_train_components", None)
            if self.__dict__.pop("_train_components_partial", None) and "_train_ref" in self.__dict__:
                self.__dict__.pop("_decision_scores", None)  # computed under the new settings on first access
        self._threshold_scored_with = self._scoring_key()
        self.composer_, self.threshold_ = composer, float(threshold)
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            self.calibration_scores_ = scores[np.isfinite(scores)]
        train_comps = self.__dict__.get("_train_components")
        if train_comps is not None and self.__dict__.get("_train_components_partial"):
            from ganad.scoring.composition import required_components
            need = required_components(composer)
            if need is None or not set(need) <= set(train_comps):  # the new score needs components fit did not compute
                for attr in ("_train_components", "_train_components_partial", "_decision_scores"):
                    self.__dict__.pop(attr, None)  # computed under the new composer on first access (_train_ref)
                train_comps = None
        if train_comps is not None:  # (not the setter: a partial set keeps _train_ref for a later composer that needs more)
            self.__dict__["_decision_scores"] = np.asarray(composer(train_comps), dtype=np.float64)
            if not self.__dict__.get("_train_components_partial"):
                self.__dict__.pop("_train_ref", None)
        # a latent-search model not yet scored computes its training scores under the new composer on first
        # access; up to _threshold_sample rows now, as fit computes them (a model saved next keeps them)
        ref = self.__dict__.get("_train_ref")
        if train_comps is None and ref is not None and "_decision_scores" not in self.__dict__ and len(ref) <= self._threshold_sample:
            self.decision_scores_  # noqa: B018 (the property computes and keeps them)
            train_comps = self.__dict__.get("_train_components")
        updated = train_comps is not None or "_train_ref" in self.__dict__
        self.calibration_ = {**record, "decision_scores_updated": updated,
                             **({} if updated else {"decision_scores_threshold": float(stale_thr)})}
