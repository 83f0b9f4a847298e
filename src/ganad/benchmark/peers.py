"""The methods a benchmark compares: ganad's registered detectors and the PyOD peers, built with their defaults."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np

from ganad.exceptions import InputError, _fmt

#: PyOD peers run by default, in this order
PEERS: tuple[str, ...] = ("iforest", "knn", "ocsvm", "ecod", "autoencoder", "vae", "deepsvdd", "anogan", "alad")
_PEER_PREFIX = "pyod:"


def default_methods() -> list[str]:
    """Every ganad method in the registry, aliases of one class counted once (read at run time)."""
    from ganad.detectors import DETECTORS
    seen, names = set(), []
    for name, cls in DETECTORS.items():
        if cls not in seen:
            seen.add(cls)
            names.append(name)
    return names


def pyod_available() -> bool:
    try:
        import pyod  # noqa: F401
        return True
    except ImportError:
        return False


def available_peers(peers: Sequence[str], named: bool, log) -> tuple[list[str], list[str]]:
    """(the peers to run, notes) when PyOD may be missing: peers asked for by name (``--peers``) are
    refused before any work; the default ones are skipped with a note (logged)."""
    peers = list(peers)
    if not peers or pyod_available():
        return peers, []
    if named:
        raise InputError(_fmt(f"--peers {','.join(peers)}", "need PyOD, which is not installed", "pip install 'ganad[bench]', or pass --peers none"))
    note = "PyOD is not installed: the default peers were skipped (pip install 'ganad[bench]')."
    log(note)
    return [], [note]


def _check_names(methods: Sequence[str], peers: Sequence[str]) -> None:
    from ganad.detectors import DETECTORS
    bad = [m for m in methods if m not in DETECTORS]
    if bad:
        raise InputError(_fmt("--methods", f"names unknown method(s) {bad}", f"use some of {', '.join(sorted(DETECTORS))}"))
    badp = [p for p in peers if p not in PEERS]
    if badp:
        raise InputError(_fmt("--peers", f"names unknown peer(s) {badp}", f"use some of {', '.join(PEERS)}"))


def make_peer(name: str, seed: int, epochs: int, n_features: int):
    """A PyOD detector with its defaults, but ``epochs`` for the deep models and ``seed`` where it takes one.
    Raises ImportError when PyOD is missing."""
    quiet = {"verbose": 0}
    if name == "iforest":
        from pyod.models.iforest import IForest
        return IForest(random_state=seed)
    if name == "knn":
        from pyod.models.knn import KNN
        return KNN()
    if name == "ocsvm":
        from pyod.models.ocsvm import OCSVM
        return OCSVM()
    if name == "ecod":
        return inductive_ecod()
    if name == "autoencoder":
        from pyod.models.auto_encoder import AutoEncoder
        return AutoEncoder(epoch_num=epochs, random_state=seed, **quiet)
    if name == "vae":
        from pyod.models.vae import VAE
        return VAE(epoch_num=epochs, random_state=seed, **quiet)
    if name == "deepsvdd":
        from pyod.models.deep_svdd import DeepSVDD
        return DeepSVDD(n_features=n_features, epochs=epochs, random_state=seed, **quiet)
    if name == "anogan":
        from pyod.models.anogan import AnoGAN
        return AnoGAN(epochs=epochs, **quiet)
    if name == "alad":
        from pyod.models.alad import ALAD
        return ALAD(epochs=epochs, **quiet)
    raise InputError(_fmt("--peers", f"names unknown peer {name!r}", f"use some of {', '.join(PEERS)}"))


@functools.cache
def _inductive_ecod_class():
    from pyod.models.ecod import ECOD, column_ecdf
    from scipy.stats import skew

    class InductiveECOD(ECOD):
        """PyOD's ECOD, scoring each new row against the training data alone.

        PyOD's ``ECOD.decision_function(X)`` estimates its empirical distributions (and the skewness
        that picks the tail) on the training rows *and the whole batch X*, so a row's score depends on
        the other rows it is scored with: on a test set that is mostly the data being judged (NAB's test
        part is 85 % of a series) the peer fits its tails on the test data, every other detector is
        fitted on the training part alone, and its scores of new data are on another scale than the
        training scores its threshold comes from. Here a row's score is exactly what PyOD gives that
        row scored on its own, ``ECOD().fit(X_train).decision_function(x[None])``: the distributions
        of the training rows plus that row. ``fit`` and ``decision_scores_`` are PyOD's, except that a
        column constant where its skewness is taken gets no preferred tail instead of NaN scores for
        every row (the ADBench Arrhythmia set has such columns)."""

        def decision_function(self, X):
            X = np.asarray(X, dtype=np.float64)
            if not hasattr(self, "X_train"):  # fit's own training scores: PyOD's, on the training rows alone
                with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # scipy on a constant column: NaN, handled below
                    return _outlyingness(-np.log(column_ecdf(X)), -np.log(column_ecdf(-X)), np.sign(skew(X, axis=0)))
            T = np.asarray(self.X_train, dtype=np.float64)
            n = len(T)
            srt = np.sort(T, axis=0)
            mu = T.mean(axis=0)
            c = T - mu
            s2, s3 = (c ** 2).sum(axis=0), (c ** 3).sum(axis=0)
            out = np.empty(len(X))
            step = max(1, 2 ** 22 // max(1, X.shape[1]))
            for a in range(0, len(X), step):
                x = X[a:a + step]
                le = np.stack([np.searchsorted(srt[:, j], x[:, j], side="right") for j in range(x.shape[1])], axis=1)
                ge = n - np.stack([np.searchsorted(srt[:, j], x[:, j], side="left") for j in range(x.shape[1])], axis=1)
                # skewness of the training column plus this row, as scipy.stats.skew (biased) computes it,
                # undefined where the column plus the row is constant (scipy's rule)
                y = x - mu
                m1 = y / (n + 1)
                m2 = (s2 + y ** 2) / (n + 1) - m1 ** 2
                m3 = (s3 + y ** 3) / (n + 1) - 3 * m1 * (s2 + y ** 2) / (n + 1) + 2 * m1 ** 3
                with np.errstate(invalid="ignore", divide="ignore"):
                    sk = np.where(m2 <= (np.finfo(np.float64).resolution * (mu + m1)) ** 2, np.nan, np.sign(m3 / m2 ** 1.5))
                out[a:a + step] = _outlyingness(-np.log((le + 1) / (n + 1)), -np.log((ge + 1) / (n + 1)), sk)
            return out

    def _outlyingness(u_l, u_r, sk):
        """ECOD's per-row sum of max(left tail, right tail, the tail the skewness picks). Where the
        skewness is undefined (a column constant in the data it is taken on, NaN in PyOD, which then
        scores every row NaN) no tail is preferred: sign 0, as for a symmetric column."""
        sk = np.nan_to_num(sk, nan=0.0)
        u_skew = u_l * -1 * np.sign(sk - 1) + u_r * np.sign(sk + 1)
        return np.maximum(np.maximum(u_l, u_r), u_skew).sum(axis=1)

    return InductiveECOD


def inductive_ecod():
    """A new :class:`InductiveECOD` (PyOD's ECOD scoring every new row against the training data
    alone; the class is built on first use because PyOD is optional)."""
    return _inductive_ecod_class()()


#: parameters set on every ganad detector a benchmark builds (``ganad benchmark --set k=v``), e.g.
#: ``{"n_members": 3}``; empty = each method's defaults
GANAD_PARAMS: dict = {}


def make_ganad(name: str, seed: int, epochs: int | None):
    """A ganad detector with its defaults (and :data:`GANAD_PARAMS`), ``random_state=seed`` and
    ``epochs`` when given."""
    from ganad.detectors import DETECTORS
    kw = {**GANAD_PARAMS, "random_state": seed}
    if epochs is not None:
        kw["epochs"] = int(epochs)
    return DETECTORS[name](**kw)


def _seed_torch(seed: int) -> None:
    import torch
    np.random.seed(seed)
    torch.manual_seed(seed)
