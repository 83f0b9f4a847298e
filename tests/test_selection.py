"""Issue 15: held-out slice, label-free epoch selection, EMA, kNN component, ensembles,
batch size 'auto', lazy training scores of latent-search methods, patient-adaptive scoring."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
import torch
from torch import nn

import ganad
from ganad.exceptions import InputError, ModelFileError
from ganad.scoring.adaptive import AdaptiveThreshold, prefix_standardise, prefix_threshold
from ganad.training.selection import Selector


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    X = rng.randn(400, 6).astype(np.float32)
    far = (rng.randn(40, 6) * 0.5 + 6).astype(np.float32)
    return X, far


def test_batch_size_auto_rule():
    det = ganad.GANomaly()
    assert det.batch_size == "auto"
    assert [det._batch_size(n) for n in (20, 500, 4096, 8192, 45000)] == [32, 32, 128, 256, 256]
    assert ganad.GANomaly(batch_size=17)._batch_size(45000) == 17
    with pytest.raises(InputError, match="batch_size"):
        ganad.GANomaly(batch_size="big", epochs=1).fit(np.zeros((40, 3), np.float32))


@pytest.mark.parametrize("bad", [dict(validation_fraction=0.7), dict(validation_fraction=-0.1), dict(ema=1.5),
                                 dict(patience=0), dict(n_members=0), dict(n_neighbors=0)])
def test_new_parameters_are_checked(bad, blobs):
    with pytest.raises(InputError, match=list(bad)[0]):
        ganad.GANomaly(epochs=1, **bad).fit(blobs[0])


def test_ema_shadow_follows_the_warm_up_formula():
    net = nn.ModuleDict({"a": nn.Linear(1, 1, bias=False)})
    with torch.no_grad():
        net["a"].weight.fill_(0.0)
    sel = Selector(net, None, ema=0.5)
    with torch.no_grad():
        net["a"].weight.fill_(1.0)
    sel.after_step()  # d = min(0.5, 2/11) = 2/11 -> shadow = 0 * 2/11 + 1 * 9/11
    assert sel.shadow[0].item() == pytest.approx(9 / 11)
    info = sel.finish()  # no criterion: the averaged weights are kept
    assert net["a"].weight.item() == pytest.approx(9 / 11)
    assert info["ema"] == 0.5


def test_ema_leaves_spectral_norm_power_vectors_alone(blobs):
    """The weight average skips spectral norm's u and v: an average of unit vectors is shorter than
    one, and the kept discriminator's eval-mode σ = uᵀWv fell to a fraction of W's largest singular
    value (ALAD, 10 epochs: 3 % in Dzz, 28 % in Dxz, 54 % in Dxx), its layers scaled up by the inverse."""
    from torch.nn.utils import parametrize
    net = nn.ModuleDict({"d": nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3))})
    sel = Selector(net, None, ema=0.9)
    assert len(sel.shadow) == 2  # the weight and the bias, not u or v
    X, _ = blobs
    det = ganad.ALAD(epochs=3, random_state=0, width=16).fit(X)  # spectral_norm=True by default
    checked = 0
    for m in det.nets_.modules():
        if parametrize.is_parametrized(m, "weight"):
            sn = m.parametrizations.weight[0]
            w = m.parametrizations.weight.original.detach().flatten(1)
            assert sn._u.norm().item() == pytest.approx(1.0, abs=1e-4) and sn._v.norm().item() == pytest.approx(1.0, abs=1e-4)
            assert torch.dot(sn._u, w @ sn._v).item() > 0.8 * torch.linalg.matrix_norm(w, 2).item()
            checked += 1
    assert checked >= 6


def test_holdout_selection_keeps_the_best_epoch(blobs):
    X, _ = blobs
    det = ganad.GANomaly(epochs=6, random_state=0, validation_fraction=0.2).fit(X)
    val = det.validation_index_
    assert len(val) == 80 and len(np.unique(val)) == 80
    crit = det.history_["select/criterion"]
    assert len(crit) == 6
    best = det.selection_["best_epoch"]
    assert 3 <= best <= 6  # the first third is a warm-up that is never kept
    assert det.selection_["best_value"] == pytest.approx(min(crit[2:]))
    # the kept weights are the best epoch's: the criterion recomputed now gives its value
    Xt = torch.from_numpy(det.scaler_.transform(X[val]))
    assert det._selection_criterion(Xt) == pytest.approx(det.selection_["best_value"], rel=1e-5)
    assert det.timing_["n_train"] == 320
    assert det.validation_scores_.shape == (80,)


def test_patience_stops_training(blobs, monkeypatch):
    X, _ = blobs
    values = iter(range(100))
    monkeypatch.setattr(ganad.GANomaly, "_selection_criterion", lambda self, Xv: float(next(values)))
    det = ganad.GANomaly(epochs=20, random_state=0, patience=2).fit(X)
    # warm-up of 7 epochs (ceil(20/3)); epoch 8 is the first kept, epochs 9 and 10 do not improve: stop
    assert len(det.history_["select/criterion"]) == 10
    assert det.selection_["best_epoch"] == 8 and det.selection_["stopped_at_epoch"] == 10
    assert len(det.history_["ganomaly/d_loss"]) == 10


def test_no_holdout_when_too_small():
    X = np.random.RandomState(0).randn(60, 3).astype(np.float32)
    det = ganad.GANomaly(epochs=2, random_state=0).fit(X)  # 10 % of 60 = 6 < 16
    assert len(det.validation_index_) == 0
    assert "best_epoch" not in det.selection_
    assert det.decision_scores_.shape == (60,)


def test_knn_component_and_round_trip(blobs, tmp_path):
    X, far = blobs
    det = ganad.FAnoGAN(epochs=3, random_state=0, n_neighbors=3, knn_space="code").fit(X)
    assert det.knn_bank_.shape == (360, det.latent_dim)
    knn = det.score_components(np.r_[X[:40], far]).components["knn"]
    assert knn[40:].mean() > knn[:40].mean()
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    torch.testing.assert_close(back.knn_bank_, det.knn_bank_)
    np.testing.assert_allclose(back.score_components(far).components["knn"], det.score_components(far).components["knn"],
                               rtol=1e-5)


@pytest.mark.parametrize("n_bank, k, loo", [(3, 5, False), (64, 5, False), (300, 5, False), (256, 5, True),
                                             (1000, 3, True), (4096, 10, False), (129, 1, False)])
def test_knn_distance_equals_brute_force(n_bank, k, loo):
    """The two-stage search (group minima, then the k best groups' columns) finds the exact k nearest:
    banks smaller than k, exact multiples of the group size, padded last groups, duplicated codes (ties),
    codes far from the origin (float32 cancellation), leave-one-out on the bank's own rows."""
    rng = np.random.RandomState(n_bank)
    bank = (rng.randn(n_bank, 8) * 0.3 + 50.0).astype(np.float32)
    bank[1::7] = bank[0]  # ties
    det = ganad.FAnoGAN(n_neighbors=k)
    det.knn_bank_ = torch.from_numpy(bank)
    emb = bank[: min(n_bank, 50)] if loo else (rng.randn(70, 8) * 0.4 + 50.0).astype(np.float32)
    mark = det._scoring_training_rows() if loo else contextlib.nullcontext()  # the bank's own rows: each leaves itself out
    with mark:
        got = det._knn_distance(torch.from_numpy(emb)).numpy()
    d = np.sqrt(((emb[:, None, :].astype(np.float64) - bank[None].astype(np.float64)) ** 2).sum(2))
    kk = min(k + loo, n_bank)
    want = np.sort(d, axis=1)[:, loo:kk].mean(1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    det.knn_bank_ = torch.from_numpy(bank[::-1].copy())  # a new bank invalidates the cached plan
    want2 = np.sort(np.sqrt(((emb[:, None, :].astype(np.float64) - bank[::-1][None].astype(np.float64)) ** 2).sum(2)), 1)[:, loo:kk].mean(1)
    with det._scoring_training_rows() if loo else contextlib.nullcontext():
        got2 = det._knn_distance(torch.from_numpy(emb)).numpy()
    np.testing.assert_allclose(got2, want2, rtol=1e-9, atol=1e-9)


def test_training_rows_outside_a_bank_smaller_than_n_neighbors_keep_every_entry():
    """n_neighbors >= the bank's rows: the search takes the whole bank, and no extra entry is searched
    for a row's own one. A training row outside the bank (held out) dropped its farthest entry all the
    same, so its training score (decision_scores_) differed from its score as new data
    (validation_scores_); rows in the bank average the others."""
    rng = np.random.RandomState(0)
    bank = rng.randn(6, 3).astype(np.float32)
    det = ganad.FAnoGAN(n_neighbors=8)
    det.knn_bank_ = torch.from_numpy(bank)
    emb = np.r_[bank[:2], rng.randn(3, 3).astype(np.float32)]
    d = np.sqrt(((emb[:, None, :].astype(np.float64) - bank[None].astype(np.float64)) ** 2).sum(2))
    want = np.r_[np.sort(d[:2], 1)[:, 1:].mean(1), d[2:].mean(1)]
    with det._scoring_training_rows():
        np.testing.assert_allclose(det._knn_distance(torch.from_numpy(emb)).numpy(), want, rtol=1e-9)
    X = rng.randn(200, 4).astype(np.float32)
    fitted = ganad.BiGAN(epochs=1, width=8, random_state=0, n_neighbors=180).fit(X)  # a bank of 180 rows, 20 held out
    assert fitted.knn_bank_.shape[0] == 180
    np.testing.assert_array_equal(fitted.decision_scores_[fitted.validation_index_], fitted.validation_scores_)


def test_anogan_knn_uses_discriminator_features(blobs):
    X, _ = blobs
    det = ganad.AnoGAN(epochs=2, random_state=0, search_n_max=5, knn_space="feature").fit(X)  # (the default: 'feature+input')
    assert det.knn_space_ == "feature" and det.knn_metric_ == det._knn_metric_auto["feature"]
    assert det.knn_bank_.shape[0] == (1 if det.knn_metric_ == "mahalanobis" else 360)
    x = torch.from_numpy(det.scaler_.transform(X[:7]))
    with torch.inference_mode():
        f = det._inference_net("D")(x)[1].reshape(7, -1)
    assert det.knn_basis_.shape[0] == f.shape[1] and det.knn_bank_.shape[1] == det.knn_basis_.shape[1] + 1
    assert "knn" in det.score_components(X[:5]).components


@pytest.mark.parametrize("method", ["GANomaly", "FAnoGAN", "VAEGAN"])
@pytest.mark.parametrize("space", ["code", "feature"])
def test_knn_space_bank_and_round_trip(blobs, tmp_path, method, space):
    """Each space builds its bank from the right representation, separates far samples, and a saved
    model scores like the original."""
    X, far = blobs
    det = getattr(ganad, method)(epochs=2, random_state=0, knn_space=space, knn_metric="euclidean").fit(X)
    assert det.knn_space_ == space
    x = torch.from_numpy(det.scaler_.transform(X[:4]))
    with torch.inference_mode():
        code = det._encode(x).reshape(4, -1).shape[1]
        feat = det._inference_net("D")(x)[1].reshape(4, -1).shape[1]
    assert feat > det._knn_compress_above  # the MLP discriminator's 128 features: compressed
    if space == "code":
        assert det.knn_bank_.shape == (360, code) and "knn_basis_" not in det.__dict__
    else:
        r = det.knn_basis_.shape[1]
        assert det.knn_basis_.shape == (feat, r) and 1 <= r <= det._knn_max_dim
        assert det.knn_bank_.shape == (360, r + 1)
    knn = det.score_components(np.r_[X[:40], far]).components["knn"]
    assert knn[40:].mean() > knn[:40].mean()
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.knn_space_ == space
    np.testing.assert_allclose(back.decision_function(far), det.decision_function(far), rtol=1e-6)


@pytest.mark.parametrize("width", [6, 96])
def test_knn_space_input_is_a_knn_on_the_scaled_inputs(blobs, tmp_path, width):
    """knn_space='input': the component is the mean Euclidean distance to the k nearest bank rows in
    the scaled input space (PyOD's KNN on ganad's scaling); wider than 64 features, compressed as the
    discriminator's features are (a close lower bound); training rows leave themselves out; a saved
    model scores the same."""
    X, far = blobs
    if width > X.shape[1]:  # 96 features, 6 of them informative: compressed to the bank's principal directions
        rng = np.random.RandomState(1)
        mix = rng.randn(X.shape[1], width).astype(np.float32)
        X, far = X @ mix + 0.01 * rng.randn(len(X), width).astype(np.float32), far @ mix
    det = ganad.GANomaly(epochs=2, random_state=0, knn_space="input", n_neighbors=5).fit(X)
    assert det.knn_space_ == "input" and det.knn_metric_ == "euclidean"
    assert ("knn_basis_" in det.__dict__) == (width > det._knn_compress_above)
    rows = np.setdiff1d(np.arange(len(X)), det.validation_index_)[det._knn_bank_index]
    bank = torch.from_numpy(det.scaler_.transform(X[rows])).double()
    Q = np.r_[X[:30], far]
    want = torch.cdist(torch.from_numpy(det.scaler_.transform(Q)).double(), bank).topk(5, largest=False).values.mean(1).numpy()
    got = _raw_knn(det, Q)
    if width <= det._knn_compress_above:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        assert (got <= want * (1 + 1e-5) + 1e-6).all() and np.corrcoef(got, want)[0, 1] > 0.99
    knn = det.score_components(Q).components["knn"]
    assert knn[30:].min() > knn[:30].max()
    # fit's own rows: each in the bank leaves its own entry out (its k nearest others)
    with det._scoring_training_rows():
        loo = _raw_knn(det, X[rows[:20]])
    others = torch.cdist(bank[:20], bank).topk(6, largest=False).values[:, 1:].mean(1).numpy()
    if width <= det._knn_compress_above:
        np.testing.assert_allclose(loo, others, rtol=1e-5, atol=1e-6)
    else:
        assert np.corrcoef(loo, others)[0, 1] > 0.99 and (loo > 0.5 * others).all()
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.knn_space_ == "input"
    np.testing.assert_array_equal(back.decision_function(Q), det.decision_function(Q))


@pytest.mark.parametrize("space, metric, edited", [("feature", "euclidean", "input"), ("feature", "mahalanobis", "input"),
                                                    ("input", "euclidean", "code"), ("input", "mahalanobis", "feature"),
                                                    ("code", "euclidean", "input"), ("both", "euclidean", "input"),
                                                    ("feature+input", "auto", "feature"), ("feature", "mahalanobis", "feature+input"),
                                                    ("feature+input", "auto", "input")])
def test_model_file_with_an_edited_knn_space_is_refused_at_load(blobs, tmp_path, space, metric, edited):
    """A config.json whose knn_space was edited (the knn tensors built for another space) is refused
    by load with a ModelFileError naming knn_space, not loaded to fail at the first scoring with
    torch's shape error; the unedited model (an ensemble alike) still loads and scores the same."""
    import json
    import shutil
    X, far = blobs
    n_members = 2 if space == "code" else 1  # an ensemble: each member checked
    det = ganad.GANomaly(epochs=1, random_state=0, knn_space=space, knn_metric=metric, n_members=n_members).fit(X)
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(ganad.load(tmp_path / "m").decision_function(far), det.decision_function(far))
    shutil.copytree(tmp_path / "m", tmp_path / "bad")
    cfg = json.loads((tmp_path / "bad" / "config.json").read_text())
    states = [cfg["state"]] + list(cfg["state"].get("members") or [])
    for st in states:
        if st.get("knn_space") is not None:
            st["knn_space"] = edited
            st.pop("knn_split", None), st.pop("knn_scales", None)
    (tmp_path / "bad" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="knn_space"):
        ganad.load(tmp_path / "bad").decision_function(far)


@pytest.mark.parametrize("method, width", [("GANomaly", 12), ("FAnoGAN", 100)])
def test_feature_plus_input_is_the_two_distances_each_scaled(blobs, tmp_path, method, width):
    """knn_space='feature+input': the mean of the features' Mahalanobis distance and the inputs'
    Euclidean kNN distance, each divided by its typical size on the held-out slice: exactly what
    the 'feature' and 'input' spaces give on the same networks (refitted banks), for new rows and,
    each with its own leave-one-out, for the training rows; inputs wider than 64 numbers compressed
    on their own directions; saved and loaded with the same scores. The features' distance d enters
    two-sided, |d - m| with m its median on the held-out slice (knn_typical_)."""
    import copy
    X0, far0 = blobs
    rng = np.random.RandomState(1)
    proj = rng.randn(X0.shape[1], width).astype(np.float32)
    X, far = X0 @ proj, far0 @ proj
    det = getattr(ganad, method)(epochs=2, random_state=0, knn_space="feature+input").fit(X)
    assert det.knn_space_ == "feature+input" and det.knn_metric_ == "mahalanobis+euclidean"
    assert (det.__dict__.get("knn_input_basis_") is not None) == (width > 64)
    parts = {}
    for space in ("feature", "input"):
        d = copy.deepcopy(det)
        d.knn_space = space
        d._refit_knn(X)
        with d._scoring_training_rows():
            tr = d.score_components(X).components["knn"]
        parts[space] = (d.score_components(far).components["knn"], tr)
    s, m = det.knn_scales_, det.knn_typical_
    with det._scoring_training_rows():
        tr = det.score_components(X).components["knn"]
    np.testing.assert_allclose(det.score_components(far).components["knn"],
                               0.5 * (np.abs(parts["feature"][0] - m) / s[0] + parts["input"][0] / s[1]), rtol=1e-6)
    np.testing.assert_allclose(tr, 0.5 * (np.abs(parts["feature"][1] - m) / s[0] + parts["input"][1] / s[1]), rtol=1e-6, atol=1e-9)
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    np.testing.assert_array_equal(back.decision_function(far), det.decision_function(far))
    with pytest.raises(InputError, match="knn_metric.*feature\\+input.*leave knn_metric='auto'"):
        getattr(ganad, method)(epochs=1, knn_space="feature+input", knn_metric="euclidean").fit(X)
    with pytest.raises(InputError, match="knn_space"):
        ganad.BiGAN(epochs=1, knn_space="feature+input").fit(X)


@pytest.mark.parametrize("method", ["GANomaly", "FAnoGAN", "VAEGAN"])
def test_mahalanobis_with_both_names_every_space_it_works_in(blobs, method):
    """The fix names only spaces that accept knn_metric='mahalanobis': 'auto' is 'feature+input' for
    every method that takes 'both', which refuses any metric but 'auto' (the fix sent users from one
    refusal to the next)."""
    with pytest.raises(InputError, match="knn_space 'code', 'feature' or 'input'") as info:
        getattr(ganad, method)(epochs=1, knn_space="both", knn_metric="mahalanobis").fit(blobs[0])
    fix = str(info.value).split("Fix: ")[1].split(", or knn_metric=")[0]
    named = re.findall(r"'([a-z+]+)'", fix.split("knn_space")[1])
    assert named == ["code", "feature", "input"]
    for space in named:                                  # each space the fix names takes the metric
        getattr(ganad, method)(epochs=1, knn_space=space, knn_metric="mahalanobis").fit(blobs[0][:200])


def test_compressed_feature_distance_is_a_close_lower_bound(blobs):
    """The compressed feature space (principal coordinates + the remainder's length) never puts a
    sample farther from the bank than the full features do, and ranks samples like them."""
    from scipy.stats import spearmanr
    X, far = blobs
    det = ganad.GANomaly(epochs=3, random_state=0, knn_space="feature", knn_metric="euclidean").fit(X)
    Q = np.r_[X[:60], far]
    got = det.score_components(Q).components["knn"]
    xs = torch.from_numpy(det.scaler_.transform(Q))
    bank_rows = torch.from_numpy(det.scaler_.transform(X))[torch.from_numpy(np.setdiff1d(np.arange(len(X)), det.validation_index_))]
    bank_rows = bank_rows[torch.from_numpy(det._knn_bank_index)]
    with torch.inference_mode():
        D = det._inference_net("D")
        fq, fb = D(xs)[1].double(), D(bank_rows)[1].double()
    exact = torch.cdist(fq, fb).topk(det.n_neighbors, largest=False).values.mean(1).numpy()
    assert np.all(got <= exact * (1 + 1e-4) + 1e-5)
    assert spearmanr(got, exact).statistic > 0.95


def _mahalanobis_reference(det, X, Q, space):
    """sklearn's Ledoit–Wolf Mahalanobis distance of ``Q``'s representations to those of the
    detector's bank rows (the training rows outside the held-out slice that fit kept)."""
    from sklearn.covariance import LedoitWolf
    rows = np.setdiff1d(np.arange(len(X)), det.validation_index_)[det._knn_bank_index]
    with torch.inference_mode():
        rep = {"code": det._knn_code, "input": det._knn_input}.get(space, det._knn_feature)
        F = rep(torch.from_numpy(det.scaler_.transform(X[rows]))).double().numpy()
        Fq = rep(torch.from_numpy(det.scaler_.transform(Q))).double().numpy()
    lw = LedoitWolf().fit(F)
    return np.sqrt(lw.mahalanobis(Fq)), lw, F, Fq


def _raw_knn(det, Q):
    with torch.inference_mode():
        return det._knn_distance(det._knn_embed(torch.from_numpy(det.scaler_.transform(Q)))).numpy()


@pytest.mark.parametrize("method, space", [("GANomaly", "feature"), ("GANomaly", "code"), ("FAnoGAN", "feature"), ("BiGAN", "code"),
                                           ("VAEGAN", "input")])
def test_knn_metric_mahalanobis_equals_ledoit_wolf(blobs, tmp_path, method, space):
    """knn_metric='mahalanobis': the component is the Mahalanobis distance of the sample's code /
    features to the bank's mean under its Ledoit–Wolf covariance (as sklearn computes it); the
    model file keeps the mean and the whitening (a one-row bank), and a saved model scores the same."""
    X, far = blobs
    det = getattr(ganad, method)(epochs=2, random_state=0, knn_space=space, knn_metric="mahalanobis").fit(X)
    assert det.knn_metric_ == "mahalanobis" and det.knn_bank_.shape[0] == 1
    Q = np.r_[X[:30], far]
    want, *_ = _mahalanobis_reference(det, X, Q, space)
    np.testing.assert_allclose(_raw_knn(det, Q), want, rtol=2e-3, atol=1e-4)
    knn = det.score_components(Q).components["knn"]
    assert knn[30:].mean() > knn[:30].mean()
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.knn_metric_ == "mahalanobis"
    np.testing.assert_array_equal(back.decision_function(Q), det.decision_function(Q))


def test_knn_metric_mahalanobis_needs_no_search(blobs):
    """The Mahalanobis bank is one row, the origin: the component is the embedding's length, taken
    directly, bit-equal to what the nearest-neighbour search over that one row returns; and with every
    direction kept the remainder's coordinate is 0, as the general embedding's (scaled by 0) is."""
    X, far = blobs
    det = ganad.GANomaly(epochs=2, random_state=0, knn_space="feature", knn_metric="mahalanobis").fit(X)
    assert det.knn_basis_.shape[0] == det.knn_basis_.shape[1] and float(det.knn_scale_[-1]) == 0.0
    Q = torch.from_numpy(det.scaler_.transform(np.r_[X[:30], far]))
    with torch.inference_mode():
        f = det._knn_feature(Q)
        emb = det._knn_embed_rows(f)
        c = f - det.knn_center_
        p = c @ det.knn_basis_
        rest = ((c * c).sum(1) - (p * p).sum(1)).clamp_min(0).sqrt()
        general = torch.cat([p, rest[:, None]], dim=1) * det.knn_scale_
        torch.testing.assert_close(emb, general, rtol=0, atol=0)
        fast = det._knn_search(emb, None)
        searched = det._knn_nearest(emb, None, 0)
    assert torch.equal(fast, searched)


def test_knn_metric_mahalanobis_beyond_the_kept_directions(blobs):
    """Wider than ``_knn_max_dim``: the first principal directions are whitened one by one and what
    they leave out counts as one coordinate, scaled by the mean shrunk variance of the rest."""
    from sklearn.covariance import ledoit_wolf_shrinkage
    X, far = blobs
    det = ganad.GANomaly(epochs=2, random_state=0, knn_space="feature", knn_metric="mahalanobis")
    det._knn_max_dim = 10
    det.fit(X)
    Q = np.r_[X[:30], far]
    _, _, F, Fq = _mahalanobis_reference(det, X, Q, "feature")
    mu = F.mean(0)
    S = np.cov(F - mu, rowvar=False, bias=True)
    a = ledoit_wolf_shrinkage(F - mu, assume_centered=True)
    vals, vecs = np.linalg.eigh(S)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    lam = (1 - a) * vals + a * vals.mean()
    c = Fq - mu
    p = c @ vecs[:, :10]
    rest2 = (c * c).sum(1) - (p * p).sum(1)
    want = np.sqrt((p * p / lam[:10]).sum(1) + rest2 / lam[10:].mean())
    assert det.knn_basis_.shape[1] == 10 and det.knn_scale_.shape == (11,)
    np.testing.assert_allclose(_raw_knn(det, Q), want, rtol=2e-3, atol=1e-3)


def test_knn_metric_mahalanobis_without_a_held_out_slice(blobs):
    """Without a held-out slice the component is standardised on the bank's rows: nothing to leave
    out (the bank is the mean), and the scores stay finite."""
    X, far = blobs
    det = ganad.GANomaly(epochs=2, random_state=0, knn_space="feature", knn_metric="mahalanobis", validation_fraction=0).fit(X)
    s = det.decision_function(np.r_[X[:20], far])
    assert np.isfinite(s).all() and s[20:].mean() > s[:20].mean()


def test_knn_metric_auto_per_space(blobs):
    """'auto' = Mahalanobis in the feature space, Euclidean k nearest for codes and 'both' (the
    series path builds its detectors with codes, so it keeps the Euclidean search)."""
    X, _ = blobs
    got = {sp: ganad.GANomaly(epochs=1, random_state=0, knn_space=sp).fit(X).knn_metric_ for sp in ("feature", "code", "both")}
    assert got == {"feature": "mahalanobis", "code": "euclidean", "both": "euclidean"}
    assert ganad.BiGAN(epochs=1, random_state=0).fit(X).knn_metric_ == "euclidean"


def test_knn_metric_mahalanobis_with_both_is_refused(blobs):
    with pytest.raises(InputError, match="knn_metric.*'both'"):
        ganad.GANomaly(epochs=1, knn_space="both", knn_metric="mahalanobis").fit(blobs[0])
    with pytest.raises(InputError, match="knn_metric"):
        ganad.GANomaly(epochs=1, knn_metric="cosine").fit(blobs[0])


def test_model_file_with_a_mismatched_knn_scale_is_refused(blobs, tmp_path):
    from safetensors.torch import load_file, save_file
    det = ganad.GANomaly(epochs=1, random_state=0, knn_space="feature", knn_metric="mahalanobis").fit(blobs[0])
    det.save(tmp_path / "m")
    wfile = tmp_path / "m" / "model.safetensors"
    t = load_file(str(wfile))
    t["knn_scale_"] = t["knn_scale_"][:-1].contiguous()
    save_file(t, str(wfile))
    with pytest.raises(ModelFileError, match="knn_metric 'mahalanobis'"):
        ganad.load(tmp_path / "m")
    del t["knn_scale_"]
    save_file(t, str(wfile))
    with pytest.raises(ModelFileError, match="knn_metric 'mahalanobis'"):
        ganad.load(tmp_path / "m")


def test_knn_space_auto_per_method():
    assert ganad.GANomaly().knn_space == "auto" and ganad.GANomaly().knn_weight == "auto"
    assert {m: getattr(ganad, m)()._resolve_knn_space() for m in ("GANomaly", "FAnoGAN", "VAEGAN", "AnoGAN", "BiGAN", "ALAD")} == {
        "GANomaly": "feature+input", "FAnoGAN": "feature+input", "VAEGAN": "feature+input", "AnoGAN": "feature+input",
        "BiGAN": "code", "ALAD": "code"}


@pytest.mark.parametrize("method, space, weight", [("GANomaly", "auto", 1.0), ("FAnoGAN", "feature", 0.75),
                                                   ("BiGAN", "auto", 0.75), ("AnoGAN", "auto", 1.0),
                                                   ("AnoGAN", "feature", 0.75)])
def test_knn_weight_auto_is_the_weight_chosen_for_the_fitted_space(blobs, method, space, weight):
    """knn_weight='auto' (the default) blends at 1.0 in the 'feature+input' space (the default of
    GANomaly, f-AnoGAN and β-VAEGAN, chosen with that weight on validation data) and at 0.75 in the
    others; the fitted composer is the one a number gives, and the record says which weight."""
    X, far = blobs
    kw = {"epochs": 1, "random_state": 0, "knn_space": space}
    if method == "AnoGAN":
        kw["search_n_max"] = 2
    det = getattr(ganad, method)(**kw).fit(X[:300])
    assert det._knn_weight_now() == weight
    assert det.calibration_["composer"] == f"method default blended with knn (weight {weight})"
    same = getattr(ganad, method)(**{**kw, "knn_weight": weight}).fit(X[:300])
    np.testing.assert_allclose(det.decision_function(far[:20]), same.decision_function(far[:20]), rtol=1e-6, atol=1e-9)


def test_knn_weight_refuses_other_strings():
    with pytest.raises(InputError, match="knn_weight.*'auto'"):
        ganad.GANomaly(epochs=1, knn_weight="full").fit(np.random.RandomState(0).randn(50, 4))


@pytest.mark.parametrize("method, space", [("BiGAN", "feature"), ("ALAD", "both"), ("AnoGAN", "code"), ("AnoGAN", "both"),
                                           ("GANomaly", "codes")])
def test_knn_space_a_method_cannot_use_is_refused(blobs, method, space):
    with pytest.raises(InputError, match="knn_space"):
        getattr(ganad, method)(epochs=1, knn_space=space).fit(blobs[0])


def test_anogan_takes_the_feature_plus_input_space(blobs, tmp_path):
    """docs/training.md lists AnoGAN among the methods of knn_space='feature+input' (it has the
    discriminator's features and the input, all that space needs); AnoGAN refused it, naming only
    'auto', 'feature' or 'input'."""
    X, far = blobs
    det = ganad.AnoGAN(epochs=1, random_state=0, search_n_max=2, knn_space="feature+input").fit(X[:200])
    assert det.knn_space_ == "feature+input" and det.knn_metric_ == "mahalanobis+euclidean"
    comps = det.score_components(far[:10]).components
    assert "knn" in comps and np.isfinite(comps["knn"]).all()
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    np.testing.assert_array_equal(back.decision_function(far[:10]), det.decision_function(far[:10]))
    np.testing.assert_array_equal(back.decision_scores_, det.decision_scores_)


def _edit_config(model_dir, edit):
    """Apply ``edit`` to a saved model's config.json (an older file, or a tampered one)."""
    import json
    f = model_dir / "config.json"
    cfg = json.loads(f.read_text())
    edit(cfg)
    f.write_text(json.dumps(cfg))


@pytest.mark.parametrize("method, params, key, legacy", [
    # before knn_space existed the bank held codes
    ("GANomaly", dict(knn_space="code"), "knn_space", lambda d: d._knn_space_now() == "code"),
    # before knn_metric existed the distance was the Euclidean k nearest (whatever 'auto' now means)
    ("FAnoGAN", dict(knn_space="feature", knn_metric="euclidean"), "knn_metric", lambda d: d._knn_metric_now() == "euclidean" and d.knn_bank_.shape[0] == 360),
])
def test_model_saved_before_a_knn_parameter_loads_as_it_was(blobs, tmp_path, method, params, key, legacy):
    """A model file written before ``key`` existed (not in its state or parameters) loads with the
    setting it was fitted with and scores as it did. (Tampered knn states: the hardening catalogue,
    tests/test_hardening.py.)"""
    X, far = blobs
    det = getattr(ganad, method)(epochs=2, random_state=0, **params).fit(X)
    det.save(tmp_path / "m")

    def older(cfg):
        del cfg["state"][key], cfg["params"][key]
    _edit_config(tmp_path / "m", older)
    back = ganad.load(tmp_path / "m")
    assert getattr(back, key) == "auto" and legacy(back)
    np.testing.assert_allclose(back.decision_function(far), det.decision_function(far), rtol=1e-6)


def test_model_file_with_mismatched_knn_tensors_is_refused(blobs, tmp_path):
    from safetensors.torch import load_file, save_file
    det = ganad.GANomaly(epochs=1, random_state=0, knn_space="feature").fit(blobs[0])
    det.save(tmp_path / "m")
    wfile = tmp_path / "m" / "model.safetensors"
    t = load_file(str(wfile))
    t["knn_basis_"] = t["knn_basis_"][:, :-1].contiguous()
    save_file(t, str(wfile))
    with pytest.raises(ModelFileError, match="knn tensors that do not fit together"):
        ganad.load(tmp_path / "m")


def test_model_file_with_a_space_the_method_cannot_use_is_refused(blobs, tmp_path):
    det = ganad.BiGAN(epochs=1, random_state=0).fit(blobs[0])
    det.save(tmp_path / "m")
    _edit_config(tmp_path / "m", lambda cfg: cfg["state"].__setitem__("knn_space", "feature"))
    with pytest.raises(ModelFileError, match="knn_space 'feature'"):
        ganad.load(tmp_path / "m")


def test_anogan_training_scores_are_lazy(blobs):
    X, _ = blobs
    det = ganad.AnoGAN(epochs=2, random_state=0, search_n_max=5, knn_weight=0.5)  # a score that reads the search
    det._threshold_sample = 100
    det.fit(X)
    assert "_decision_scores" not in det.__dict__  # no search over the whole training set in fit
    assert np.isfinite(det.threshold_)
    assert det.decision_scores_.shape == (400,)  # computed on first access
    assert det.labels_.shape == (400,)
    assert 0.02 < det.labels_.mean() < 0.25  # the threshold from a 100-row sample is near the 10 % quantile


def test_anogan_default_fit_runs_no_latent_search(blobs, monkeypatch):
    """AnoGAN's default score reads the knn component alone, yet fit searched every training row (up
    to 2,048, and the held-out slice) for decision_scores_ and the blend's standardisation: half of fit
    for scores the threshold never read. Now fit searches nothing; a calibration whose score needs the
    search computes the training scores under it on first access."""
    from ganad.inversion.latent_search import LatentSearch
    from ganad.scoring.composition import RobustStandardised
    X, far = blobs
    rows = []
    orig = LatentSearch.run
    monkeypatch.setattr(LatentSearch, "run", lambda self, G, x, *a, **k: (rows.append(x.shape[0]), orig(self, G, x, *a, **k))[1])
    det = ganad.AnoGAN(epochs=2, random_state=0, search_n_max=3).fit(X)
    assert rows == [] and det.composer_.names == ["knn"]
    scores = det.decision_scores_  # there already, without a search
    assert rows == [] and scores.shape == (400,)
    assert abs((scores > det.threshold_).mean() - det.contamination) <= 0.01  # from every training row's score
    assert det.predict(far).mean() > 0.9 and rows == []
    val = X[:100]
    det.calibrate(val, compose="standardised")  # reads the search's components: training scores now come from them
    assert rows and det.calibration_["decision_scores_updated"]  # (up to 2,048 rows: computed now, as fit would)
    comps = det.score_components(X).components
    with det._scoring_training_rows():
        ref = det.score_components(X).components
    assert set(det.composer_.names) <= set(comps)
    np.testing.assert_allclose(det.decision_scores_, det.composer_(ref), rtol=1e-9)
    assert isinstance(det.composer_, RobustStandardised)


def test_lazy_training_scores_saved_before_first_access_say_so_after_loading(blobs, tmp_path):
    """Saved before its training scores were read, a latent-search model has none after loading: reading
    them says why and what to do (it was a bare AttributeError('decision_scores_'))."""
    X, _ = blobs
    det = ganad.AnoGAN(epochs=1, random_state=0, search_n_max=2, knn_weight=0.5)  # a score that reads the search
    det._threshold_sample = 100
    det.fit(X)
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    with pytest.raises(AttributeError, match="saved before they were read.*Fix: read det.decision_scores_ before det.save"):
        back.decision_scores_
    assert not hasattr(back, "labels_") and np.isfinite(back.threshold_)


def test_ensemble_scores_and_round_trip(blobs, tmp_path):
    X, far = blobs
    det = ganad.GANomaly(epochs=2, random_state=0, n_members=3).fit(X)
    assert len(det.members_) == 3
    # timing_ as for one model (an ensemble had none): the members' training seconds summed, epochs by member
    assert det.timing_["train_s"] == pytest.approx(sum(m.timing_["train_s"] for m in det.members_))
    assert det.timing_["epochs_run"] == {f"member{i}/ganomaly": 2 for i in range(3)}
    assert len({m.random_state for m in det.members_}) == 3
    assert all((m.validation_index_ == det.validation_index_).all() for m in det.members_)  # one shared split
    Xe = np.r_[X[:20], far[:20]]
    res = det.score_components(Xe)
    manual = np.mean([(m.decision_function(Xe) - loc) / sc for m, (loc, sc) in zip(det.members_, det.member_stats_)], axis=0)
    np.testing.assert_allclose(res.scores, manual, rtol=1e-6)
    assert res.scores[20:].mean() > res.scores[:20].mean()
    assert np.mean(det.decision_scores_ > det.threshold_) == pytest.approx(0.1, abs=0.01)
    det.save(tmp_path / "ens")
    back = ganad.load(tmp_path / "ens")
    assert len(back.members_) == 3
    # each member keeps its own random_state (it took the ensemble's): get_params and a refit as at fit
    assert [m.random_state for m in back.members_] == [m.random_state for m in det.members_]
    np.testing.assert_allclose(back.decision_function(Xe), det.decision_function(Xe), rtol=1e-6)
    assert back.score_components(Xe[:3], return_map=True).map.shape == (3, 6)


def test_ensemble_members_train_robustly(blobs, tmp_path):
    """fit(X, robust_contamination=c) on an ensemble: every member down-weights the fraction c of its
    training rows (the arguments were dropped: the members trained on every row, silently)."""
    X, far = blobs
    Xc = np.r_[X[:270], far[:30]]
    det = ganad.GANomaly(epochs=3, width=8, random_state=0, n_members=2).fit(Xc, robust_contamination=0.1, robust_mode="hard")
    for m in det.members_:
        assert m.robust_["contamination"] == 0.1 and m.robust_["mode"] == "hard"
        w = m.robust_weights_[~np.isnan(m.robust_weights_)]  # NaN: the held-out rows
        assert np.mean(w == 0) == pytest.approx(0.1, abs=0.01)
        assert any(k.endswith("robust_excluded_fraction") for k in m.history_)
    det.save(tmp_path / "ens")
    back = ganad.load(tmp_path / "ens")
    assert [m.robust_ for m in back.members_] == [m.robust_ for m in det.members_]
    np.testing.assert_array_equal(back.decision_function(far), det.decision_function(far))


def test_ensemble_scoring_parameters_set_after_fit_reach_the_members(blobs, tmp_path):
    """set_params(inversion='search', search_*=...) on a fitted ensemble scored and mapped as before
    (the members kept their fit-time settings), while the saved and loaded model used the new ones."""
    X, far = blobs
    Xe = np.r_[X[:5], far[:5]]
    det = ganad.FAnoGAN(epochs=1, width=8, latent_dim=4, random_state=0, n_members=2).fit(X[:200])
    before = det.score_components(Xe, return_map=True)
    det.set_params(inversion="search", search_init="random", search_n_max=20)
    after = det.score_components(Xe, return_map=True)
    assert [m.inversion for m in det.members_] == ["search", "search"]
    assert np.abs(after.map - before.map).max() > 1e-3
    det.save(tmp_path / "ens")
    back = ganad.load(tmp_path / "ens").score_components(Xe, return_map=True)
    np.testing.assert_allclose(back.map, after.map, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.scores, after.scores, rtol=1e-5, atol=1e-6)


def test_prefix_standardise_is_causal_and_per_group():
    s = np.array([1.0, 2.0, 3.0, 10.0, 100.0, 200.0, 300.0, 1000.0])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    t = np.array([0, 1, 2, 3, 3, 2, 1, 0])  # group 1 arrives in reverse order
    adapted, warm = prefix_standardise(s, g, t, n_first=3)
    # group 0: median 2, MAD 1 -> scale 1.4826
    assert adapted[3] == pytest.approx((10 - 2) / 1.4826)
    # group 1 in time order: 1000, 300, 200, 100 -> warm-up 1000, 300, 200: median 300, MAD 100
    assert adapted[4] == pytest.approx((100 - 300) / 148.26)
    assert warm.tolist() == [True, True, True, False, False, True, True, True]
    with pytest.raises(InputError, match="groups"):
        prefix_standardise(s, g[:3])


def test_prefix_threshold_is_each_records_own_quantile_after_its_warm_up():
    """Record 'a' has normal scores around 10 (above a population threshold of 3), record 'b' around 0:
    after the warm-up 'a' gets its own (1 - fpr) quantile, 'b' keeps the population floor (raise_only),
    or its own lower quantile without the floor; during the warm-up the population threshold holds."""
    rng = np.random.RandomState(0)
    a, b = 10 + rng.randn(200), rng.randn(200)
    s = np.r_[a, b]
    g = np.array(["a"] * 200 + ["b"] * 200)
    t = np.r_[np.arange(200)[::-1], np.arange(200)]  # record a arrives in reverse time order
    tau, warm = prefix_threshold(s, g, t, n_first=100, fpr=0.05, threshold=3.0)
    head_a = np.arange(200)[::-1][:100]  # a's first 100 in time: positions 199 .. 100
    assert warm[head_a].all() and not warm[np.arange(100)].any() and warm[200:300].all() and not warm[300:].any()
    own_a = np.sort(s[head_a])[100 - 5 - 1]  # 5 of the 100 warm-up scores lie above it
    assert (s[head_a] > own_a).sum() == 5
    assert np.all(tau[:100] == own_a) and np.all(tau[head_a] == 3.0)  # after / during a's warm-up
    assert np.all(tau[300:] == 3.0)  # b's own quantile (about 1.6) is below the floor
    tau_own, _ = prefix_threshold(s, g, t, n_first=100, fpr=0.05, threshold=3.0, raise_only=False)
    own_b = np.sort(s[200:300])[94]
    assert np.all(tau_own[300:] == own_b) and own_b < 3.0 and np.all(tau_own[200:300] == 3.0)
    # the population threshold flags most of a's normal scores; a's own threshold about fpr of them
    assert (s[:100] > 3.0).mean() > 0.9 and (s[:100] > tau[:100]).mean() < 0.15
    tau_none, _ = prefix_threshold(s, g, t, n_first=100, fpr=0.05, raise_only=False)
    assert np.isnan(tau_none[warm]).all() and not (s[warm] > tau_none[warm]).any()  # nothing flagged in a warm-up
    assert np.array_equal(tau_none[~warm], tau_own[~warm])


def test_prefix_threshold_refuses_bad_arguments():
    s, g = np.arange(10.0), np.zeros(10)
    with pytest.raises(InputError, match="threshold.*raise_only"):
        prefix_threshold(s, g, n_first=3)
    with pytest.raises(InputError, match="fpr"):
        prefix_threshold(s, g, n_first=3, fpr=1.5, threshold=1.0)
    with pytest.raises(InputError, match="threshold"):
        prefix_threshold(s, g, n_first=3, threshold=float("nan"))
    with pytest.raises(InputError, match="n_first"):
        prefix_threshold(s, g, n_first=1, threshold=1.0)
    with pytest.raises(InputError, match="n_first"):
        prefix_threshold(s, g, n_first=True, threshold=1.0)
    with pytest.raises(InputError, match="scores"):
        prefix_threshold(np.r_[s[:9], np.nan], g, n_first=3, threshold=1.0)
    with pytest.raises(InputError, match="groups"):
        prefix_threshold(s, g[:4], n_first=3, threshold=1.0)
    # a record no longer than its warm-up: every score in the warm-up, the population threshold throughout
    tau, warm = prefix_threshold(s, g, n_first=20, threshold=1.0)
    assert warm.all() and np.all(tau == 1.0)


@pytest.mark.parametrize("raise_only", [True, False])
def test_adaptive_threshold_in_chunks_equals_prefix_threshold(raise_only):
    """Three recordings' scores arriving interleaved, in chunks of random sizes, with the state saved to
    JSON and restored half-way: the same thresholds and warm-up flags as prefix_threshold on the whole
    recordings."""
    import json
    rng = np.random.RandomState(1)
    recs = {"p1": 4 + rng.randn(700), "p2": rng.randn(450), "7": 2 + rng.randn(90)}  # "7": shorter than its warm-up
    s = np.concatenate(list(recs.values()))
    g = np.concatenate([[k] * len(v) for k, v in recs.items()])
    want_tau, want_warm = prefix_threshold(s, g, None, 100, fpr=0.05, threshold=2.5, raise_only=raise_only)
    at = AdaptiveThreshold(100, fpr=0.05, threshold=2.5, raise_only=raise_only)
    got = {k: ([], []) for k in recs}
    pos = dict.fromkeys(recs, 0)
    step = 0
    while any(pos[k] < len(v) for k, v in recs.items()):
        k = list(recs)[rng.randint(3)]
        n = rng.randint(1, 60)
        chunk = recs[k][pos[k]:pos[k] + n]
        pos[k] += len(chunk)
        if not len(chunk):
            continue
        tau, warm = at.update(chunk, int(k) if k == "7" else k)
        got[k][0].append(tau)
        got[k][1].append(warm)
        step += 1
        if step == 10:  # a restart of the monitor: the state through JSON
            at = AdaptiveThreshold.from_dict(json.loads(json.dumps(at.to_dict())))
    np.testing.assert_array_equal(np.concatenate([np.concatenate(got[k][0]) for k in recs]), want_tau)
    np.testing.assert_array_equal(np.concatenate([np.concatenate(got[k][1]) for k in recs]), want_warm)
    assert at.state("p1") == {"threshold": want_tau[699]} and at.state("7") == {"warm_up": 90}
    assert at.state("never-seen") == {"warm_up": 0}


def test_adaptive_threshold_refuses_bad_input():
    with pytest.raises(InputError, match="threshold"):
        AdaptiveThreshold(100)  # raise_only without a population threshold
    with pytest.raises(InputError, match="n_first"):
        AdaptiveThreshold(1, threshold=1.0)
    at = AdaptiveThreshold(5, threshold=1.0)
    with pytest.raises(InputError, match="scores"):
        at.update([1.0, np.nan], "a")
    with pytest.raises(InputError, match="group"):
        at.update([1.0], None)
    assert at.state("a") == {"warm_up": 0}  # a refused chunk changes nothing
    with pytest.raises(InputError, match="state"):
        AdaptiveThreshold.from_dict({"kind": "something else"})
    d = at.to_dict()
    d["warm"] = {"a": [0.0] * 5}
    with pytest.raises(InputError, match="full warm-up"):
        AdaptiveThreshold.from_dict(d)
    tau, warm = AdaptiveThreshold(3, threshold=None, raise_only=False).update([5.0, 1, 2, 3, 4], "b")
    assert np.isnan(tau[:3]).all() and warm.tolist() == [True, True, True, False, False]
    assert np.all(tau[3:] == 5.0)  # the largest of three: a 5 % rate allows none of them above it


def test_ensemble_exports_as_one_onnx_graph(blobs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ganad.export import export_onnx
    X, far = blobs
    det = ganad.FAnoGAN(epochs=1, random_state=0, n_members=2).fit(X)
    names = export_onnx(det, tmp_path / "e.onnx")
    assert names == ["member0", "member1"]
    sess = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    Xe = np.r_[X[:10], far[:10]]
    comps, score = sess.run(None, {"x": Xe})
    ref = det.score_components(Xe)
    np.testing.assert_allclose(score, ref.scores, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(comps[:, 1], ref.components["member1"], rtol=1e-3, atol=1e-3)


def test_ensemble_of_search_methods_is_refused_for_export(blobs, tmp_path):
    from ganad.export import export_onnx
    # (a default AnoGAN ensemble exports: its score needs no search, tests/test_export.py)
    det = ganad.AnoGAN(epochs=1, random_state=0, n_members=2, search_n_max=2, knn_space="feature").fit(blobs[0][:100])
    with pytest.raises(InputError, match="latent search"):
        export_onnx(det, tmp_path / "e.onnx")
    assert not (tmp_path / "e.onnx").exists()


def test_calibrate_weights_keeps_the_fitted_default(blobs):
    X, far = blobs
    det = ganad.FAnoGAN(epochs=2, random_state=0).fit(X)
    before = det.decision_function(far)
    det.calibrate(X[:100], compose="weights", threshold="contamination")
    assert det.composer_.kind == "knn-blend"
    np.testing.assert_allclose(det.decision_function(far), before)


def test_code_space_scoring_skips_the_discriminator(blobs):
    """With knn_space='code' GANomaly's default score (latent + knn) needs no discriminator pass;
    with 'feature' it needs exactly the one D(x) pass."""
    X, far = blobs
    for space, want in (("code", 0), ("feature", 1)):
        det = ganad.GANomaly(epochs=1, random_state=0, knn_space=space).fit(X)
        calls = []
        h = det._inference_net("D").module.register_forward_hook(lambda m, i, o: calls.append(1))
        try:
            det.decision_function(far)
        finally:
            h.remove()
        assert len(calls) == want


@pytest.mark.parametrize("method", ["GANomaly", "FAnoGAN"])
def test_knn_space_both_averages_the_two_standardised_distances(blobs, tmp_path, method):
    """'both': codes then compressed features in one bank, two separate searches, each distance
    divided by its held-out median/MAD scale, averaged; equal to the code and feature spaces' own
    distances on the same networks; saved and reloaded bit for bit."""
    from ganad.scoring.composition import robust_location_scale
    X, far = blobs
    det = getattr(ganad, method)(epochs=2, random_state=0, knn_space="both").fit(X)
    Q = np.r_[X[:40], far]
    both = det.score_components(Q).components["knn"]
    k = det.knn_split_
    assert k == det.latent_dim and det.knn_bank_.shape[1] == k + det.knn_basis_.shape[1] + 1
    assert both[40:].mean() > both[:40].mean()
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.knn_space_ == "both" and back.knn_split_ == k
    np.testing.assert_array_equal(back.decision_function(far), det.decision_function(far))
    # the same networks with a single space each
    both_scales, single = list(det.knn_scales_), {}
    det.knn_metric = "euclidean"  # 'both' measures Euclidean distances in each space
    for space in ("code", "feature"):
        det.knn_space = space
        det._refit_knn(X)
        single[space] = (det.score_components(X[det.validation_index_]).components["knn"], det.score_components(Q).components["knn"])
    scales = [robust_location_scale(single[sp][0][:, None])[1][0] for sp in ("code", "feature")]
    np.testing.assert_allclose(both_scales, scales, rtol=1e-6)
    np.testing.assert_allclose(both, 0.5 * (single["code"][1] / scales[0] + single["feature"][1] / scales[1]), rtol=1e-5)


def test_training_scores_leave_a_rows_own_bank_entry_out():
    """Training rows are in the knn bank: scoring them (decision_scores_, threshold_) must not count a
    row's own entry at distance 0 among its neighbours. Brute force: the knn component of every
    training row is the mean distance to its k nearest *other* rows; rows outside the bank (here: a
    new sample equal to none of them) keep their k nearest."""
    rng = np.random.RandomState(0)
    X = rng.randn(400, 6).astype(np.float32)
    det = ganad.BiGAN(epochs=2, random_state=0, validation_fraction=0).fit(X)  # knn: codes, Euclidean
    with torch.inference_mode():
        E = det._knn_code(torch.from_numpy(det.scaler_.transform(X))).double().numpy()
    d = np.sort(np.sqrt(((E[:, None, :] - E[None]) ** 2).sum(2)), axis=1)
    k = det.n_neighbors
    np.testing.assert_allclose(det._train_components["knn"], d[:, 1:k + 1].mean(1), rtol=1e-6)
    # the same rows scored as new data (not inside fit) do count themselves: the two differ
    assert (det.score_components(X[:20]).components["knn"] < det._train_components["knn"][:20]).all()
    new = rng.randn(30, 6).astype(np.float32)
    with det._scoring_training_rows():
        inside = det.score_components(new).components["knn"]
    np.testing.assert_allclose(inside, det.score_components(new).components["knn"], rtol=1e-9)


@pytest.mark.parametrize("method, params", [("BiGAN", {}), ("GANomaly", {"knn_space": "feature", "knn_metric": "euclidean"})])
def test_threshold_flags_about_contamination_of_new_normal_data(method, params):
    """contamination=0.1 promises about 10 % of new normal samples flagged. With each training row
    counting itself in the Euclidean knn component the threshold was too low and 25 % were flagged."""
    rng = np.random.RandomState(0)
    A = rng.randn(12, 12)
    X = (rng.randn(3000, 12) @ A).astype(np.float32)
    fresh = (rng.randn(3000, 12) @ A).astype(np.float32)
    det = getattr(ganad, method)(epochs=5, random_state=0, **params).fit(X)
    assert 0.06 <= det.predict(fresh).mean() <= 0.15


def test_mahalanobis_training_rows_leave_themselves_out_of_mean_and_covariance():
    """knn_metric='mahalanobis': the bank's rows shaped the mean and the covariance they are measured
    against, so scored in-sample their distances are too small. Inside fit's scoring each bank row is
    measured against the other rows' mean and covariance (closed form); brute force: refit the
    whitening without the row (the shrinkage refitted too, hence the small tolerance). Held-out rows
    and new data keep their distance."""
    rng = np.random.RandomState(0)
    X = (rng.randn(200, 8) @ rng.randn(8, 8)).astype(np.float32)
    det = ganad.GANomaly(epochs=2, random_state=0, knn_space="feature").fit(X)  # Mahalanobis
    assert det.knn_metric_ == "mahalanobis"
    train_idx = np.setdiff1d(np.arange(len(X)), det.validation_index_)
    bank_rows = train_idx[det._knn_bank_index]
    with torch.inference_mode():
        F = det._knn_feature(torch.from_numpy(det.scaler_.transform(X))).float()
    plain = det.score_components(X).components["knn"]
    inside = det._train_components["knn"]
    for i in bank_rows[:5]:
        ref = ganad.GANomaly(epochs=2, random_state=0)
        ref._fit_knn_whitening(F[np.setdiff1d(bank_rows, [i])])
        with torch.inference_mode():
            brute = float(ref._knn_embed_rows(F[i:i + 1]).double().norm())
        assert inside[i] > plain[i]
        np.testing.assert_allclose(inside[i], brute, rtol=0.01)
    np.testing.assert_allclose(inside[det.validation_index_], plain[det.validation_index_], rtol=1e-9)
    new = rng.randn(30, 8).astype(np.float32)
    with det._scoring_training_rows():
        np.testing.assert_allclose(det.score_components(new).components["knn"], det.score_components(new).components["knn"], rtol=1e-9)


@pytest.mark.parametrize("method", ["GANomaly", "FAnoGAN"])
@pytest.mark.parametrize("space, metric", [("feature", "mahalanobis"), ("auto", "mahalanobis+euclidean")])
def test_mahalanobis_threshold_flags_about_contamination_of_new_normal_data(method, space, metric):
    """The feature-space Mahalanobis knn component on 200 rows (alone, and in the default
    'feature+input' beside the input kNN): with the training rows measured against the mean and
    covariance they shaped, threshold_ was too low and 27-40 % of new normal samples were flagged at
    contamination=0.1."""
    rng = np.random.RandomState(0)
    A = rng.randn(8, 8)
    X = (rng.randn(200, 8) @ A).astype(np.float32)
    fresh = (rng.randn(3000, 8) @ A).astype(np.float32)
    det = getattr(ganad, method)(epochs=5, random_state=0, knn_space=space).fit(X)
    assert det.knn_metric_ == metric
    assert 0.05 <= det.predict(fresh).mean() <= 0.17


@pytest.mark.parametrize("n_members", [1, 2])
def test_lazy_training_scores_of_a_copy_keep_the_mahalanobis_leave_one_out(blobs, n_members):
    """A latent-search model computes decision_scores_ on first access; a pickled or deep-copied model
    whose training scores were still to come lost the in-memory Mahalanobis leave-one-out state
    (_knn_own, its members' too), so its decision_scores_ differed from the original's (by up to 1.0)
    and no longer matched threshold_."""
    import copy
    import pickle
    X, _ = blobs
    det = ganad.AnoGAN(epochs=1, random_state=0, search_n_max=3, n_members=n_members, validation_fraction=0, knn_space="feature")
    det._threshold_sample = 100
    det.fit(X)
    assert (det.members_[0] if n_members > 1 else det).knn_metric_ == "mahalanobis"
    assert "_decision_scores" not in det.__dict__
    copies = [copy.deepcopy(det), pickle.loads(pickle.dumps(det))]
    ref = det.decision_scores_
    for c in copies:
        np.testing.assert_array_equal(c.decision_scores_, ref)
    assert "_knn_own" not in det.__getstate__()  # once the training scores exist, pickles stay small


@pytest.mark.parametrize("method", ["BiGAN", "ALAD", "AnoGAN"])
def test_every_method_takes_the_input_space(blobs, method):
    """knn_space='input' needs neither an encoder nor a discriminator that judges x alone, so the
    methods that refuse the feature or code space take it: the component is the kNN on the scaled
    inputs for them too."""
    X, far = blobs
    kw = {"search_n_max": 5} if method == "AnoGAN" else {}
    det = getattr(ganad, method)(epochs=1, random_state=0, knn_space="input", **kw).fit(X)
    assert det.knn_space_ == "input"
    rows = np.setdiff1d(np.arange(len(X)), det.validation_index_)[det._knn_bank_index]
    bank = torch.from_numpy(det.scaler_.transform(X[rows])).double()
    Q = np.r_[X[:10], far[:10]]
    want = torch.cdist(torch.from_numpy(det.scaler_.transform(Q)).double(), bank).topk(5, largest=False).values.mean(1).numpy()
    np.testing.assert_allclose(_raw_knn(det, Q), want, rtol=1e-5, atol=1e-6)


def test_knn_projection_of_rows_wider_than_the_bank_uses_the_gram_matrix_exactly():
    """Rows wider than the bank has rows (long multichannel windows in knn_space='input') take the
    principal directions from the n x n Gram matrix instead of the d x d covariance: the same kept
    directions (same sign convention), so the same embeddings, at a fraction of the cost."""
    rng = np.random.RandomState(0)
    n, d = 120, 700
    F = torch.from_numpy((rng.randn(n, 6) @ rng.randn(6, d) * 3 + 0.1 * rng.randn(n, d)).astype(np.float32))
    det = ganad.GANomaly()
    det._fit_knn_projection(F)
    C = F.double() - F.double().mean(0)
    vals, vecs = torch.linalg.eigh(C.T @ C)
    vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
    share = vals.cumsum(0) / vals.sum()
    r = int(min(det._knn_max_dim, int((share < det._knn_variance).sum()) + 1))
    V = vecs[:, :r] * torch.where(vecs[:, :r].sum(0) < 0, -1.0, 1.0)
    assert det.knn_basis_.shape == (d, r) and 6 <= r < n
    torch.testing.assert_close(det.knn_basis_.double(), V, atol=1e-4, rtol=0)
    Q = F[:10] + 0.5
    want = torch.cat([(Q.double() - det.knn_center_.double()) @ V,
                      torch.linalg.vector_norm((Q.double() - det.knn_center_.double()) @ (torch.eye(d, dtype=torch.double) - V @ V.T), dim=1)[:, None]], 1)
    torch.testing.assert_close(det._knn_embed_rows(Q).double(), want, atol=1e-3, rtol=1e-4)


def test_compressed_knn_embedding_does_not_depend_on_the_batch():
    """A row's compressed embedding in knn_space='input' (series windows, the series default) is the
    same bit for bit whether it is embedded alone or among many rows: a stream fed point by point
    scores windows one at a time and must give the batch scores (float32 products round differently
    for different row counts; the projection runs in float64 and is rounded once)."""
    rng = np.random.RandomState(0)
    n, d = 400, 192
    F = torch.from_numpy((rng.randn(n, 12) @ rng.randn(12, d) + 0.3 * rng.randn(n, d)).astype(np.float32))
    det = ganad.GANomaly(knn_space="input")
    det.knn_space_ = "input"
    det._fit_knn_projection(F)
    assert det.knn_basis_.shape[1] < d  # compressed
    Q = F[:300] * 1.1
    whole = det._knn_embed_rows(Q)
    for i in (0, 7, 123, 299):
        assert torch.equal(det._knn_embed_rows(Q[i:i + 1])[0], whole[i])
    assert torch.equal(det._knn_embed_rows(Q[5:37]), whole[5:37])


def test_whitened_input_embedding_does_not_depend_on_the_batch():
    """knn_metric='mahalanobis' in knn_space='input' on windows of at most 512 numbers keeps every
    direction; that branch projected in float32, so a window's whitened embedding (and its knn
    score) changed in the last digits with the number of windows scored together (a stream fed
    point by point differed from batch scoring by ~7e-7). It projects in float64 as the compressed
    branch does."""
    rng = np.random.RandomState(0)
    n, d = 400, 96
    F = torch.from_numpy((rng.randn(n, 12) @ rng.randn(12, d) + 0.3 * rng.randn(n, d)).astype(np.float32))
    det = ganad.GANomaly(knn_space="input", knn_metric="mahalanobis")
    det.knn_space_, det.knn_metric_ = "input", "mahalanobis"
    det._fit_knn_whitening(F)
    assert det.knn_basis_.shape == (d, d) and float(det.knn_scale_[-1]) == 0.0  # every direction kept
    Q = F[:300] * 1.1
    whole = det._knn_embed_rows(Q)
    for i in (0, 7, 123, 299):
        assert torch.equal(det._knn_embed_rows(Q[i:i + 1])[0], whole[i])
    assert torch.equal(det._knn_embed_rows(Q[5:37]), whole[5:37])


def test_mahalanobis_wider_than_the_bank_uses_the_gram_matrix():
    """Features wider than the bank has rows (large images: 50,176 numbers at 224 x 224): the d x d
    eigendecomposition took 94 s at 100 x 100 x 3 and minutes beyond. The spectrum now comes from the
    n x n Gram matrix and the Ledoit–Wolf shrinkage from it too; the component, the training rows'
    leave-one-out scores and the threshold equal those of the d x d route."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    from ganad.detectors.base import _ledoit_wolf_from_gram
    rng = np.random.RandomState(0)
    for n, d in ((5, 40), (30, 700), (12, 12)):
        C = rng.randn(n, d) * rng.rand(d) * 3
        C -= C.mean(0)
        assert _ledoit_wolf_from_gram(torch.from_numpy(C @ C.T), d) == pytest.approx(ledoit_wolf_shrinkage(C, assume_centered=True), rel=1e-9)
    X = rng.rand(80, 1, 16, 16).astype(np.float32)
    Q = np.r_[X[:10], rng.rand(10, 1, 16, 16).astype(np.float32) * 3]
    dets = []
    for gram in (True, False):
        det = ganad.GANomaly(epochs=1, random_state=0, verbose=False)
        det._knn_whiten_gram = gram
        dets.append(det.fit(X))
    fast, slow = dets
    assert fast.knn_basis_.shape[0] > 80 and fast.knn_basis_.shape[1] < slow.knn_basis_.shape[1]  # d > n: fewer directions kept
    np.testing.assert_allclose(_raw_knn(fast, Q), _raw_knn(slow, Q), rtol=1e-4)
    np.testing.assert_allclose(fast.decision_scores_, slow.decision_scores_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast.decision_function(Q), slow.decision_function(Q), rtol=1e-4, atol=1e-6)
    assert fast.threshold_ == pytest.approx(slow.threshold_, rel=1e-4)


@pytest.mark.parametrize("method, kw, change", [("GANomaly", {"knn_space": "input"}, {"n_neighbors": 3}),
                                                ("AnoGAN", {"search_n_max": 2}, {"search_eps": 0.01, "search_n_max": 3})])
def test_a_model_saved_with_stale_scoring_settings_loads_and_stays_refused(blobs, tmp_path, method, kw, change):
    """A model saved after set_params changed a scoring setting records the settings its threshold was
    fitted under (scored_with). The loader accepted string values only, so a stale n_neighbors (5) or
    search_eps (0.005) made the file unreadable ("not an object of parameter names and values")."""
    X, far = blobs
    det = getattr(ganad, method)(epochs=1, random_state=0, **kw).fit(X[:200])
    det.set_params(**change)
    name = next(iter(change))
    with pytest.raises(InputError, match=name):
        det.predict(far[:5])
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert getattr(back, name) == change[name]
    with pytest.raises(InputError, match=f"{name}.*set after fit"):
        back.predict(far[:5])
    back.calibrate(X[200:260])
    assert back.predict(far[:5]).shape == (5,)


def test_feature_plus_input_threshold_holds_on_wide_noisy_inputs():
    """Wide inputs with noise in every sample: the default 'feature+input' keeps the input block's
    directions that explain 99 % of the bank's variance (here 193 of 200), and its threshold flags about
    contamination of new normal rows. Kept to 64 directions (measured as a faster search) the
    directions, fitted to the bank rows, held more of those rows than of new ones: the training rows
    out-scored new normal rows and 0.2 % of them were flagged at contamination 0.1."""
    rng = np.random.RandomState(0)
    X = rng.randn(800, 200).astype(np.float32)
    fresh = rng.randn(3000, 200).astype(np.float32)
    det = ganad.GANomaly(epochs=2, random_state=0).fit(X)
    assert det.knn_space_ == "feature+input"
    assert det.knn_input_basis_.shape[1] > 64
    assert 0.04 <= det.predict(fresh).mean() <= 0.2
    capped = ganad.GANomaly(epochs=2, random_state=0)
    capped._knn_input_max_dim = 64
    capped.fit(X)
    assert tuple(capped.knn_input_basis_.shape) == (200, 64)
    assert capped.predict(fresh).mean() < 0.02  # the miscalibration the cap would bring


def test_knn_metric_with_the_auto_space_feature_input_is_refused_at_fit(blobs, tmp_path):
    """knn_space='auto' is 'feature+input' for GANomaly, f-AnoGAN, β-VAEGAN and AnoGAN, whose two blocks
    have their own metrics: knn_metric='euclidean' / 'mahalanobis' there was ignored without a word (the
    scores bit-identical), refused like the explicit space; named with a space it applies."""
    X, _ = blobs
    for cls in (ganad.GANomaly, ganad.FAnoGAN, ganad.VAEGAN, ganad.AnoGAN):
        for metric in ("euclidean", "mahalanobis"):
            with pytest.raises(InputError, match=r"knn_metric: is .*knn_space='auto' is 'feature\+input'.*Fix: .*knn_space='feature'"):
                cls(epochs=1, random_state=0, knn_metric=metric).fit(X)
    det = ganad.GANomaly(epochs=1, random_state=0, knn_space="feature", knn_metric="euclidean").fit(X)
    assert det.knn_metric_ == "euclidean"


def test_an_ensemble_refuses_scoring_settings_changed_after_fit(blobs, tmp_path):
    """set_params(n_neighbors=1) after fit changed an ensemble's scores while predict kept the old threshold
    (a single model refused it): the ensemble's key is its members'; saved and loaded, the same."""
    X, _ = blobs
    det = ganad.BiGAN(epochs=1, random_state=0, n_members=2).fit(X)
    det.save(tmp_path / "m")
    loaded = ganad.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(X[:20]), det.predict(X[:20]))  # a loaded ensemble is current
    det.set_params(n_neighbors=1)
    with pytest.raises(InputError, match="n_neighbors=1 \\(set after fit\\)"):
        det.predict(X[:5])
    det.save(tmp_path / "m2")
    with pytest.raises(InputError, match="set after fit"):
        ganad.load(tmp_path / "m2").predict(X[:5])
    det.calibrate(X[:150])
    assert det.predict(X[:5]).shape == (5,)


def test_prefix_standardise_refuses_missing_ids_and_times_and_takes_ids_of_mixed_types():
    """A NaN record id was no group of np.unique's (NaN != NaN): its scores came back as np.empty's leftovers
    (values such as 2e-312, never standardised) and not flagged as warm-up, so an evaluation counted them;
    a None among string ids raised numpy's TypeError from sorting."""
    s = np.arange(10.0)
    with pytest.raises(InputError, match=r"groups: has 2 missing id\(s\).*position\(s\) \[3, 4\]"):
        prefix_standardise(s, np.array([1, 1, 1, np.nan, np.nan, 2, 2, 2, 2, 2]), n_first=2)
    with pytest.raises(InputError, match=r"groups: has 1 missing id"):
        prefix_standardise(s, np.array(["a", "a", None, "b", "b", "b", "a", "a", "b", "b"], dtype=object), n_first=2)
    with pytest.raises(InputError, match=r"order: has 1 missing time stamp"):
        prefix_standardise(s, np.r_[np.zeros(5), np.ones(5)], np.r_[0, 1, np.nan, 3:10], n_first=2)
    g = np.array(["a", 1, "a", 1, "a", 1], dtype=object)  # ids of mixed types: grouped by value
    adapted, warm = prefix_standardise(np.array([1.0, 10.0, 2.0, 20.0, 3.0, 40.0]), g, n_first=2)
    assert warm.tolist() == [True, True, True, True, False, False]
    assert adapted[4] == pytest.approx((3.0 - 1.5) / (0.5 * 1.4826))
    assert adapted[5] == pytest.approx((40.0 - 15.0) / (5.0 * 1.4826))


def _noisy_feature_block(monkeypatch, which):
    """Replace one block of knn_space='feature+input' by a positive number that depends on the row
    but carries no information about it (a deterministic hash of its embedding): the other block then
    separates the held-out slice from its synthetic anomalies and the noise block does not."""
    cls = ganad.GANomaly
    orig = cls._knn_block_distances

    def patched(self, emb):
        d_a, d_b = orig(self, emb)
        noise = torch.sin(emb.reshape(emb.shape[0], -1).double().sum(1) * 1e3) + 2.0
        return (noise.to(d_a.dtype), d_b) if which == "feature" else (d_a, noise.to(d_b.dtype))

    monkeypatch.setattr(cls, "_knn_block_distances", patched)


def _correlated_rows():
    """Rows near a 4-D subspace of 6 dimensions: features swapped in from other rows (the synthetic
    anomalies) leave it, so the inputs' distance tells them apart (AUROC 0.77 on the held-out slice; on
    independent Gaussian features it barely could, and a test of the choice hung on AUROCs of 0.51 against
    0.54), and a block of noise averaged with it tells them apart clearly less well (0.74)."""
    rng = np.random.RandomState(0)
    X = (rng.randn(400, 4) @ rng.randn(4, 6) + 0.3 * rng.randn(400, 6)).astype(np.float32)
    far = (rng.randn(40, 6) * 0.5 + 6).astype(np.float32)
    return X, far


@pytest.mark.parametrize("useless, chosen", [("feature", "input"), ("input", "both")])
def test_knn_space_auto_reads_the_block_that_tells_synthetic_anomalies_apart(tmp_path, monkeypatch, useless, chosen):
    """knn_space='auto' ('feature+input' for GANomaly): fit scores the held-out slice and one corrupted
    copy of each of its rows (ganad.tune's synthetic anomalies) with each block and with both, and the
    knn component reads the inputs' block alone where it tells them apart better by more than the
    margin; here one block is made noise. Noise in the features: the input block is chosen and the knn
    component is its distance over its scale alone. Noise in the inputs: the features alone tell them
    apart better, but since the twenty-ninth session they are no candidate (validation at 30 epochs:
    every such switch lost), so both stay. The choice and its AUROCs are saved with the model."""
    _noisy_feature_block(monkeypatch, useless)
    X, far = _correlated_rows()
    # D's last block (GANomaly's 'auto' reads the one before it): the features this construction makes informative
    det = ganad.GANomaly(epochs=1, random_state=0, feature_layer=-1).fit(X)
    sel = det.knn_selection_
    assert det.knn_blocks_ == chosen == sel["chosen"] and sel["rows"] == len(det.validation_index_)
    auc = sel["synthetic_auroc"]
    better = "input" if useless == "feature" else "feature"
    assert auc[better] > auc["both"] + det._knn_select_margin and auc[useless] < 0.6
    Q = np.r_[X[:40], far]
    emb = det._knn_embed(torch.from_numpy(det.scaler_.transform(Q)))
    d_a, d_b = det._knn_block_distances(emb)
    sc = det.knn_scales_
    want = (d_b / sc[1] if chosen == "input" else 0.5 * (det._knn_feature_block(d_a) / sc[0] + d_b / sc[1])).numpy()
    np.testing.assert_allclose(det.score_components(Q).components["knn"], want, rtol=1e-6)
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.knn_blocks_ == chosen and back.knn_selection_ == sel
    np.testing.assert_array_equal(back.decision_function(Q), det.decision_function(Q))


def test_a_model_that_chose_the_feature_block_alone_still_scores_with_it(blobs, tmp_path):
    """Model files of the twenty-eighth session may hold knn_blocks 'feature' (the features' distance
    alone was a candidate then): they load and score with that block alone, as fitted."""
    import json
    X, far = blobs
    det = ganad.GANomaly(epochs=1, random_state=0).fit(X)
    det.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    blob = json.dumps(cfg)
    assert '"knn_blocks": "both"' in blob or '"knn_blocks": "input"' in blob
    for was in ("both", "input"):  # the block and the selection record's choice, as that session wrote them
        blob = blob.replace(f'"knn_blocks": "{was}"', '"knn_blocks": "feature"').replace(f'"chosen": "{was}"', '"chosen": "feature"')
    (tmp_path / "m" / "config.json").write_text(blob)
    back = ganad.load(tmp_path / "m")
    assert back.knn_blocks_ == "feature"
    emb = back._knn_embed(torch.from_numpy(back.scaler_.transform(far)))
    d_a, _ = back._knn_block_distances(emb)
    np.testing.assert_allclose(back.score_components(far).components["knn"], (back._knn_feature_block(d_a) / back.knn_scales_[0]).numpy(),
                               rtol=1e-6)


def test_knn_blocks_are_chosen_only_for_the_auto_space_and_enough_held_out_rows(blobs, monkeypatch):
    """The choice is the default's (knn_space='auto'): a knn_space='feature+input' the user names keeps
    both blocks whatever they score, as does a held-out slice of fewer than 32 rows (an AUROC on so
    few rows is noise against the margin); both then average the two scaled distances."""
    _noisy_feature_block(monkeypatch, "feature")
    X, far = blobs
    named = ganad.GANomaly(epochs=1, random_state=0, knn_space="feature+input").fit(X)
    few = ganad.GANomaly(epochs=1, random_state=0).fit(X[:250])  # a slice of 25 rows
    for det in (named, few):
        assert det.__dict__.get("knn_blocks_") is None and det.__dict__.get("knn_selection_") is None
        emb = det._knn_embed(torch.from_numpy(det.scaler_.transform(far)))
        d_a, d_b = det._knn_block_distances(emb)
        np.testing.assert_allclose(det.score_components(far).components["knn"],
                                   (0.5 * (det._knn_feature_block(d_a) / det.knn_scales_[0] + d_b / det.knn_scales_[1])).numpy(), rtol=1e-6)
    assert len(few.validation_index_) < ganad.GANomaly._knn_select_min_rows <= len(named.validation_index_)


def test_a_knn_bank_rebuilt_in_another_space_drops_the_blocks_chosen_for_the_old_one(tmp_path, monkeypatch):
    """_refit_knn (the benchmarks' way to compare spaces on one set of networks) in a space of one block
    kept the knn_blocks_ chosen for the 'feature+input' bank: the model saved then did not load
    ("knn_blocks 'input' for knn_space 'code'"). Rebuilding the bank forgets them; 'auto' chooses again."""
    _noisy_feature_block(monkeypatch, "feature")
    X, far = _correlated_rows()
    det = ganad.GANomaly(epochs=1, random_state=0).fit(X)
    assert det.knn_blocks_ == "input"
    det.set_params(knn_space="code")
    det._refit_knn(X)
    assert det.__dict__.get("knn_blocks_") is None and det.__dict__.get("knn_selection_") is None
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.knn_space_ == "code" and back.__dict__.get("knn_blocks_") is None
    det.set_params(knn_space="auto")
    det._refit_knn(X)
    assert det.knn_blocks_ == "input" and det.knn_selection_["chosen"] == "input"


def test_model_file_with_edited_knn_selection_or_blocks_of_the_two_block_space_is_refused(blobs, tmp_path):
    """knn_selection (what fit measured choosing knn_blocks) was loaded unchecked: a string, a number, a
    list or a record naming another block than knn_blocks loaded as knn_selection_ and was written back by
    the next save (the docs' det.knn_selection_["synthetic_auroc"] then raised TypeError). A bogus
    knn_blocks in the space 'feature+input' is refused too (scoring read it as 'both')."""
    import json
    import shutil
    X, far = blobs
    det = ganad.GANomaly(epochs=1, random_state=0).fit(X)
    assert det.knn_blocks_ is not None
    det.save(tmp_path / "m")
    good = json.loads((tmp_path / "m" / "config.json").read_text())
    sel = good["state"]["knn_selection"]
    other = next(b for b in ("both", "input", "feature") if b != sel["chosen"])
    tampered = [("knn_selection", "x"), ("knn_selection", 5), ("knn_selection", [1, 2]), ("knn_selection", {**sel, "chosen": other}),
                ("knn_selection", {**sel, "synthetic_auroc": {**sel["synthetic_auroc"], "both": 7}}), ("knn_selection", {**sel, "rows": True}),
                ("knn_selection", {"chosen": sel["chosen"]}), ("knn_blocks", "bogus"), ("knn_blocks", ["input"])]
    for i, (key, value) in enumerate(tampered):
        shutil.copytree(tmp_path / "m", tmp_path / f"t{i}")
        cfg = json.loads(json.dumps(good))
        cfg["state"][key] = value
        (tmp_path / f"t{i}" / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ModelFileError, match=key):
            ganad.load(tmp_path / f"t{i}")
    cfg = json.loads(json.dumps(good))
    del cfg["state"]["knn_blocks"]  # a record of a choice without the choice
    (tmp_path / "t0" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="knn_selection"):
        ganad.load(tmp_path / "t0")
    cfg["state"]["knn_selection"] = None  # a file of an earlier version: neither, both blocks
    (tmp_path / "t0" / "config.json").write_text(json.dumps(cfg))
    back = ganad.load(tmp_path / "t0")
    assert back.__dict__.get("knn_blocks_") is None and back.decision_function(far).shape == (len(far),)


def test_the_feature_block_is_two_sided_features_more_central_than_normal_count_as_far(blobs):
    """knn_space='feature+input' reads the features' Mahalanobis distance d as |d - m|, m its median on the
    held-out slice (knn_typical_): GANomaly's discriminator maps samples between the modes of normal data of
    several modes among the training features, closer to their mean than held-out normal rows (validation,
    thirty-first session). Two embeddings with the same input block, one whose features lie at the typical
    distance and one at the features' mean: the second scores higher, by m over the block's scale, half of it
    in the two blocks' mean; one-sided it scored lower."""
    from ganad.scoring.composition import robust_location_scale
    X, far = blobs
    for det in (ganad.GANomaly(epochs=1, random_state=0).fit(X), ganad.GANomaly(epochs=1, random_state=0, knn_space="feature+input").fit(X)):
        m, sc = det.knn_typical_, det.knn_scales_
        emb = det._knn_embed(torch.from_numpy(det.scaler_.transform(X[det.validation_index_])))
        d_a, d_b = det._knn_block_distances(emb)
        assert m == pytest.approx(float(robust_location_scale(d_a.double().numpy()[:, None])[0][0]))  # the slice's median
        k = int(det.knn_split_)
        row = emb[:1].clone()
        typical, central = row.clone(), row.clone()
        typical[:, :k] = row[:, :k] * (m / float(row[:, :k].double().norm()))
        central[:, :k] = 0.0
        blocks = det.__dict__.get("knn_blocks_") or "both"  # knn_space named: no choice, both blocks
        if blocks != "input":  # both blocks read (the choice keeps them on these blobs)
            gap = float(det._knn_distance(central)[0] - det._knn_distance(typical)[0])
            assert gap == pytest.approx(0.5 * m / sc[0], rel=1e-4) and gap > 0
        np.testing.assert_allclose(det._knn_feature_block(d_a).numpy(), (d_a - m).abs().numpy())
        comps = det.score_components(far).components["knn"]
        e = det._knn_embed(torch.from_numpy(det.scaler_.transform(far)))
        fa, fb = det._knn_block_distances(e)
        want = fb / sc[1] if blocks == "input" else 0.5 * ((fa - m).abs() / sc[0] + fb / sc[1])
        np.testing.assert_allclose(comps, want.numpy(), rtol=1e-6)


def test_model_files_without_the_typical_distance_score_one_sided_and_a_bad_one_is_refused(blobs, tmp_path):
    """knn_typical in config.json (models from 2 Dec 2026): files written before it have none and score the
    features' distance one-sided, as they were fitted; a value that is not a finite number >= 0, or one
    beside another knn_space, is refused naming it."""
    import json
    import shutil
    X, far = blobs
    det = ganad.GANomaly(epochs=1, random_state=0, knn_space="feature+input").fit(X)
    det.save(tmp_path / "m")
    good = json.loads((tmp_path / "m" / "config.json").read_text())
    assert good["state"]["knn_typical"] == pytest.approx(det.knn_typical_)
    back = ganad.load(tmp_path / "m")
    assert back.knn_typical_ == det.knn_typical_
    np.testing.assert_array_equal(back.decision_function(far), det.decision_function(far))
    older = json.loads(json.dumps(good))
    del older["state"]["knn_typical"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(older))
    old = ganad.load(tmp_path / "m")
    assert old.__dict__.get("knn_typical_") is None
    e = old._knn_embed(torch.from_numpy(old.scaler_.transform(far)))
    d_a, d_b = old._knn_block_distances(e)
    np.testing.assert_allclose(old.score_components(far).components["knn"],
                               (0.5 * (d_a / old.knn_scales_[0] + d_b / old.knn_scales_[1])).numpy(), rtol=1e-6)
    for i, value in enumerate([-1.0, "3", True, 1e39]):
        shutil.copytree(tmp_path / "m", tmp_path / f"t{i}")
        cfg = json.loads(json.dumps(good))
        cfg["state"]["knn_typical"] = value
        (tmp_path / f"t{i}" / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ModelFileError, match="knn_typical"):
            ganad.load(tmp_path / f"t{i}")
    code = ganad.GANomaly(epochs=1, random_state=0, knn_space="code").fit(X)
    assert code.__dict__.get("knn_typical_") is None
    code.save(tmp_path / "c")
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    cfg["state"]["knn_typical"] = 1.0
    (tmp_path / "c" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="knn_typical"):
        ganad.load(tmp_path / "c")


@pytest.mark.parametrize("value", ["feature", "bogus"])
def test_model_file_with_edited_knn_blocks_is_refused(blobs, tmp_path, value):
    """knn_blocks in config.json: 'both', 'input' or 'feature', and only in the space 'feature+input'
    (a file that names another is refused naming knn_blocks, not scored with a block it does not have)."""
    import json
    X, far = blobs
    det = ganad.GANomaly(epochs=1, random_state=0, knn_space="feature").fit(X)
    det.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["state"]["knn_blocks"] = value
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="knn_blocks"):
        ganad.load(tmp_path / "m").decision_function(far)
