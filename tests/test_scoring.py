"""Scoring: components, composition, thresholds, calibration, robust training (issue 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganad.detectors import AnoGAN
from ganad.exceptions import InputError
from ganad.scoring.composition import (
    COMPOSERS,
    GridSearch,
    RobustStandardised,
    SVMComposer,
    WeightedSum,
    composer_from_dict,
    platt_fit,
    simplex_grid,
)
from ganad.scoring.threshold import best_threshold, contamination_threshold, fpr_threshold
from ganad.training.robust import RobustWeighter, robust_weights


def _roundtrip(composer):
    return composer_from_dict(json.loads(json.dumps(composer.to_dict())))


@pytest.fixture(scope="module")
def constructed():
    """c1 = y + e, c2 = y − e: each alone is noisy, their equal mix cancels e; c3 is pure noise."""
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.2).astype(np.int64)
    e = rng.normal(scale=5.0, size=n)
    comps = {"a": y + e, "b": y - e + 0.01 * rng.normal(size=n), "c": rng.normal(size=n)}
    return comps, y


# ---------------------------------------------------------------- composition
def test_weights_sum_to_one(constructed):
    comps, y = constructed
    assert sum(WeightedSum({"a": 3, "b": 1}).weights.values()) == pytest.approx(1.0)
    assert sum(RobustStandardised.fit(comps).weights.values()) == pytest.approx(1.0)
    assert sum(RobustStandardised.fit(comps, weights={"a": 2, "c": 6}).weights.values()) == pytest.approx(1.0)
    assert sum(GridSearch.fit(comps, y).weights.values()) == pytest.approx(1.0)
    g = simplex_grid(3, 0.1)
    assert g.shape == (66, 3) and np.allclose(g.sum(1), 1.0) and (g >= 0).all()
    with pytest.raises(InputError):
        WeightedSum({"a": -1.0, "b": 2.0})


def test_robust_standardised_uses_median_mad():
    rng = np.random.default_rng(1)
    comps = {"r": rng.normal(10.0, 2.0, 5000), "f": rng.normal(-3.0, 0.1, 5000)}
    rs = RobustStandardised.fit(comps)
    assert np.allclose(rs.median, [-3.0, 10.0], atol=0.1) and np.allclose(rs.scale, [0.1, 2.0], rtol=0.05)  # sorted names
    z = rs.standardise(comps)
    assert np.allclose(np.median(z, 0), 0, atol=1e-9)
    # a few huge anomalies in the reference barely move it
    comps2 = {k: np.r_[v, np.full(50, 1e6)] for k, v in comps.items()}
    assert np.allclose(RobustStandardised.fit(comps2).scale, rs.scale, rtol=0.05)


@pytest.mark.parametrize("metric", ["auroc", "auprc", "f1", "mcc"])
def test_grid_search_finds_known_optimum(constructed, metric):
    comps, y = constructed
    gs = GridSearch.fit(comps, y, metric=metric, step=0.1)
    assert gs.weights == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0}, abs=1e-9)
    assert gs.value == pytest.approx(1.0)
    assert _roundtrip(gs).weights == gs.weights


def test_svm_composer_numpy_matches_sklearn_and_roundtrips(constructed):
    from sklearn.svm import SVC
    comps, y = constructed
    svm = SVMComposer.fit(comps, y)
    Z = svm.std.standardise(comps)
    ref = SVC(kernel="rbf", gamma="scale", class_weight="balanced").fit(Z, y).decision_function(Z)
    assert np.allclose(svm.decision_values(comps), ref, atol=1e-8)
    p = svm.probability(comps)
    assert ((p > 0) & (p < 1)).all()
    s = svm(comps)  # the score: the log-odds of that probability
    assert svm.output == "log_odds" and np.allclose(s, np.log(p / (1 - p)), atol=1e-9)
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, s) > 0.9
    back = _roundtrip(svm)
    assert isinstance(back, SVMComposer) and np.array_equal(back(comps), s)


def _steep_svm(**kw):
    """An SVM whose Platt slope is steep (A = −1000), as Platt's fit gives when the decision values
    are compressed (γ = 'scale' shrunk by an extreme calibration sample): one component, support
    vectors at 0 (normal side) and 3 (anomaly side), f(x) = exp(−(x − 3)²/2) − exp(−x²/2)."""
    return SVMComposer(["a"], [0.0], [1.0], [[0.0], [3.0]], [-1.0, 1.0], 0.0, 0.5, -1000.0, 0.0, **kw)


def test_svm_score_keeps_the_ranking_where_the_probability_saturates():
    """The score was Platt's probability, clipped at |A·f + B| = 500: with a steep slope every normal
    sample far enough from the boundary scored exp(−500) = 7e-218 and every anomaly 1.0, so neither
    class could be ranked within itself (a threshold fitted there sat on one value). The log-odds
    −(A·f + B) are affine in the SVM's decision value and keep its order."""
    normal, anomalous = np.linspace(-1.0, 1.0, 41), np.linspace(2.5, 3.5, 11)
    x = np.r_[normal, anomalous]
    comps, y = {"a": x}, np.r_[np.zeros(normal.size), np.ones(anomalous.size)].astype(int)
    svm = _steep_svm()
    s, f = svm(comps), svm.decision_values(comps)
    assert np.all(np.isfinite(s))
    for cls in (0, 1):  # distinct rows keep distinct scores, in the order of the decision values
        sc, fc = s[y == cls], f[y == cls]
        assert np.unique(sc).size == sc.size
        np.testing.assert_array_equal(np.argsort(sc), np.argsort(fc))
    assert s[y == 1].min() > s[y == 0].max()  # and the anomalies still rank above every normal sample
    np.testing.assert_allclose(s, -(svm.platt_a * f + svm.platt_b))
    # the probability is still at hand, and saturates there: why it is not the score
    p = svm.probability(comps)
    assert p[y == 0].max() < 1e-200 and (p[y == 1] == 1.0).all()
    assert np.array_equal(_roundtrip(svm)(comps), s)


