"""Parameter constraints declared once (ganad.params): every declared parameter exists, and a value no
constraint accepts is refused with an InputError naming the parameter, before any training."""

import numpy as np
import pytest

from ganad.detectors import DETECTORS
from ganad.exceptions import InputError
from ganad.params import Param, constraints_of, integer, none, options, real, validate_params

CLASSES = sorted(set(DETECTORS.values()), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_constraint_names_a_parameter_and_refuses_a_bad_value(cls):
    table = constraints_of(cls)
    params = cls().get_params()
    assert set(table) <= set(params), set(table) - set(params)
    assert len(table) >= 24  # the shared parameters are declared once, in the base class
    validate_params(cls())  # the defaults pass
    for name in table:
        with pytest.raises(InputError, match=f"^{name}: "):
            validate_params(cls(**{name: object()}))


def test_subclass_overrides_and_extends_the_shared_table():
    from ganad import VAEGAN, AnoGAN, BiGAN, GANomaly
    assert "w_adv" in constraints_of(GANomaly) and "w_adv" not in constraints_of(AnoGAN)
    assert constraints_of(BiGAN)["feature_layer"] is not constraints_of(AnoGAN)["feature_layer"]
    with pytest.raises(InputError, match="feature_layer: is -2, but BiGAN"):
        validate_params(BiGAN(feature_layer=-2))
    validate_params(AnoGAN(feature_layer=-2))
    with pytest.raises(InputError, match="prior: .*standard normal"):
        VAEGAN(prior="uniform", epochs=1).fit(np.zeros((20, 2)))


@pytest.mark.parametrize("rule,good,bad", [
    (Param(integer(1)), [1, np.int64(3)], [0, True, 1.0, "1", None]),
    (Param(none, integer(0, 3)), [None, 0, 3], [4, -1, 2.5]),
    (Param(real(0, 1, open="right")), [0, 0.5, np.float32(0.9)], [1, 1.0, -0.1, float("nan"), float("inf"), False]),
    (Param(real(0, open="left")), [1e-9, 5], [0, 0.0, -1]),
    (Param(options("a", -1)), ["a", -1, np.int64(-1)], ["b", 1, True, [1], np.array([-1, -1])]),
])
def test_constraints_accept_and_refuse(rule, good, bad):
    for v in good:
        rule.check("p", v)
    for v in bad:
        with pytest.raises(InputError, match="^p: is .*Fix: "):
            rule.check("p", v)


def test_whole_number_arguments_outside_the_constructor_refuse_a_bool():
    """Checks written outside the constructor's table use the same whole-number test (ganad.params.is_int):
    True is not a count of epochs or samples (it was accepted as 1 by two of them)."""
    from ganad import GANomaly
    from ganad.data.mitbih.loader import _check_window
    X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    with pytest.raises(InputError, match="^robust_warmup: is True"):
        GANomaly(epochs=1).fit(X, robust_contamination=0.1, robust_warmup=True)
    with pytest.raises(InputError, match="^window: is True"):
        _check_window(True, 0, 10)
    assert _check_window(np.int64(256), np.int32(90), 10) == (256, 90)


def test_epochs_reason_only_for_a_number_below_one():
    """"(0 epochs would train nothing)" was said of 'abc', None and 1.5 too."""
    cls = DETECTORS["ganomaly"]
    for bad in ("abc", None, 1.5):
        with pytest.raises(InputError, match=r"^epochs: is .*\. Fix") as e:
            cls(epochs=bad).fit(np.zeros((40, 4), np.float32))
        assert "would train nothing" not in str(e.value)
    with pytest.raises(InputError, match=r"^epochs: is 0 \(0 epochs would train nothing\)"):
        cls(epochs=0).fit(np.zeros((40, 4), np.float32))
    with pytest.raises(InputError, match=r"^encoder_epochs: is 'x'\. Fix"):
        DETECTORS["fanogan"](encoder_epochs="x").fit(np.zeros((40, 4), np.float32))


@pytest.mark.parametrize("cls_name, params, name", [
    ("BiGAN", dict(lam=2), "lam"), ("EGBAD", dict(lam=-1), "lam"), ("FAnoGAN", dict(kappa=-1), "kappa"),
    ("FAnoGAN", dict(kappa="a"), "kappa"), ("FAnoGAN", dict(kappa=float("nan")), "kappa"),
    ("VAEGAN", dict(score_weights={"foo": 1}), "score_weights"), ("VAEGAN", dict(score_weights="x"), "score_weights"),
    ("VAEGAN", dict(score_weights={"residual": 0}), "score_weights"), ("VAEGAN", dict(prior="uniform"), "prior"),
    ("FAnoGAN", dict(prior={"kind": "uniform"}), "prior"), ("FAnoGAN", dict(prior={"name": "uniform", "bound": 2}), "prior"),
    ("FAnoGAN", dict(prior=["normal"]), "prior"), ("FAnoGAN", dict(spectral_norm="False"), "spectral_norm"),
    ("FAnoGAN", dict(verbose="no"), "verbose"),
])
def test_score_weights_priors_and_switches_are_refused_before_training(cls_name, params, name):
    """These were checked only after every epoch (lam, kappa, score_weights: under the name 'weights'), not at
    all (spectral_norm='False' switched spectral norm on), or failed with a raw KeyError / TypeError (prior)."""
    import ganad
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    with pytest.raises(InputError, match=rf"^{name}: "):
        getattr(ganad, cls_name)(epochs=1, **params).fit(X)


def test_the_values_those_checks_accept():
    """The checks above refuse bad values only: these train, and their settings take effect."""
    import ganad
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    vae = ganad.VAEGAN(epochs=1, prior={"name": "normal"}, score_weights={"residual": 1, "feature": 0.1}, knn_weight=0.0).fit(X)
    w = vae.composer_.weights
    assert vae.prior_.name == "normal" and set(w) == {"residual", "feature"} and w["feature"] / w["residual"] == pytest.approx(0.1)
    fa = ganad.FAnoGAN(epochs=1, prior={"name": "truncated_normal", "bound": 2.0}, verbose=0, kappa=0).fit(X)
    assert fa.prior_.name == "truncated_normal" and fa.prior_.bound == 2.0
    bi = ganad.BiGAN(epochs=1, lam=1.0, spectral_norm=np.bool_(True)).fit(X)
    assert any("parametrizations" in n for n, _ in bi.nets_.named_parameters())


def test_contamination_as_a_string_is_refused():
    """contamination='0.1' passed float() and stayed a string parameter (scikit-learn refuses it)."""
    import ganad
    with pytest.raises(InputError, match="contamination: is '0.1', a string"):
        ganad.GANomaly(epochs=1, contamination="0.1").fit(np.random.RandomState(0).randn(64, 3).astype(np.float32))
