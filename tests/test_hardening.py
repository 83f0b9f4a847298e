"""Hardening (issue 10): no silent wrong answers, no planted code, no lost models.

Each regression test below pins one case of the issue; ``test_hardening_table`` runs the
whole catalogue of bad inputs and tamperings (CLI, API, model files) and writes
docs/hardening.md.
"""

import numpy as np
import pytest

import ganad
from ganad import ALAD, AnoGAN, BiGAN, FAnoGAN, GANomaly
from ganad.exceptions import InputError

FAST = dict(epochs=1, random_state=0)
X4 = np.random.RandomState(0).randn(64, 4).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    return {cls.__name__: cls(**FAST, **({"search_n_max": 5} if cls is AnoGAN else {})).fit(X4)
            for cls in (AnoGAN, FAnoGAN, BiGAN, ALAD, GANomaly)}


# ------------------------------------------------------------------ silent wrong answers
@pytest.mark.parametrize("value", [3e38, -3e38, 1e300, -1e300, 1e30])
@pytest.mark.parametrize("method", ["AnoGAN", "FAnoGAN", "BiGAN", "ALAD", "GANomaly"])
def test_huge_values_never_score_normal(fitted, method, value):
    det = fitted[method]
    T = X4[:5].astype(np.float64)
    T[2, 1] = value
    try:
        s = det.decision_function(T)
    except InputError as exc:
        msg = str(exc)
        assert "row" in msg and "2" in msg and "Fix:" in msg
        if abs(value) > 3.5e38:
            assert "float32" in msg and "NaN" not in msg
        return
    assert np.isfinite(s).all()  # finite scores: then the extreme row is judged, never NaN-as-normal


def test_nonfinite_scores_by_option_are_most_anomalous(fitted):
    det = fitted["FAnoGAN"]
    T = X4[:5].copy()
    T[3, 0] = 1e30
    with pytest.raises(InputError, match=r"row\(s\) \[3\].*on_nonfinite"):
        det.predict(T)
    det.on_nonfinite = "max"
    try:
        s = det.decision_function(T)
        assert s[3] == np.inf and det.predict(T)[3] == 1
        assert np.isfinite(np.delete(s, 3)).all()
    finally:
        del det.on_nonfinite


@pytest.mark.parametrize("params,pattern", [
    (dict(epochs=0), "epochs.*train nothing"),
    (dict(epochs=-1), "epochs"),
    (dict(batch_size=1), "batch_size.*BatchNorm.*>= 2"),
    (dict(batch_size=0), "batch_size"),
    (dict(epochs=True), "epochs"),
])
def test_settings_that_train_nothing_are_refused(params, pattern):
    with pytest.raises(InputError, match=pattern):
        AnoGAN(**{**FAST, **params}).fit(X4)