def test_svm_composer_from_an_old_model_file_keeps_its_probability_score():
    """A model file written before ``output`` was stored was calibrated on probabilities (its threshold is
    one): loaded, it keeps that score, clip included; ``output`` is stored from now on and checked."""
    comps = {"a": np.r_[np.linspace(-1.0, 1.0, 41), np.linspace(2.5, 3.5, 11)]}
    new = _steep_svm()
    old_dict = {k: v for k, v in new.to_dict().items() if k != "output"}
    old = composer_from_dict(json.loads(json.dumps(old_dict)))
    assert old.output == "probability" and _roundtrip(old).output == "probability"
    f = new.decision_values(comps)
    np.testing.assert_array_equal(old(comps), 1.0 / (1.0 + np.exp(np.clip(-1000.0 * f, -500, 500))))
    assert new.to_dict()["output"] == "log_odds"
    for bad in ("logit", None, 1):
        with pytest.raises(InputError, match="output"):
            composer_from_dict({**old_dict, "output": bad})


def test_platt_fit_recovers_a_logistic_model():
    rng = np.random.default_rng(2)
    f = rng.normal(size=20000)
    y = (rng.random(f.size) < 1 / (1 + np.exp(-2.0 * f + 0.5))).astype(int)  # A = -2, B = 0.5
    a, b = platt_fit(f, y)
    assert a == pytest.approx(-2.0, abs=0.1) and b == pytest.approx(0.5, abs=0.1)


def test_every_composer_is_registered_and_json_only(constructed):
    comps, y = constructed
    from ganad.scoring.composition import KnnBlend
    comps = {**comps, "knn": np.abs(comps["a"]) + 1.0}
    made = [WeightedSum({"a": 1, "c": 1}), RobustStandardised.fit(comps), GridSearch.fit(comps, y), SVMComposer.fit(comps, y),
            KnnBlend.fit(WeightedSum({"a": 1, "c": 1}), comps, 0.75)]
    assert {c.kind for c in made} == set(COMPOSERS)
    for c in made:
        assert np.array_equal(_roundtrip(c)(comps), c(comps))
    with pytest.raises(ValueError):
        composer_from_dict({"kind": "pickle"})


def test_knn_blend_of_weight_one_is_the_knn_component_alone_even_where_the_own_score_overflows():
    """knn_weight=1 (the default of 'feature+input') gives the own score weight 0; an infinite own score
    (an overflowing input) made the blend 0·inf = NaN, in the library and in the ONNX composer."""
    from ganad.export import ComposerModule
    from ganad.scoring.composition import KnnBlend
    comps = {"a": np.array([0.0, 1.0, np.inf, 3.0]), "knn": np.array([1.0, 2.0, 50.0, 4.0])}
    blend = KnnBlend(WeightedSum({"a": 1.0}), 1.0, [0.0, 1.0], [1.0, 2.0])
    np.testing.assert_array_equal(blend(comps), (comps["knn"] - 1.0) / 2.0)
    module = ComposerModule(blend, ["a", "knn"])
    out = module(torch.tensor(np.c_[comps["a"], comps["knn"]], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, (comps["knn"] - 1.0) / 2.0, rtol=1e-6)
    half = KnnBlend(WeightedSum({"a": 1.0}), 0.5, [0.0, 1.0], [1.0, 2.0])  # any weight below 1 keeps the own score
    assert np.isinf(half(comps)[2]) and half(comps)[1] == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    # scoring computes only what the score reads: at weight 1 the knn component alone (GANomaly's default
    # decision_function no longer runs the second encoder its 'latent' component needs)
    assert blend.names == ["knn"] and half.names == ["a", "knn"]
    assert _roundtrip(blend).names == ["knn"]


# ---------------------------------------------------------------- thresholds
def test_contamination_threshold_is_the_quantile():
    s = np.random.default_rng(3).normal(size=1000)
    tau = contamination_threshold(s, 0.1)
    assert abs(np.mean(s > tau) - 0.1) <= 1 / s.size


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_contamination_threshold_refuses_non_finite_scores(bad):
    """An inf score made the quantile inf (no row ever flagged, and a model file cannot hold it)."""
    s = np.r_[np.random.default_rng(3).normal(size=9), bad]
    with pytest.raises(InputError, match=r"scores: hold 1 NaN or infinite value\(s\) of 10, at row\(s\) \[9\].*Fix: drop or rescale"):
        contamination_threshold(s, 0.1)
    with pytest.raises(InputError, match="scores: is empty"):
        contamination_threshold([], 0.1)


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.1, 0.333])
def test_fpr_threshold_meets_requested_rate(fpr):
    s = np.random.default_rng(4).normal(size=997)
    tau = fpr_threshold(s, fpr)
    achieved = np.mean(s > tau)
    assert achieved <= fpr and achieved > fpr - 1 / s.size


