import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GANAD_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for the module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    small networks run faster, and the timings of a loaded 2-core machine stay stable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def breast_cancer_split():
    """A small real dataset: Wisconsin breast cancer, benign = normal, malignant = anomaly.
    Train on 60% of the benign samples; test on the other benign samples plus every malignant one."""
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    anomaly = (y == 0).astype(np.int64)
    rng = np.random.RandomState(0)
    normal = np.flatnonzero(anomaly == 0)
    rng.shuffle(normal)
    n_tr = int(0.6 * len(normal))
    train = normal[:n_tr]
    test = np.r_[normal[n_tr:], np.flatnonzero(anomaly == 1)]
    return X[train].astype(np.float32), X[test].astype(np.float32), anomaly[test]


@pytest.fixture(scope="session")
def small_anogan(breast_cancer_split):
    from ganad import AnoGAN
    Xtr, _, _ = breast_cancer_split
    return AnoGAN(epochs=20, random_state=0, search_n_max=100).fit(Xtr)
