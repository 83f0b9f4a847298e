"""ONNX export of the scoring path of encoder methods: unscaled x -> (score components, score).

The exported graph holds the frozen, BatchNorm-folded networks, the fitted scaler and the
composition weights, so a serving runtime (onnxruntime, TensorRT, ...) needs nothing but the
``.onnx`` file. The batch axis is dynamic. Latent-search inversion (AnoGAN, or an encoder
method with ``inversion='search'``) is an optimisation loop per sample and is not exportable; a score
that needs no inversion (the ``knn`` distance of D(x) and / or x alone, AnoGAN's default) exports
whatever the inversion.

>>> from ganad.export import export_onnx
>>> export_onnx(ganad.load("model_dir"), "model.onnx")   # doctest: +SKIP

Outputs: ``components`` (n, k) in the order of the graph's metadata ``components``
(also returned by :func:`export_onnx`), and ``score`` (n,).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import torch
from torch import nn

from ganad import runtime
from ganad.exceptions import InputError, ModelFileError, _fmt


class ScoringModule(nn.Module):
    """x (unscaled, float32) -> (components (n, k), score (n,)) of a fitted encoder detector."""

    def __init__(self, detector):
        super().__init__()
        self.detector = [detector]  # a list: not a submodule, not traced as state
        sh = detector.scaler_.shift.reshape((1, -1) + (1,) * (len(detector.data_shape_) - 1))
        sc = detector.scaler_.scale.reshape((1, -1) + (1,) * (len(detector.data_shape_) - 1))
        # the float64 shift as two float32 numbers (hi + lo): x - shift rounded to float32 alone is off by up to
        # half its last place (3e-5 at 1,000), which is a large step on a feature of small spread (1000 ± 0.01)
        hi = np.asarray(sh, dtype=np.float32)
        self.register_buffer("shift", torch.as_tensor(hi))
        self.register_buffer("shift_lo", torch.as_tensor(np.asarray(sh - hi.astype(np.float64), dtype=np.float32)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(sc, dtype=np.float32)))
        self.clip = detector.scaler_.lo is not None  # per-feature scaler: clip to the stored bounds
        if self.clip:
            self.register_buffer("lo", torch.as_tensor(detector.scaler_.lo.reshape(sh.shape)))
            self.register_buffer("hi", torch.as_tensor(detector.scaler_.hi.reshape(sh.shape)))
        self.nets = nn.ModuleDict({name: detector._inference_net(name).module for name in detector.nets_})
        dev = detector.device_
        # a latent-search detector whose score reads only the knn distance of D(x) and / or x (AnoGAN's
        # default): the graph holds that distance alone, with no inversion; an encoder's graph keeps
        # every component beside the score (E and G are one pass each)
        self.knn_only = _search_inversion(detector) and knn_only_scoring(detector)
        if self.knn_only:
            names = ["knn"]
        else:
            with torch.inference_mode():
                x0 = torch.zeros((2,) + tuple(detector.data_shape_), device=dev)
                names = list(detector._all_components(x0, detector._invert(x0)).keys())
        self.component_names = names
        self.composer = ComposerModule(detector.composer_, names)

    def forward(self, x):
        det = self.detector[0]
        xs = ((x - self.shift) - self.shift_lo) / self.scale
        if self.clip:
            xs = torch.maximum(torch.minimum(xs, self.hi), self.lo)
        if self.knn_only:
            c = det._knn_distance(det._knn_embed(xs)).to(torch.float32)[:, None]
            return c, self.composer(c)
        inv = det._invert(xs)
        comps = det._all_components(xs, inv)
        c = torch.stack([(comps[k]() if callable(comps[k]) else comps[k]).to(torch.float32) for k in self.component_names], dim=1)
        return c, self.composer(c)


def knn_only_scoring(detector) -> bool:
    """Whether ``detector``'s score reads only the ``knn`` component in a space of D(x) and / or x, which
    needs no inversion: then even a latent-search detector (AnoGAN) exports, as the score it computes."""
    from ganad.scoring.composition import required_components
    return bool(detector._scores_without_inversion(required_components(detector.composer_), False, False))


class EnsembleModule(nn.Module):
    """x -> (members' standardised scores (n, k), ensemble score (n,)): every member's scoring graph,
    each score standardised by the member's held-out median / scale, then the ensemble's composer."""

    def __init__(self, detector):
        super().__init__()
        self.members = nn.ModuleList([ScoringModule(m) for m in detector.members_])
        stats = np.asarray(detector.member_stats_, dtype=np.float32)
        self.register_buffer("loc", torch.as_tensor(stats[:, 0]))
        self.register_buffer("spread", torch.as_tensor(stats[:, 1]))
        self.component_names = [f"member{i}" for i in range(len(detector.members_))]
        self.composer = ComposerModule(detector.composer_, self.component_names)

    def forward(self, x):
        s = torch.stack([m(x)[1] for m in self.members], dim=1)
        c = (s - self.loc) / self.spread
        return c, self.composer(c)


class ComposerModule(nn.Module):
    """The fitted composer as tensors: weighted sum, robust standardisation (+ grid weights), RBF SVM + Platt,
    or any of these blended with the ``knn`` component (the default score)."""

    def __init__(self, composer, names: list[str]):
        super().__init__()
        kind = getattr(composer, "kind", None)
        self.blend = None
        self.is_blend = kind == "knn-blend"
        if self.is_blend:  # (1 - w) z(inner score) + w z(knn)
            self.blend_w = float(composer.weight)
            # at weight 1 the inner score is not read (nor computed: a knn-only graph has no other component)
            self.blend = ComposerModule(composer.inner, names) if self.blend_w != 1.0 else None
            self.knn_index = names.index("knn")
            self.register_buffer("blend_loc", torch.tensor(composer.loc, dtype=torch.float32))
            self.register_buffer("blend_scale", torch.tensor(composer.scale, dtype=torch.float32))
            return
        k = len(names)
        center, scale = np.zeros(k), np.ones(k)
        if kind == "weights":
            w = composer.weights
        elif kind in ("robust", "grid", "svm"):
            std = composer.std if kind == "svm" else composer
            for name, m, sc in zip(std.names, std.median, std.scale):
                center[names.index(name)], scale[names.index(name)] = m, sc
            w = {} if kind == "svm" else composer.weights
        else:
            raise InputError(_fmt("detector", f"composes its score with {type(composer).__name__} (kind {kind!r}), which has no ONNX form here",
                                  "calibrate with compose='default', 'standardised', 'grid' or 'svm', or keep the method's default weighted sum"))
        used = list(composer.names) if kind == "svm" else list(w)
        missing = [n for n in used if n not in names]
        if missing:
            raise InputError(_fmt("detector", f"composes components {missing} that its scoring path does not compute", "recalibrate the detector"))
        self.kind = kind
        self.register_buffer("center", torch.tensor(center, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("weights", torch.tensor([float(w.get(n, 0.0)) for n in names], dtype=torch.float32))
        if kind == "svm":
            order = [names.index(n) for n in composer.names]
            self.register_buffer("order", torch.tensor(order, dtype=torch.long))
            self.register_buffer("sv", torch.tensor(composer.support_vectors, dtype=torch.float32))
            self.register_buffer("dual", torch.tensor(composer.dual_coef, dtype=torch.float32))
            self.intercept, self.gamma = float(composer.intercept), float(composer.gamma)
            self.platt_a, self.platt_b = float(composer.platt_a), float(composer.platt_b)
            self.svm_log_odds = getattr(composer, "output", "probability") == "log_odds"

    def forward(self, c):
        if self.is_blend:
            knn = (c[:, self.knn_index] - self.blend_loc[1]) / self.blend_scale[1]
            if self.blend is None:  # weight 1: the knn component alone (as KnnBlend: an infinite own score is not 0·inf = NaN)
                return knn
            own = (self.blend(c) - self.blend_loc[0]) / self.blend_scale[0]
            return (1.0 - self.blend_w) * own + self.blend_w * knn
        z = (c - self.center) / self.scale
        if self.kind != "svm":
            return z @ self.weights
        z = z[:, self.order]
        d2 = (z * z).sum(1, keepdim=True) + (self.sv * self.sv).sum(1)[None, :] - 2.0 * z @ self.sv.T
        f = torch.exp(-self.gamma * d2.clamp_min(0.0)) @ self.dual + self.intercept
        t = -(self.platt_a * f + self.platt_b)  # log-odds of the anomaly probability
        return t if self.svm_log_odds else torch.sigmoid(t)  # the probability: a model file from before "output"


def _search_inversion(detector) -> bool:
    from ganad.detectors.encoder_base import EncoderDetector
    return not isinstance(detector, EncoderDetector) or detector.inversion != "encoder"


def _score_description(detector) -> str:
    from ganad.scoring.composition import required_components
    needed = required_components(detector.composer_)
    return "components " + ", ".join(sorted(needed)) if needed else "every component"


def _require_onnx() -> None:
    """torch.onnx.export itself needs the onnx package (torch >= 2.9): refused before any work, naming the extra."""
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise ImportError(_fmt("ONNX export", f"needs the onnx package ({exc})", "pip install 'ganad[onnx]'")) from exc


def _add_metadata(path: str, meta: dict[str, str]) -> None:
    import onnx
    model = onnx.load(path)
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, path)


def export_onnx(detector, path, *, opset_version: int = 17) -> list[str]:
    """Write ``detector``'s scoring path as ONNX to ``path``; returns the component names (output order)."""
    from ganad.detectors.encoder_base import EncoderDetector
    from ganad.params import is_int
    if not (is_int(opset_version) and 11 <= opset_version <= 20):
        raise InputError(_fmt("opset_version", f"is {opset_version!r}", "pass an ONNX opset from 11 to 20 (default 17)"))
    _require_onnx()

    from ganad.multiview import MultiViewDetector
    if isinstance(detector, MultiViewDetector):
        raise InputError(_fmt("detector", "is a MultiViewDetector (one network per view)",
                              "export each view's detector (mv.detectors_[name]) and sum their scores as mv.composer_ standardises them"))
    from ganad.series.detector import SeriesDetector
    if isinstance(detector, SeriesDetector):  # checked before the encoder test, whose message speaks of latent search
        raise InputError(_fmt("detector", "is a SeriesDetector (windows in, a score per time point and events out): the windowing, "
                                          "the mean over the windows covering a point and the events are not part of an ONNX graph",
                              "export the detector it wraps, which scores one window (n, channels, window) in the series' units: "
                              "export_onnx(sd.detector_, path), or `ganad export MODEL_DIR/detector -o model.onnx`; a point's "
                              "score is the mean of the scores of the windows that cover it"))
    from ganad.detectors.base import BaseGANDetector
    name = type(detector).__name__
    if not isinstance(detector, BaseGANDetector):  # a multi-view model's PyOD / scikit-learn view, say
        raise InputError(_fmt("detector", f"is a {name}, not a ganad detector; only ganad's encoder methods export to ONNX here",
                              "export it with its own library's tools (for scikit-learn models: skl2onnx), "
                              "or train an encoder method (fanogan, bigan, alad, ganomaly, vaegan, tadgan) and export that"))
    detector._check_fitted()
    members = detector.__dict__.get("members_")
    if members is not None:  # an ensemble: checked as its members (all of the same class and settings)
        detector_ = detector
        detector = members[0]
    if knn_only_scoring(detector):
        pass  # the score needs no inversion: a latent-search detector exports as it scores
    elif not isinstance(detector, EncoderDetector):
        if detector.__dict__.get("knn_bank_") is None:  # no knn component to score by: a file of the first days, or knn_weight=0
            keep = ("keep the default score, which needs no search, by fitting the model again with this ganad (this one has no knn "
                    "component: it was fitted by a ganad from before 28 Nov 2026, 52d5162, or with knn_weight=0)")
        else:
            keep = ("keep the default score (knn_space='feature+input', knn_weight 1: no search; recalibrate with compose='default' "
                    "if you changed it; a model fitted with another knn_weight, as by a ganad from before 30 Nov 2026 (4979e4a), "
                    "scores by its knn component alone after det.set_params(knn_weight=1.0) and det.calibrate(X_normal, "
                    "compose='default'))")
        raise InputError(_fmt("detector", f"is a {name} whose score ({_score_description(detector)}) needs the latent search "
                                          "(a per-sample optimisation loop), which cannot be exported to ONNX",
                              f"{keep}, or train an encoder method (fanogan, bigan, alad, ganomaly, vaegan, tadgan) and export that"))
    elif detector.inversion != "encoder":
        raise InputError(_fmt("detector", f"is a {name} with inversion={detector.inversion!r}; latent search cannot be exported to ONNX",
                              "set inversion='encoder' (detector.set_params(inversion='encoder')) before exporting"))
    # a model fitted with latent search, switched to its encoder by set_params: the stored threshold is the search's
    (detector_ if members is not None else detector)._check_scoring_current("export_onnx")
    from ganad.files import atomic_path, check_output_file
    path = check_output_file(path, "path", example="model.onnx")  # a folder, under a file, read-only: refused before any work
    threshold = float((detector_ if members is not None else detector).threshold_)
    # export copies on the CPU (the frozen copies already have spectral norm baked in)
    import copy

    parts = members if members is not None else [detector]
    saved = []
    for d in parts:
        exports = {n: runtime.compile(copy.deepcopy(d._inference_net(n).module).cpu()) for n in d.nets_}
        saved.append({k: d.__dict__.get(k) for k in ("_frozen", "device_")})
        d.__dict__["_frozen"], d.device_ = exports, torch.device("cpu")
    try:
        module = (EnsembleModule(detector_) if members is not None else ScoringModule(detector)).eval()
        x = torch.as_tensor(detector.scaler_.inverse_transform(np.zeros((2,) + tuple(detector.data_shape_), np.float32)).astype(np.float32))
        # written beside ``path`` and renamed once complete (metadata included): a failure leaves no partial
        # file, and an existing file (CLI --overwrite) keeps its content
        with atomic_path(path) as tmp:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (x,), tmp, input_names=["x"], output_names=["components", "score"],
                                  dynamic_axes={"x": {0: "batch"}, "components": {0: "batch"}, "score": {0: "batch"}},
                                  opset_version=opset_version, dynamo=False)
            meta = {"components": json.dumps(module.component_names), "ganad_class": name, "threshold": repr(threshold)}
            names = (detector_ if members is not None else detector).__dict__.get("feature_names_in_")
            if names is not None:  # fitted on named columns (CSV / Parquet / DataFrame): the order x's columns must have
                meta["feature_names"] = json.dumps([str(c) for c in names])
            _add_metadata(tmp, meta)
    except OSError as exc:
        raise ModelFileError(_fmt(f"path {path}", f"could not be written ({exc.strerror or exc})",
                                  "choose a folder you can write to, with room for the model")) from exc
    finally:
        for d, sv in zip(parts, saved):
            for k, v in sv.items():
                if v is None:
                    d.__dict__.pop(k, None)
                else:
                    d.__dict__[k] = v
    return list(module.component_names)