def test_fpr_threshold_on_tied_scores_takes_the_best_rate_they_allow_and_says_what_it_achieved():
    """Scores in tied runs (a series' points, one stride each; discrete rows): no threshold flags a share
    between two runs' edges. τ takes the largest rate at most the target (checked against every distinct
    score), and fit_threshold records the rate achieved, the run tied at τ and the next rate the ties allow."""
    from ganad.scoring.calibration import fit_threshold
    from ganad.scoring.threshold import fpr_shortfall
    rng = np.random.default_rng(5)
    for _ in range(200):
        s = np.repeat(rng.normal(size=int(rng.integers(2, 40))), rng.integers(1, 30, size=1)[0])
        s = np.r_[s, rng.integers(0, 3, size=int(rng.integers(0, 20))).astype(float)]
        fpr = float(rng.choice([0.01, 0.05, 0.1, 0.3]))
        tau, info = fit_threshold(s, threshold="fpr", fpr=fpr)
        rates = np.array([np.mean(s > v) for v in np.unique(s)])
        assert info["achieved_fpr"] == np.mean(s > tau) == rates[rates <= fpr].max()
        assert info["tied_at_threshold"] == np.sum(s == tau) and info["next_fpr"] == np.mean(s >= tau) > fpr
    s = np.repeat(np.arange(50.0), 30)  # runs of 30 of 1500: 1 % cannot be reached, 0 or 2 %
    tau, info = fit_threshold(s, threshold="fpr", fpr=0.01)
    assert (info["achieved_fpr"], info["tied_at_threshold"], info["next_fpr"]) == (0.0, 30, 0.02) and tau == 49.0
    msg = fpr_shortfall(info, 0.01, s.size, unit="points", ties="runs of one stride")
    assert "flags 0 of the 1500 points" in msg and "30 of them tie at the threshold's score (runs of one stride)" in msg
    assert "30 of 1500 (a rate of 0.02)" in msg and "pass fpr=0.02 (CLI: --fpr 0.02)" in msg
    assert fit_threshold(s, threshold="fpr", fpr=0.02)[1]["achieved_fpr"] == 0.02  # the rate suggested is reached
    s = np.repeat(np.arange(300.0), 5)[::-1]  # runs of 5: 0.0133 -> 0.01 achieved (3 runs of 1500), no warning
    tau, info = fit_threshold(s, threshold="fpr", fpr=0.0133)
    assert info["achieved_fpr"] == 0.01 and fpr_shortfall(info, 0.0133, s.size) is None
    # no ties, too few samples: 50 at 1 %, τ the largest score
    info = fit_threshold(np.arange(50.0), threshold="fpr", fpr=0.01)[1]
    msg = fpr_shortfall(info, 0.01, 50)
    assert info["tied_at_threshold"] == 1 and "too few for a rate of 0.01 (at least 100" in msg and "pass fpr=0.02" in msg
    # the suggested rate is written finely enough to take in that run and no other (7 of 1500 = 0.004667)
    s = np.r_[np.zeros(1493), np.full(7, 1.0)]
    msg = fpr_shortfall(fit_threshold(s, threshold="fpr", fpr=0.004)[1], 0.004, s.size)
    suggested = float(msg.split("pass fpr=")[1].split(" ")[0])
    assert fit_threshold(s, threshold="fpr", fpr=suggested)[1]["achieved_fpr"] == 7 / 1500
    assert fpr_shortfall(fit_threshold(s, threshold="fpr", fpr=0.0)[1], 0.0, s.size) is None  # fpr 0: 0 is the target


@pytest.mark.parametrize("flip", [True, False])
def test_mcc_threshold_refuses_labels_no_better_than_chance(flip):
    """With the anomalies scoring below the normal samples every candidate's MCC was <= 0 and the
    flag-everything candidate (MCC 0 by convention) won: threshold_ below every score."""
    from ganad.scoring.calibration import fit_threshold
    rng = np.random.default_rng(8)
    s = np.r_[rng.normal(size=50), rng.normal(size=10) + 5.0]
    y = np.r_[np.zeros(50, int), np.ones(10, int)]
    if flip:  # the labels reversed: the anomalies are the low scores
        with pytest.raises(InputError, match=r"y_val: gives no threshold better than chance .*Matthews correlation is .* <= 0.*Fix: check that y_val"):
            fit_threshold(s, 1 - y, threshold="mcc")
    else:
        tau, info = fit_threshold(s, y, threshold="mcc")
        assert info["value"] > 0.9 and np.mean(s > tau) < 0.3


