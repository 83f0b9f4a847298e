"""The methods a benchmark compares: ganad's registered detectors and the PyOD peers, built with their defaults."""

from __future__ import annotations

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
        from pyod.models.ecod import ECOD
        return ECOD()
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