@pytest.mark.parametrize("metric", ["f1", "fbeta", "mcc"])
def test_best_threshold_matches_brute_force(metric):
    from sklearn.metrics import fbeta_score, matthews_corrcoef
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.25).astype(int)
    s = np.round(rng.normal(size=300) + 1.5 * y, 1)  # ties on purpose
    tau, val = best_threshold(s, y, metric, beta=2.0)

    def m(pred):
        if metric == "mcc":
            return matthews_corrcoef(y, pred)
        return fbeta_score(y, pred, beta=1.0 if metric == "f1" else 2.0, zero_division=0)

    brute = max(m((s > t).astype(int)) for t in np.r_[np.unique(s), s.min() - 1])
    assert val == pytest.approx(brute) and m((s > tau).astype(int)) == pytest.approx(val)


def test_best_threshold_ties_up_to_round_off_go_to_the_fewest_alarms():
    """1 alarm (3/√189) and 6 alarms (8/√504) have the same MCC, computed one bit apart: the
    documented tie rule (the highest τ) must not depend on that bit."""
    s = np.array([1.0, -2, 0, 0, -1, 0, -1, 0, -2, -1])
    y = np.array([1, 1, 0, 1, 1, 1, 1, 1, 0, 0])
    tau, val = best_threshold(s, y, "mcc")
    assert val == pytest.approx(3 / np.sqrt(189)) and (s > tau).sum() == 1


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_best_threshold_separates_adjacent_floats(k):
    """Saturated SVM probabilities lie one float apart below 1: the midpoint of two adjacent floats
    rounds onto one of them, and onto the upper one τ flagged none of the anomalies (F1 0, reported 1)."""
    lo, hi = 1.0 - (k + 1) * 2.0 ** -53, 1.0 - k * 2.0 ** -53
    s, y = np.array([lo, hi, lo, hi, lo]), np.array([0, 1, 0, 1, 0])
    tau, val = best_threshold(s, y, "f1")
    assert val == 1.0 and np.array_equal((s > tau).astype(int), y)
    big = np.array([1e308, 1.5e308, 0.0])  # and the halves first: no overflow to an infinite τ
    tau, _ = best_threshold(big, np.array([0, 1, 0]), "mcc")
    assert np.isfinite(tau) and np.array_equal((big > tau).astype(int), [0, 1, 0])


# ---------------------------------------------------------------- robust weights (unit)
def test_robust_weights_hard_and_soft():
    s = torch.arange(100, dtype=torch.float32)
    w = robust_weights(s, 0.1, "hard")
    assert w[:90].eq(1).all() and w[90:].eq(0).all()
    ws = robust_weights(s, 0.1, "soft")
    assert ws[:90].eq(1).all() and (ws[90:] < 1).all() and (ws[91:] < ws[90:-1]).all() and (ws > 0).all()
    wf = RobustWeighter(lambda stage: s, 100, 0.1, warmup=2)
    assert wf(0, "gan") is None and wf(1, "gan") is None and wf(2, "gan").sum() == 90
    assert wf.log["gan/robust_excluded_fraction"] == [0.0, 0.0, pytest.approx(0.1)]


# ---------------------------------------------------------------- detectors
@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    X, y = load_breast_cancer(return_X_y=True)
    y = (y == 0).astype(np.int64)  # malignant = anomaly
    X = StandardScaler().fit(X[y == 0]).transform(X).astype(np.float32)
    rng = np.random.default_rng(0)
    normal, anom = rng.permutation(np.flatnonzero(y == 0)), rng.permutation(np.flatnonzero(y == 1))
    tr = normal[:200]
    val = np.r_[normal[200:290], anom[:60]]
    test = np.r_[normal[290:], anom[60:]]
    return X[tr], (X[val], y[val]), (X[test], y[test])


@pytest.fixture(scope="module")
def model(data):
    Xtr, _, _ = data
    return AnoGAN(epochs=3, search_n_max=30, random_state=0).fit(Xtr)


def test_fit_records_components_and_default_calibration(model, data):
    Xtr, _, _ = data
    assert model.disc_train_mean_ > 0
    comps = model.score_components(Xtr[:20]).components
    assert set(comps) == {"residual", "feature", "discriminator", "latent_norm", "disc_normalised", "knn"}
    assert model.calibration_["compose"] == "fit"


@pytest.mark.parametrize("compose,threshold", [("default", "fpr"), ("standardised", "fpr"), ("grid", "mcc"), ("svm", "f1"),
                                               ("weights", "contamination")])
def test_calibrate_thresholds_meet_definition(model, data, compose, threshold):
    import copy
    _, (Xv, yv), _ = data
    det = copy.deepcopy(model)
    kw = {"weights": {"residual": 0.9, "feature": 0.1}} if compose == "weights" else {}
    det.calibrate(Xv, yv, compose=compose, threshold=threshold, fpr=0.1, **kw)
    s = det.decision_function(Xv)
    cal = det.calibration_
    assert cal["compose"] == compose and cal["threshold"] == threshold and cal["threshold_value"] == det.threshold_
    if threshold == "fpr":
        assert np.mean(s[yv == 0] > det.threshold_) <= 0.1 and cal["achieved_fpr"] <= 0.1
    elif threshold == "contamination":
        assert abs(np.mean(s > det.threshold_) - det.contamination) <= 1 / len(s)
    else:
        assert cal["value"] == pytest.approx(best_threshold(s, yv, threshold)[1])
    assert 0.0 <= cal["val_auroc"] <= 1.0
    # training scores are re-composed with the calibrated composer
    assert det.decision_scores_.shape == (200,) and cal["decision_scores_updated"]


def test_calibrate_without_labels(model, data):
    import copy
    _, (Xv, yv), _ = data
    det = copy.deepcopy(model).calibrate(Xv[yv == 0], threshold="fpr", fpr=0.05)
    assert not det.calibration_["labelled"]
    assert np.mean(det.decision_function(Xv[yv == 0]) > det.threshold_) <= 0.05
    std = copy.deepcopy(model).calibrate(Xv[yv == 0], compose="standardised", threshold="fpr", fpr=0.05)
    assert isinstance(std.composer_, RobustStandardised)
    for compose, threshold in (("grid", "contamination"), ("svm", "contamination"), ("default", "f1")):
        with pytest.raises(InputError, match="y_val"):
            copy.deepcopy(model).calibrate(Xv, compose=compose, threshold=threshold)


def test_calibrating_on_identical_rows_warns(model, data):
    """Identical validation rows give one score: the threshold sits on it and new normal samples
    that differ may all score above it (about 40 % flagged in the audit's case): a warning says so."""
    import copy
    _, (Xv, yv), _ = data
    with pytest.warns(UserWarning, match=r"X_val: gives all 40 validation samples the same score.*identical rows"):
        copy.deepcopy(model).calibrate(np.repeat(Xv[:1], 40, axis=0))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # varied rows: no warning
        copy.deepcopy(model).calibrate(Xv[yv == 0])


def test_calibrating_fpr_on_tied_scores_records_and_warns_of_the_rate_achieved(model, data):
    """Repeated rows (discrete data) tie their scores in runs: at fpr=0.02 on 40 rows repeated 5 times, a
    run of 5 is 0.025 of them and the threshold flags none. calibration_ records the rate achieved beside
    the target, the run tied at the threshold and the next rate the ties allow, and a warning names them."""
    import copy
    import warnings
    _, (Xv, yv), _ = data
    X = np.repeat(Xv[yv == 0][:40], 5, axis=0)
    det = copy.deepcopy(model)
    with pytest.warns(UserWarning, match=r"threshold='fpr': flags 0 of the 200 validation samples \(an achieved rate of 0\), under "
                                         r"half the target fpr=0.02: 5 of them tie.*identical rows.*pass fpr=0.025"):
        det.calibrate(X, threshold="fpr", fpr=0.02)
    cal = det.calibration_
    assert (cal["fpr"], cal["achieved_fpr"], cal["tied_at_threshold"], cal["next_fpr"]) == (0.02, 0.0, 5, 0.025)
    assert det.predict(X).sum() == 0
    det.calibrate(X, threshold="fpr", fpr=0.025)  # the rate the ties allow: reached
    assert det.calibration_["achieved_fpr"] == 0.025 and det.predict(X).mean() == 0.025
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # varied rows, a rate they reach: no warning
        det.calibrate(Xv, yv, threshold="fpr", fpr=0.1)
    assert det.calibration_["achieved_fpr"] == pytest.approx(0.1, abs=1 / 90) and det.calibration_["tied_at_threshold"] == 1


def test_scoring_never_reads_other_samples(model, data):
    """After calibrate, a sample's score is the same alone and inside a larger set."""
    import copy
    _, (Xv, yv), (Xt, yt) = data
    det = copy.deepcopy(model).calibrate(Xv, yv, compose="svm", threshold="f1")
    whole = det.score_components(Xt)
    part = det.score_components(Xt[5:25])
    # the composer is a fixed function of each sample's own components: exactly equal
    sub = {k: v[5:25] for k, v in whole.components.items()}
    np.testing.assert_array_equal(det.composer_(sub), whole.scores[5:25])
    # end to end equal up to float32 round-off of the batched latent search (BLAS blocking depends on batch size)
    np.testing.assert_allclose(part.scores, whole.scores[5:25], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(det.predict(Xt[5:25]), (part.scores > det.threshold_).astype(int))
    # and calibrating twice on the same data is deterministic
    det2 = copy.deepcopy(model).calibrate(Xv, yv, compose="svm", threshold="f1")
    np.testing.assert_array_equal(det2.decision_function(Xt[5:25]), part.scores)


@pytest.mark.parametrize("compose,threshold", [("grid", "f1"), ("svm", "fpr")])
def test_save_load_keeps_calibration(model, data, tmp_path, compose, threshold):
    import copy

    import ganad.io as gio
    _, (Xv, yv), (Xt, _) = data
    det = copy.deepcopy(model).calibrate(Xv, yv, compose=compose, threshold=threshold)
    det.save(tmp_path / "m")
    back = gio.load_model(tmp_path / "m")
    assert back.composer_.to_dict() == det.composer_.to_dict()
    assert back.threshold_ == det.threshold_ and back.calibration_ == det.calibration_
    assert back.disc_train_mean_ == det.disc_train_mean_
    np.testing.assert_array_equal(back.decision_function(Xt[:30]), det.decision_function(Xt[:30]))
    np.testing.assert_array_equal(back.predict(Xt[:30]), det.predict(Xt[:30]))
    np.testing.assert_array_equal(back.labels_, det.labels_)
    assert "pickle" not in (tmp_path / "m" / "config.json").read_text()


def test_calibrate_model_on_a_saved_model(model, data, tmp_path):
    import copy

    from ganad.io import load_model
    from ganad.scoring.calibration import calibrate_model
    _, (Xv, yv), _ = data
    copy.deepcopy(model).save(tmp_path / "m")
    cal = calibrate_model(tmp_path / "m", Xv, yv, compose="grid", threshold="mcc")
    back = load_model(tmp_path / "m")
    assert back.calibration_ == cal and back.composer_.kind == "grid" and cal["decision_scores_updated"] is False


def test_robust_training_downweights_injected_outliers():
    rng = np.random.default_rng(0)
    n, d = 300, 8
    X = rng.normal(size=(n, d)).astype(np.float32)
    out = rng.choice(n, 15, replace=False)
    X[out] += 6.0
    is_out = np.zeros(n, bool)
    is_out[out] = True
    det = AnoGAN(epochs=3, search_n_max=5, random_state=0).fit(X, robust_contamination=0.05)
    w = det.robust_weights_
    held_out = np.zeros(n, bool)
    held_out[det.validation_index_] = True
    assert w.shape == (n,) and np.isnan(w[held_out]).all() and not np.isnan(w[~held_out]).any()  # NaN: never trained on
    assert np.nanmean(w[is_out]) < np.nanmean(w[~is_out])
    assert np.nanmean(w[is_out]) < 0.5
    hist = det.history_["gan/robust_excluded_fraction"]
    assert len(hist) == 3 and hist[0] == 0.0 and hist[-1] == pytest.approx(0.05, abs=0.005)  # of the 270 rows trained on
    assert det.robust_["proxy"] == "generated" and det.robust_["warmup"] == 1
    with pytest.raises(InputError, match="robust_contamination"):
        AnoGAN(epochs=1).fit(X, robust_contamination=0.9)


def test_composer_weights_survive_a_round_trip_bit_for_bit():
    """Normalising weights that already sum to one (as rounded: 7 x 1/7 = 0.9999999999999998) must
    not move them: a saved and reloaded model's scores, compared against its own calibration scores,
    would otherwise flip ties (confidence jumps of 1/n)."""
    from ganad.scoring.composition import RobustStandardised, WeightedSum
    names = [f"c{i}" for i in range(7)]
    rs = RobustStandardised(names, np.zeros(7), np.ones(7))
    assert sum(rs.weights.values()) != 1.0  # the rounded case this test is about
    back = RobustStandardised.from_dict(rs.to_dict())
    assert back.weights == rs.weights
    ws = WeightedSum({n: 1.0 for n in names})
    assert WeightedSum.from_dict(ws.to_dict()).weights == ws.weights
    assert WeightedSum({"a": 2.0, "b": 6.0}).weights == {"a": 0.25, "b": 0.75}


def test_auprc_of_a_perfect_ranking_is_exactly_one():
    """scikit-learn's average precision sums recall steps × precision and can round above 1 (here
    1.0000000000000002); ganad's metrics keep it in [0, 1] so tables and range checks never see 1 + ε."""
    from sklearn.metrics import average_precision_score

    from ganad.benchmark.runner import _metrics
    from ganad.metrics import auprc, evaluate
    y, s = np.r_[np.zeros(2, int), np.ones(9, int)], np.arange(11, dtype=float)
    assert average_precision_score(y, s) > 1.0
    assert auprc(y, s) == 1.0 and _metrics(y, s)["auprc"] == 1.0 and evaluate(y, s).auprc == 1.0


def test_labels_after_calibrating_a_loaded_model_keep_their_scores_threshold(tmp_path):
    """A loaded model's training scores cannot follow a new composer: labels_ compared those stale
    scores with the new threshold (31 % of the training rows flagged where the model flags 2 %); they
    now keep the threshold the scores were computed for, through save and load."""
    import ganad
    from ganad import GANomaly
    rng = np.random.RandomState(0)
    X = rng.randn(400, 5).astype(np.float32)
    det = GANomaly(epochs=1, random_state=0, contamination=0.05).fit(X)
    fit_labels = det.labels_.copy()
    det.save(tmp_path / "m")
    loaded = ganad.load(tmp_path / "m")
    loaded.calibrate(rng.randn(300, 5).astype(np.float32) * 3, threshold="contamination")  # another composer and threshold
    assert loaded.calibration_["decision_scores_updated"] is False
    assert loaded.threshold_ != det.threshold_
    np.testing.assert_array_equal(loaded.labels_, fit_labels)
    loaded.save(tmp_path / "m2")
    np.testing.assert_array_equal(ganad.load(tmp_path / "m2").labels_, fit_labels)
    det.calibrate(rng.randn(300, 5).astype(np.float32) * 3, threshold="contamination")  # in memory: the scores follow
    assert det.calibration_["decision_scores_updated"] is True
    np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(int))


def test_calibrate_default_keeps_the_score_fit_composed(model, data):
    """compose='default' (and `ganad calibrate` without --compose) re-fits the standardisation of the score
    fit composed (the method's own score blended with knn at knn_weight) on the normal validation samples;
    it used to replace it with the mean of every standardised component (now compose='standardised'),
    a score no validation had chosen: on ADBench cardio GANomaly's AUROC fell from 0.961 to 0.886 after
    calibrating on normal data."""
    import copy

    from ganad.scoring.composition import KnnBlend, robust_location_scale
    _, (Xv, yv), _ = data
    fit_comp = model.composer_
    assert isinstance(fit_comp, KnnBlend)
    det = copy.deepcopy(model).calibrate(Xv, yv, threshold="fpr", fpr=0.1)
    c = det.composer_
    assert isinstance(c, KnnBlend) and c.weight == fit_comp.weight and c.inner.to_dict() == fit_comp.inner.to_dict()
    normal = {k: v[yv == 0] for k, v in model.score_components(Xv).components.items()}
    loc, scale = robust_location_scale(np.stack([np.asarray(fit_comp.inner(normal), np.float64), normal["knn"]], 1))
    np.testing.assert_allclose(c.loc, loc, rtol=1e-6)
    np.testing.assert_allclose(c.scale, scale, rtol=1e-6)
    assert det.calibration_["composer"] == "knn-blend"
    with pytest.raises(InputError, match=r"weights: are given with compose='default'.*compose='standardised'"):
        copy.deepcopy(model).calibrate(Xv, yv, weights={"residual": 1.0})


def test_knn_weight_set_after_fit_takes_effect_at_calibrate(model, data):
    """The knn blend's weight is fitted into the composer: set_params(knn_weight=...) on a fitted model
    leaves its scores as they are until calibrate, whose default composition blends at the weight now."""
    import copy

    from ganad.scoring.composition import KnnBlend
    _, (Xv, yv), _ = data
    det = copy.deepcopy(model)
    s = det.decision_function(Xv)
    det.set_params(knn_weight=0.0)
    np.testing.assert_array_equal(det.decision_function(Xv), s)  # the fitted composer, unchanged
    det.calibrate(Xv[yv == 0])
    own = model.composer_.inner
    assert not isinstance(det.composer_, KnnBlend) and det.composer_.to_dict() == own.to_dict()
    comps = det.score_components(Xv).components
    np.testing.assert_allclose(det.decision_function(Xv), own(comps), rtol=1e-9)
    det.set_params(knn_weight=0.5).calibrate(Xv[yv == 0])
    assert isinstance(det.composer_, KnnBlend) and det.composer_.weight == 0.5


def test_own_score_weights_set_after_fit_take_effect_at_calibrate():
    """f-AnoGAN's kappa (and lam, score_weights) is fitted into the composer like knn_weight: calibrate's
    default composition builds the method's own score from the parameters of now."""
    from ganad import FAnoGAN
    X = np.random.RandomState(0).randn(240, 5).astype(np.float32)
    det = FAnoGAN(epochs=1, encoder_epochs=1, width=8, latent_dim=2, random_state=0).fit(X[:180])
    assert det.composer_.inner.weights == pytest.approx({"izi_residual": 1 / 2, "izi_feature": 1 / 2})
    det.set_params(kappa=3.0)
    det.calibrate(X[180:])
    assert det.composer_.inner.weights == pytest.approx({"izi_residual": 1 / 4, "izi_feature": 3 / 4})


@pytest.mark.parametrize("method", ["ganomaly", "fanogan", "vaegan"])
def test_the_default_score_runs_no_inversion_and_gives_the_same_scores(method, monkeypatch):
    """The default score of GANomaly, f-AnoGAN and β-VAEGAN is the knn distance of D(x) and x alone
    (feature+input at weight 1): decision_function ran E and G for every batch and threw them away.
    It now skips them, with scores equal to score_components' (which still runs everything); where a
    component needs the inversion (weight 0.75: the own score) it still runs."""
    import ganad
    rng = np.random.RandomState(0)
    X = rng.randn(300, 6).astype(np.float32)
    det = ganad.DETECTORS[method](epochs=1, random_state=0, verbose=False).fit(X[:200])
    full = det.score_components(X[200:])
    calls = []
    real = type(det)._invert
    monkeypatch.setattr(type(det), "_invert", lambda self, x: calls.append(1) or real(self, x))
    np.testing.assert_array_equal(det.decision_function(X[200:]), full.scores)
    assert calls == []
    det.set_params(knn_weight=0.75).calibrate(X[150:200])  # the own score blended in again: E and G needed
    det.decision_function(X[200:])
    assert calls


def test_svm_composer_refuses_validation_components_that_give_one_decision_value():
    """Identical validation components (ten normal, ten anomalous) fitted a flat SVM: every later
    input got the same score, with no error (threshold='mcc' on the same data refuses)."""
    comps = {"a": np.ones(20), "b": np.full(20, 2.0)}
    y = np.r_[np.zeros(10), np.ones(10)].astype(int)
    with pytest.raises(InputError, match="one decision value") as e:
        SVMComposer.fit(comps, y)
    assert "Fix:" in str(e.value)


@pytest.mark.parametrize("shift", [2.0, 4.0, 6.0, 20.0])
def test_platt_fit_reaches_the_smoothed_likelihood_optimum_on_separated_values(shift):
    """Plain Newton steps ran away on well separated decision values (|A| ≈ 1e13 in 135 of 160 audit
    cases): the SVM composition's score was a ±1e13 step, not the log-odds. With Lin et al.'s line
    search (A, B) is the optimum of Platt's smoothed cross entropy, which scipy finds too."""
    from scipy.optimize import minimize
    r = np.random.RandomState(int(shift))
    f = np.r_[r.randn(300), r.randn(30) + shift]
    y = np.r_[np.zeros(300, int), np.ones(30, int)]
    a, b = platt_fit(f, y)
    t = np.where(y == 1, 31 / 32, 1 / 302)

    def nll(v):
        z = v[0] * f + v[1]
        return np.sum(np.logaddexp(0, z) - (1 - t) * z)

    best = minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-8})
    assert np.isfinite([a, b]).all() and abs(a) < 100
    assert nll([a, b]) <= best.fun + 1e-6
    comps = {"a": f, "b": f + r.randn(330) * 0.1}
    svm = SVMComposer.fit(comps, y)
    s = svm(comps)
    assert np.abs(s).max() < 100 and 0 < svm.probability(comps).min() and svm.probability(comps).max() < 1


def test_evaluate_ranks_inf_scores_on_top_as_the_cli_does():
    """on_nonfinite='max' scores a row the networks overflow on +inf: ganad evaluate ranked it on top,
    ganad.metrics.evaluate refused it ("contains NaN or infinite values")."""
    from ganad.metrics import evaluate
    e = evaluate([0, 0, 1, 1], [0.1, 0.2, 0.3, np.inf], threshold=0.25)
    assert e.auroc == 1.0 and e.recall == 1.0 and e.precision == 1.0
    e = evaluate([0, 0, 1, 0], [0.1, 0.2, 0.3, np.inf], threshold=5.0)  # above the threshold too: flagged
    assert e.n_flagged == 1 and e.false_positive_rate == pytest.approx(1 / 3)
    for bad in (np.nan, -np.inf):
        with pytest.raises(InputError):
            evaluate([0, 0, 1, 1], [0.1, 0.2, 0.3, bad])


def test_robust_training_keeps_the_rows_it_threw_out_out_of_the_knn_bank():
    """The default score is the distance to the knn bank, which held every training row: a test anomaly
    like the rows robust training excluded found them as its neighbours and scored as normal (below
    all 200 new normal rows; the robust fit scored like the plain one)."""
    from ganad import GANomaly
    rng = np.random.RandomState(0)
    X = rng.randn(300, 8).astype(np.float32)
    P = np.full((1, 8), 6.0, np.float32)
    X[:15] = P + 0.05 * rng.randn(15, 8)  # 5 % contamination: a tight far cluster
    new = rng.randn(200, 8).astype(np.float32)
    det = GANomaly(epochs=5, random_state=0).fit(X, robust_contamination=0.05, robust_warmup=1)
    trained = np.setdiff1d(np.arange(300), det.validation_index_)
    out = set(trained[det.robust_weights_[trained] < 0.5].tolist())
    assert len(out) >= 10 and not out & set(trained[det._knn_bank_index].tolist())
    assert det.decision_function(P)[0] > det.decision_function(new).max() and det.predict(P)[0] == 1
    before = det.decision_function(X[:15])
    det._refit_knn(X)  # the benchmarks' rebuild of the bank on the same networks: the same rows kept
    np.testing.assert_array_equal(det.decision_function(X[:15]), before)


def test_hard_weights_exclude_ceil_c_n_rows_despite_rounding():
    """0.07 · 100 is 7.000000000000001 in floating point: ⌈c·n⌉ gave 8 rows, not 7."""
    s = torch.arange(100, dtype=torch.float32)
    assert int((robust_weights(s, 0.07) == 0).sum()) == 7 and int((robust_weights(s, 0.14) == 0).sum()) == 14


def test_copies_of_bank_rows_sit_at_distance_zero_not_float32_noise():
    """Binary rows with many copies: a copy of a bank row, embedded in another batch, sat at 1e-8 in the
    code space; the held-out slice's knn MAD became 7e-8, the knn component was blown up 1e7 times in
    the blend (threshold_ 274,991) and a row's score depended on its batch."""
    from ganad import BiGAN
    X = (np.random.RandomState(0).rand(200, 5) > 0.5).astype(float)  # 32 distinct rows
    d = BiGAN(epochs=2, width=8, latent_dim=2, random_state=0).fit(X)
    assert np.array_equal(X[0], X[2])
    both, alone = d.decision_function(X[[0, 2]]), d.decision_function(X[:1])
    assert abs(both[0] - both[1]) < 1e-5 and abs(both[0] - alone[0]) < 1e-5
    assert min(d.composer_.scale) > 1e-4 and d.threshold_ < 100
