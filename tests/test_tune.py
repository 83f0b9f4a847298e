"""Hyperparameter search (ganad.tune, `ganad tune`): tiny models, a few trials each."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from typer.testing import CliRunner  # noqa: E402

from ganad import GANomaly  # noqa: E402
from ganad.cli import app  # noqa: E402
from ganad.exceptions import InputError  # noqa: E402
from ganad.tune import (auroc, check_space, default_space, holdout_split, read_space,  # noqa: E402
                        synthetic_anomalies, tune)

SRC = str(Path(__file__).resolve().parents[1] / "src")
_A = np.random.RandomState(42).randn(2, 8)


def manifold(n, seed):
    """Normal rows on a 2-d curved manifold in 8-d: a model must learn it to detect anything."""
    rng = np.random.RandomState(seed)
    return (np.tanh(rng.randn(n, 2) @ _A) + 0.05 * rng.randn(n, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def X():
    return manifold(400, 0)


def _only(space_over: dict) -> dict:
    """A search space of just ``space_over``: every default entry dropped (method defaults)."""
    return {**{k: None for k in default_space("ganomaly", (8,))}, **space_over}


# --------------------------------------------------------------------------- space


def test_default_space_contains_every_default():
    for method in ("anogan", "fanogan", "bigan", "alad", "ganomaly", "vaegan", "tadgan"):
        from ganad.detectors import DETECTORS
        det = DETECTORS[method]()
        defaults = det.get_params()
        for k, s in default_space(method, (8,)).items():
            v = defaults[k]
            if k == "knn_weight" and v == "auto":  # the weight chosen for the method's default space (1.0 or 0.75)
                v = det._knn_weight_now(det._resolve_knn_space())
            if s["type"] == "categorical":
                assert v in s["choices"], (method, k)
            else:
                assert s["low"] <= v <= s["high"], (method, k)


def test_check_space_errors_and_forms():
    sp = check_space({"lr_g": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}, "epochs": 3, "width": None}, GANomaly)
    assert sp == {"lr_g": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}, "epochs": {"type": "fixed", "value": 3}}
    with pytest.raises(InputError, match=r"search_space\['lr'\]: is not a parameter of GANomaly"):
        check_space({"lr": 0.1}, GANomaly)
    with pytest.raises(InputError, match="has type 'uniform'"):
        check_space({"lr_g": {"type": "uniform", "low": 0, "high": 1}}, GANomaly)
    with pytest.raises(InputError, match="log-scaled with low=0"):
        check_space({"lr_g": {"type": "float", "low": 0, "high": 1, "log": True}}, GANomaly)
    with pytest.raises(InputError, match="low <= high"):
        check_space({"latent_dim": {"type": "int", "low": 8, "high": 4}}, GANomaly)
    with pytest.raises(InputError, match="lacks"):
        check_space({"latent_dim": {"type": "categorical"}}, GANomaly)
    with pytest.raises(InputError, match="cannot be searched"):
        check_space({"random_state": 1}, GANomaly)


def test_space_step_null_and_a_non_boolean_log(X):
    """``"step": null`` (accepted by check_space) means no step, not a TypeError in the first
    trial; ``"log": "false"`` (a string, truthy) is refused instead of searched on a log scale."""
    r = tune(X, n_trials=1, params={"epochs": 1, "width": 8},
             search_space=_only({"n_neighbors": {"type": "int", "low": 2, "high": 8, "step": None}}))
    assert 2 <= r.best_params["n_neighbors"] <= 8
    with pytest.raises(InputError, match=r"search_space\['lr_g'\]\.log: is 'false'"):
        check_space({"lr_g": {"type": "float", "low": 1e-4, "high": 1e-3, "log": "false"}}, GANomaly)


def test_default_width_is_that_of_the_family_the_method_builds():
    """The width entry is the built family's default, half or double it: TadGAN builds LSTMs on series
    windows (width 64) and a fixed net='lstm' does too; the space offered auto's conv1d widths 2 and 8."""
    assert default_space("ganomaly", (1, 32))["width"]["choices"] == [None, 2, 8]  # conv1d, width 4
    assert default_space("tadgan", (1, 32))["width"]["choices"] == [None, 32, 128]
    assert default_space("ganomaly", (1, 32), net="lstm")["width"]["choices"] == [None, 32, 128]
    W = np.sin(np.linspace(0, 6, 16)[None, None, :] + np.random.RandomState(0).uniform(0, 6, (200, 1, 1))).astype(np.float32)
    keep_width = {k: None for k in default_space("ganomaly", (1, 16)) if k != "width"}
    r = tune(W, n_trials=1, params={"epochs": 1, "net": "lstm"}, search_space=keep_width, enqueue_defaults=False)
    assert r.study.trials[0].distributions["width"].choices == (None, 32, 128)


def test_a_default_off_a_spaces_step_grid_is_sampled(X):
    """The defaults trial takes a default only where the user's space holds it: n_neighbors=5 lies in
    [2, 20] but off its step-2 grid, so it is drawn (it ran with 5, which the space excludes)."""
    r = tune(X, n_trials=1, params={"epochs": 1}, search_space=_only({"n_neighbors": {"type": "int", "low": 2, "high": 20, "step": 2}}))
    assert r.study.trials[0].params["n_neighbors"] % 2 == 0 and r.detector.n_neighbors % 2 == 0


def test_failed_trials_do_not_count_toward_n_trials(X, monkeypatch):
    """n_trials is the number of finished (complete or pruned) trials: a trial that fails (a
    GanadError in fit) is run again in another round; the search ended one trial short."""
    from ganad.exceptions import GanadError
    real_fit, calls = GANomaly.fit, []

    def flaky_fit(self, *a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise GanadError("X: diverged. Fix: a test's failure")
        return real_fit(self, *a, **k)

    monkeypatch.setattr(GANomaly, "fit", flaky_fit)
    r = tune(X, n_trials=2, params={"epochs": 1}, refit=False)
    states = [t.state.name for t in r.study.trials]
    assert states.count("COMPLETE") == 2 and states.count("FAIL") == 1, states


def test_an_interrupted_defaults_trial_runs_again_on_resume(X, tmp_path, monkeypatch):
    """Ctrl-C during the defaults trial (the first of a new study) fails it without an error of its
    own; the resumed study queues the defaults again instead of never running them (the best trial
    would no longer be "never worse than the defaults"). A defaults trial that failed on its own
    error is not repeated."""
    real_fit, calls = GANomaly.fit, []

    def interrupted_fit(self, *a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real_fit(self, *a, **k)

    kw = dict(storage=tmp_path / "ki.db", study_name="k", params={"epochs": 1}, refit=False,
              search_space=_only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}}))
    monkeypatch.setattr(GANomaly, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        tune(X[:200], n_trials=2, **kw)
    monkeypatch.setattr(GANomaly, "fit", real_fit)
    trials = tune(X[:200], n_trials=2, **kw).study.trials
    assert trials[0].state.name == "FAIL" and trials[1].state.name == "COMPLETE"
    assert trials[1].params == {"w_con": 50.0} and trials[1].user_attrs["ganad_enqueued"] == "defaults"
    # a defaults trial that failed on its own error (ganad_error) is not queued again
    from ganad.exceptions import GanadError

    def failing_fit(self, *a, **k):
        if self.w_con == 50.0:
            raise GanadError("X: diverged. Fix: a test's failure")
        return real_fit(self, *a, **k)

    kw["study_name"] = "e"
    monkeypatch.setattr(GANomaly, "fit", failing_fit)
    with pytest.raises(InputError, match="has no completed trial"):
        tune(X[:200], n_trials=1, **kw)
    trials = tune(X[:200], n_trials=2, **kw).study.trials
    assert [t.user_attrs.get("ganad_enqueued") for t in trials].count("defaults") == 1


def test_values_the_method_refuses_fail_before_any_trial(X, tmp_path):
    """A fixed value, a choice or a bound the detector refuses, or a device that is not here, is
    refused before the study is created: it used to run (and record) a failed trial per draw, the
    defaults trial among them, which a resume with a corrected value never ran again."""
    db = tmp_path / "v.db"
    cases = [({"params": {"epochs": 1, "device": "no-such-device"}}, r"^params\['device'\]: is 'no-such-device'"),
             ({"params": {"epochs": 0}}, r"^params\['epochs'\]: is 0, which GANomaly refuses"),
             ({"params": {"epochs": None}}, r"^params\['epochs'\]: is None"),  # was int(None): a bare TypeError
             ({"search_space": {"n_neighbors": "abc"}}, r"^search_space\['n_neighbors'\]: is 'abc'.*Fix: pass a positive integer"),
             ({"search_space": {"latent_dim": {"type": "int", "low": -5, "high": 8}}}, r"^search_space\['latent_dim'\]\.low: is -5"),
             ({"search_space": {"latent_dim": {"type": "categorical", "choices": [4, 0]}}}, r"^search_space\['latent_dim'\]\.choices: is 0")]
    for kw, msg in cases:
        with pytest.raises(InputError, match=msg):
            tune(X, n_trials=1, storage=db, study_name="v", **{"params": {"epochs": 1}, **kw})
    assert optuna.get_all_study_names(f"sqlite:///{db}") == []


def test_read_space_files(tmp_path):
    (tmp_path / "s.json").write_text('{"w_con": {"type": "float", "low": 10, "high": 60}}')
    (tmp_path / "s.toml").write_text('[w_con]\ntype = "float"\nlow = 10.0\nhigh = 60.0\n')
    assert read_space(tmp_path / "s.json") == {"w_con": {"type": "float", "low": 10, "high": 60}}
    assert read_space(tmp_path / "s.toml")["w_con"]["high"] == 60.0
    (tmp_path / "bad.json").write_text("{lr_g: 1")
    with pytest.raises(InputError, match="is not valid JSON"):
        read_space(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot be read"):
        read_space(tmp_path / "missing.json")


# --------------------------------------------------------------------------- objective


def test_synthetic_anomalies_seeded_and_corrupting():
    N = manifold(50, 1)
    S = synthetic_anomalies(N, seed=3)
    assert S.shape == N.shape
    np.testing.assert_array_equal(S, synthetic_anomalies(N, seed=3))
    changed = (S != N).sum(1)
    assert (changed >= 1).all() and (changed <= 8).all()
    assert not np.array_equal(S, synthetic_anomalies(N, seed=4))
    assert auroc(np.r_[np.zeros(5), np.ones(5)], np.ones(10)) == 0.5  # a detector that scores all alike


def test_label_free_objective_ranks_broken_below_sane(X):
    """The criterion (AUROC of held-out normal rows vs their corruptions) ranks a deliberately
    broken configuration (a 1-d code through 2 units, the method's own score alone) below a sane
    one, as the true AUROC on real off-manifold anomalies does."""
    fit_idx, hold_idx = holdout_split(len(X), 0.2, 0)
    N = X[hold_idx]
    ev = np.r_[N, synthetic_anomalies(N, 0).astype(np.float32)]
    y = np.r_[np.zeros(len(N)), np.ones(len(N))]
    test = np.r_[manifold(100, 5), np.random.RandomState(5).uniform(-1, 1, (100, 8)).astype(np.float32)]
    y_test = np.r_[np.zeros(100), np.ones(100)]
    crit, true = {}, {}
    for name, kw in {"sane": {}, "broken": dict(latent_dim=1, width=2, knn_weight=0.0)}.items():
        det = GANomaly(epochs=5, random_state=0, **kw).fit(X[fit_idx])
        crit[name] = auroc(y, det.decision_function(ev))
        true[name] = auroc(y_test, det.decision_function(test))
    assert true["sane"] > true["broken"] + 0.2  # the broken one really is broken
    assert crit["sane"] > crit["broken"] + 0.2
    assert crit["broken"] < 0.65


def test_holdout_never_trains_on_eval_rows():
    fit_idx, hold_idx = holdout_split(200, 0.2, 1)
    assert len(hold_idx) == 40 and not np.intersect1d(fit_idx, hold_idx).size and len(fit_idx) + len(hold_idx) == 200
    with pytest.raises(InputError, match="too few for a tuning hold-out"):
        holdout_split(40, 0.2, 0)


# --------------------------------------------------------------------------- studies


def test_tune_sqlite_resume_and_refit(X, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = _only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}})
    r1 = tune(X, n_trials=2, storage=url, study_name="s", search_space=space, params={"epochs": 1}, refit=False)
    assert r1.detector is None
    assert len(r1.study.trials) == 2 and r1.study.trials[0].params == {"w_con": 50.0}  # the defaults come first
    assert r1.study.trials[0].user_attrs["ganad_enqueued"] == "defaults"
    # resumed: the study already has 2 finished trials, so a target of 3 runs one more
    r2 = tune(X, n_trials=3, storage=url, study_name="s", search_space=space, params={"epochs": 1})
    assert [t.number for t in r2.study.trials] == [0, 1, 2]
    assert r2.study.trials[0].params == r1.study.trials[0].params
    # the dashboard reads the same URL: the study loads with its values
    loaded = optuna.load_study(study_name="s", storage=url)
    assert len(loaded.trials) == 3 and loaded.best_value == pytest.approx(r2.best_value)
    det = r2.detector
    assert det.w_con == pytest.approx(r2.best_params["w_con"]) and det.epochs == 1
    assert det.tuning_["study_name"] == "s" and det.tuning_["best_value"] == pytest.approx(r2.best_value)
    assert det.decision_function(X[:5]).shape == (5,)
    # the same study for another method is refused, not mixed
    with pytest.raises(InputError, match="was created with other settings"):
        tune(X, method="bigan", n_trials=1, storage=url, study_name="s", params={"epochs": 1})
    # other data (here the same values as float64, as a newer reader gives a CSV): named, with the likely cause
    with pytest.raises(InputError, match="ganad_data_sha256.*older than its float64 scaling"):
        tune(np.asarray(X, dtype=np.float64) + 1e-9, n_trials=3, storage=url, study_name="s", search_space=space, params={"epochs": 1})


def test_the_default_study_name_is_the_settings_own(X, tmp_path):
    """Without a study name, every tune of one storage used 'ganad-<method>': a second search with other
    data or options was refused ("pass a new --study-name"). The default name now carries a hash of
    the settings a resume must repeat: the same ones resume, others start their own study."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    kw = dict(storage=url, search_space=_only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}}), refit=False)
    a = tune(X[:200], n_trials=1, params={"epochs": 1}, **kw).study
    b = tune(X[:200], n_trials=1, params={"epochs": 2}, **kw).study  # other options: refused before
    c = tune(X[200:], n_trials=1, params={"epochs": 1}, **kw).study  # other data
    assert re.fullmatch(r"ganad-ganomaly-[0-9a-f]{8}", a.study_name)
    assert len({a.study_name, b.study_name, c.study_name}) == 3
    again = tune(X[:200], n_trials=1, params={"epochs": 1}, **kw).study  # the same data and options: resumed (done already)
    assert again.study_name == a.study_name and len(again.trials) == 1
    assert sorted(optuna.get_all_study_names(url)) == sorted([a.study_name, b.study_name, c.study_name])
    # a name given is that study: other settings are still refused
    with pytest.raises(InputError, match="was created with other settings.*new --study-name"):
        tune(X[:200], n_trials=1, params={"epochs": 2}, study_name=a.study_name, **kw)
    # a study under the old default name, 'ganad-ganomaly', is resumed by the same settings (the name kept)
    # and left alone by other ones
    old = {**kw, "storage": f"sqlite:///{tmp_path / 'old.db'}"}
    tune(X[:200], n_trials=1, params={"epochs": 1}, study_name="ganad-ganomaly", **old)
    assert tune(X[:200], n_trials=1, params={"epochs": 1}, **old).study.study_name == "ganad-ganomaly"
    assert tune(X[:200], n_trials=1, params={"epochs": 2}, **old).study.study_name.startswith("ganad-ganomaly-")
    with pytest.raises(InputError, match=r"^study_name: is a int \(5\)"):
        tune(X[:200], n_trials=1, study_name=5)


def test_cli_searches_into_folders_side_by_side_get_studies_of_their_own(csvs):
    """`ganad tune -o models/a` then `-o models/b` share the default storage (models/ganad-tune.db) and,
    before, the default study name '<method>-<data file stem>': the second, with another --epochs,
    was refused. The same command into a third folder resumes the first's study."""
    run = lambda out, *a: CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "models" / out),  # noqa: E731
                                                   "--trials", "1", *a])
    names = []
    for out, epochs in (("a", "1"), ("b", "2"), ("c", "1")):
        r = run(out, "--epochs", epochs)
        assert r.exit_code == 0, r.output
        names.append(json.loads((csvs / "models" / out / "tuning.json").read_text())["study_name"])
    assert names[0] == names[2] != names[1] and all(n.startswith("ganomaly-train-") for n in names)
    assert sorted(optuna.get_all_study_names(f"sqlite:///{csvs / 'models' / 'ganad-tune.db'}")) == sorted(set(names))
    r = run("d", "--epochs", "2", "--study-name", names[0])  # a name given: strict, as before
    assert r.exit_code != 0 and "other settings" in r.output, r.output


def test_resume_with_other_fixed_values_in_the_space_is_refused(X, tmp_path):
    """A space's plain value is fixed for every trial and not among a trial's params: a resume that
    changed it would refit the best (old) trial with a value it was never evaluated with."""
    url = f"sqlite:///{tmp_path / 'fixed.db'}"
    space = _only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}, "width": 8})
    r1 = tune(X, n_trials=1, storage=url, study_name="s", search_space=space, params={"epochs": 1}, refit=False)
    r2 = tune(X, n_trials=1, storage=url, study_name="s", search_space=space, params={"epochs": 1})  # same: resumes
    assert len(r2.study.trials) == 1 and r2.detector.width == 8 == r1.best_params["width"]
    with pytest.raises(InputError, match="ganad_space_fixed.*new --study-name"):
        tune(X, n_trials=1, storage=url, study_name="s", search_space={**space, "width": 64}, params={"epochs": 1})


def test_defaults_outside_a_given_space_are_sampled(X):
    """A user's space that leaves the default out (latent_dim 16 not in [4, 8]) is honoured."""
    r = tune(X, n_trials=1, params={"epochs": 1}, search_space=_only({"latent_dim": {"type": "categorical", "choices": [4, 8]}}))
    assert r.study.trials[0].params["latent_dim"] in (4, 8) and r.detector.latent_dim in (4, 8)


def test_pruning_stops_a_bad_trial(X):
    space = _only({"latent_dim": {"type": "categorical", "choices": [1, 8]},
                   "width": {"type": "categorical", "choices": [None, 2]},
                   "lr_g": {"type": "float", "low": 1e-7, "high": 1e-3, "log": True}})
    r = tune(X, n_trials=2, params={"epochs": 4}, search_space=space, enqueue_defaults=False,
             enqueue=[dict(latent_dim=8, width=None, lr_g=1e-3), dict(latent_dim=1, width=2, lr_g=1e-7)],
             pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=2))
    good, bad = r.study.trials
    assert good.state == optuna.trial.TrialState.COMPLETE and len(good.intermediate_values) == 4
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert len(bad.intermediate_values) == 3  # stopped at the first epoch after the warm-up
    from ganad.tune import trial_line
    assert "pruned (ganomaly epoch 3)" in trial_line(r.study, bad)  # its third epoch (trial.last_step said 2, counting from 0)
    assert r.best_params["latent_dim"] == 8


def test_an_ensemble_trial_reports_its_first_members_epochs_and_can_be_pruned(X):
    """An ensemble's members are clones, which dropped the trial's reporter: an n_members > 1 trial
    reported nothing and was never pruned. The first member reports (the steps of a single model);
    a trial pruned there leaves nothing that breaks the next trial or the refit."""
    class PruneTrialOne(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 1

    r = tune(X[:200], n_trials=3, params={"epochs": 2, "n_members": 2}, pruner=PruneTrialOne(),
             search_space=_only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}}))
    S = optuna.trial.TrialState
    assert [t.state for t in r.study.trials] == [S.COMPLETE, S.PRUNED, S.COMPLETE]
    done, pruned, after = r.study.trials
    assert sorted(done.intermediate_values) == [0, 1]  # the first member's 2 epochs (the second member's are not reported)
    assert list(pruned.intermediate_values) == [0]  # stopped at its first report, before the second member trained
    from ganad.tune import trial_line
    assert "pruned (ganomaly epoch 1, member 1 of 2)" in trial_line(r.study, pruned)
    assert sorted(after.intermediate_values) == [0, 1]
    det = r.detector  # the refit (no pruning there): a whole ensemble
    assert len(det.members_) == 2 and det.decision_function(X[:5]).shape == (5,)
    # the hook itself: a plain callable reaches the first member only, and no member keeps it
    calls = []
    ens = GANomaly(epochs=1, n_members=2, random_state=0)
    ens._train_callbacks = [lambda stage, epoch, means: calls.append((stage, epoch))]
    ens.fit(X[:200])
    assert calls == [("ganomaly", 0)] and not any("_train_callbacks" in m.__dict__ for m in ens.members_)


def test_labelled_objective_is_validation_auroc(X):
    X_val = np.r_[manifold(60, 7), np.random.RandomState(7).uniform(-1, 1, (20, 8)).astype(np.float32)]
    y_val = np.r_[np.zeros(60, int), np.ones(20, int)]
    r = tune(X, n_trials=2, X_val=X_val, y_val=y_val, params={"epochs": 2},
             search_space=_only({"knn_weight": {"type": "float", "low": 0.0, "high": 1.0}}))
    assert r.objective == "labelled-auroc"
    # with labels the trials train on all of X, so the refit is the best trial's model
    assert auroc(y_val, r.detector.decision_function(X_val)) == pytest.approx(r.best_value)
    with pytest.raises(InputError, match="only one was given"):
        tune(X, n_trials=1, X_val=X_val)
    with pytest.raises(InputError, match="one class only"):
        tune(X, n_trials=1, X_val=X_val, y_val=np.zeros(80, int))


def test_a_dataframe_tuned_model_keeps_its_columns(X):
    """tune(DataFrame) refitted on the array: the model had no feature_names_in_ (fit(DataFrame)
    has them) and scored a DataFrame with its columns in another order without a word."""
    cols = [f"f{i}" for i in range(8)]
    df = pd.DataFrame(X[:200], columns=cols)
    det = tune(df, n_trials=1, params={"epochs": 1}, search_space=_only({"knn_weight": {"type": "float", "low": 0.4, "high": 0.6}})).detector
    assert list(det.feature_names_in_) == cols
    with pytest.raises(InputError, match="another order"):
        det.decision_function(df[cols[::-1]])
    val = pd.DataFrame(np.r_[X[200:240], X[240:280] + 1], columns=cols)
    with pytest.raises(InputError, match="^X_val: has the columns"):
        tune(df, n_trials=1, params={"epochs": 1}, X_val=val[cols[::-1]], y_val=np.r_[np.zeros(40), np.ones(40)])


def test_bad_inputs(X, tmp_path):
    with pytest.raises(InputError, match="method: is 'gan'"):
        tune(X, method="gan")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="n_trials"):
            tune(X, n_trials=bad)
    with pytest.raises(InputError, match="folder .* does not exist"):
        tune(X, n_trials=1, storage=f"sqlite:///{tmp_path / 'nope' / 's.db'}")
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database\n" * 100)
    with pytest.raises(InputError, match="storage"):
        tune(X, n_trials=1, storage=str(junk), params={"epochs": 1})
    with pytest.raises(InputError, match="not parameters of GANomaly"):
        tune(X, n_trials=1, params={"epoch": 1})
    with pytest.raises(InputError, match="^timeout: is True"):  # was taken as 1 second
        tune(X, n_trials=1, timeout=True)
    for bad in (-1, 2**32, 1.0):  # -1 ended in numpy's own ValueError
        with pytest.raises(InputError, match="^seed: "):
            tune(X, n_trials=1, seed=bad)


# --------------------------------------------------------------------------- command line


@pytest.fixture()
def csvs(tmp_path):
    cols = [f"f{i}" for i in range(8)]
    pd.DataFrame(manifold(300, 0), columns=cols).to_csv(tmp_path / "train.csv", index=False)
    val = pd.DataFrame(np.r_[manifold(40, 2), np.random.RandomState(2).uniform(-1, 1, (10, 8))], columns=cols)
    val["label"] = np.r_[np.zeros(40, int), np.ones(10, int)]
    val.to_csv(tmp_path / "val.csv", index=False)
    return tmp_path


def test_cli_tune_end_to_end(csvs):
    r = CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "model"), "--trials", "2", "--epochs", "1",
                                 "--val-data", str(csvs / "val.csv"), "--label-column", "label"])
    assert r.exit_code == 0, r.output
    # one progress line per finished trial, on stderr (the search was silent until its final table)
    assert "trial 0: AUROC" in r.stderr and "trial 1: AUROC" in r.stderr and "best so far" in r.stderr, r.stderr
    assert (csvs / "ganad-tune.db").exists()  # the default storage: beside the model
    rec = json.loads((csvs / "model" / "tuning.json").read_text())
    assert rec["objective"] == "labelled-auroc" and re.fullmatch(r"ganomaly-train-[0-9a-f]{8}", rec["study_name"])
    assert f"study {rec['study_name']}" in " ".join(r.output.split())  # named in the final line, for a dashboard or --study-name
    import ganad
    det = ganad.load(csvs / "model")
    assert det.w_con == pytest.approx(rec["best_params"]["w_con"])
    assert list(det.feature_names_in_) == [f"f{i}" for i in range(8)]
    study = optuna.load_study(study_name=rec["study_name"], storage=f"sqlite:///{csvs / 'ganad-tune.db'}")
    assert len(study.trials) == 2
    # ganad info reports the search that chose the model
    r = CliRunner().invoke(app, ["info", str(csvs / "model"), "--json"])
    assert r.exit_code == 0, r.output
    tuned = json.loads(r.stdout)["tuning"]
    assert tuned["objective"] == "labelled-auroc" and tuned["best_params"] == rec["best_params"]
    assert "tuned (ganad tune): objective labelled-auroc" in CliRunner().invoke(app, ["info", str(csvs / "model")]).stdout


def test_cli_tune_into_a_new_folder(csvs):
    """`ganad tune -o new/dir/model` works as `ganad fit -o new/dir/model` does: the default storage
    (ganad-tune.db beside the model, docs/tuning.md) gets its folder; a refused run leaves none."""
    r = CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "new" / "dir" / "model"), "--trials", "1", "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert (csvs / "new" / "dir" / "ganad-tune.db").exists() and (csvs / "new" / "dir" / "model" / "tuning.json").exists()
    # refused inside the search (after the folder was made): the folder goes again
    r = CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "other" / "dir" / "model"), "--tune-fraction", "1.5"])
    assert r.exit_code != 0 and "--tune-fraction: is 1.5" in r.output, r.output
    assert not (csvs / "other").exists()


def test_cli_tune_refuses_an_existing_model_without_overwrite(csvs):
    """`ganad tune -o DIR` onto a saved model is refused before any trial (README: an existing model is
    replaced only with --overwrite), the model and the storage untouched; --overwrite replaces it."""
    X = pd.read_csv(csvs / "train.csv").to_numpy(np.float32)
    GANomaly(epochs=1, random_state=0).fit(X).save(csvs / "model")
    before = (csvs / "model" / "config.json").read_bytes()
    args = ["tune", str(csvs / "train.csv"), "-o", str(csvs / "model"), "--trials", "1", "--epochs", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code != 0 and "--overwrite" in r.output, r.output
    assert (csvs / "model" / "config.json").read_bytes() == before
    assert not (csvs / "model" / "tuning.json").exists() and not (csvs / "ganad-tune.db").exists()
    r = CliRunner().invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert (csvs / "model" / "tuning.json").exists()


def test_cli_errors_write_nothing(csvs):
    run = lambda *a: CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "m"), *a])  # noqa: E731
    (csvs / "space.json").write_text("[1, 2]")
    cases = [(["--method", "gan"], "method"), (["--trials", "0"], "--trials: is 0"), (["--space", str(csvs / "space.json")], "--space"),
             (["--device", "no-such-device"], "device: 'no-such-device' is not a device"),  # ran every trial, each failing
             (["--epochs", "0"], "--epochs: is 0"),  # named as the option, not as tune()'s params['epochs']
             (["--timeout", "-1"], "--timeout: is -1"), (["--seed", "-1"], "--seed: is -1"),
             (["--tune-fraction", "0"], "--tune-fraction: is 0"),
             (["--storage", f"sqlite:///{csvs / 'no' / 'x.db'}"], "storage"),
             (["--val-data", str(csvs / "val.csv")], "--label-column"),
             (["--label-column", "label"], "without --val-data")]  # it was ignored: the label-free objective ran
    for args, word in cases:
        r = run(*args)
        assert r.exit_code != 0 and word in " ".join(r.output.split()), (args, r.output)
        assert not (csvs / "m").exists()
    assert not (csvs / "ganad-tune.db").exists() or optuna.get_all_study_names(f"sqlite:///{csvs / 'ganad-tune.db'}") == []


def test_two_workers_share_one_study(csvs):
    """Two processes on one SQLite study: distinct trials, a shared target, both save a model."""
    url = f"sqlite:///{csvs / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = lambda out: [sys.executable, "-m", "ganad.cli", "tune", str(csvs / "train.csv"), "-o", str(csvs / out),  # noqa: E731
                       "--trials", "4", "--epochs", "1", "--storage", url, "--study-name", "shared"]
    procs = [subprocess.Popen(cmd(f"m{i}"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    study = optuna.load_study(study_name="shared", storage=url)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 4 <= len(finished) <= 5  # the target, overshot by at most the one trial the other worker had running
    assert len({t.number for t in study.trials}) == len(study.trials)
    assert (csvs / "m0" / "tuning.json").exists() and (csvs / "m1" / "tuning.json").exists()


def _two_workers(run) -> None:
    """``run`` in two threads at once (two tune workers of one study); their errors re-raised here."""
    import threading
    errors = []

    def worker():
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_workers_started_together_draw_different_trials(X, tmp_path, monkeypatch):
    """Two workers that open one study at the same moment (both see the same trials: none) draw
    different parameters. Each trial's random draws come from the seed and the trial's number,
    which the storage gives once; a sampler seeded with the seed plus the number of trials a worker
    saw at its start gave both workers one sequence: the same trials, run twice."""
    import threading
    url = f"sqlite:///{tmp_path / 'together.db'}"
    optuna.create_study(storage=url, study_name="t", direction="maximize")  # the database exists: no race on its tables
    space = _only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}, "knn_weight": {"type": "float", "low": 0.0, "high": 1.0}})
    barrier = threading.Barrier(2, timeout=60)
    optimize = optuna.study.Study.optimize

    def together(self, *a, **kw):  # both workers have opened the study before either asks for a trial
        barrier.wait()
        return optimize(self, *a, **kw)

    monkeypatch.setattr(optuna.study.Study, "optimize", together)
    _two_workers(lambda: tune(X[:200], n_trials=4, storage=url, study_name="t", search_space=space, params={"epochs": 1},
                              refit=False, enqueue_defaults=False, seed=0))
    trials = optuna.load_study(study_name="t", storage=url).trials
    drawn = [tuple(sorted(t.params.items())) for t in trials]
    assert len(drawn) >= 4 and len(set(drawn)) == len(drawn), drawn


def test_workers_that_both_find_an_empty_study_queue_the_defaults_once(X, tmp_path, monkeypatch):
    """Two workers that both see no trial yet both queue the defaults; the storage keeps one of them
    (skip_if_exists), so the defaults are not trained twice."""
    import threading
    url = f"sqlite:///{tmp_path / 'dflt.db'}"
    optuna.create_study(storage=url, study_name="d", direction="maximize")
    space = _only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}})
    barrier, lock = threading.Barrier(2, timeout=60), threading.Lock()
    enqueue = optuna.study.Study.enqueue_trial

    def both_saw_none(self, *a, **kw):  # both workers found the study empty before either queued
        barrier.wait()
        with lock:
            return enqueue(self, *a, **kw)

    monkeypatch.setattr(optuna.study.Study, "enqueue_trial", both_saw_none)
    _two_workers(lambda: tune(X[:200], n_trials=2, storage=url, study_name="d", search_space=space, params={"epochs": 1},
                              refit=False, seed=0))
    trials = optuna.load_study(study_name="d", storage=url).trials
    assert sum(t.user_attrs.get("ganad_enqueued") == "defaults" for t in trials) == 1, [t.params for t in trials]


def test_seeded_study_is_reproducible_and_a_resume_continues_it(X, tmp_path):
    """One worker with a fixed seed: the same trials every run, and a study stopped after 2 trials
    and resumed to 3 has the trials of an uninterrupted run of 3 (trial n's draws depend on the
    seed and n only, in the random start-up trials)."""
    kw = dict(search_space=_only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}}), params={"epochs": 1},
              refit=False, seed=5)
    whole = tune(X[:200], n_trials=3, storage=tmp_path / "a.db", study_name="a", **kw).study.trials
    tune(X[:200], n_trials=2, storage=tmp_path / "b.db", study_name="b", **kw)
    resumed = tune(X[:200], n_trials=3, storage=tmp_path / "b.db", study_name="b", **kw).study.trials
    assert [t.params for t in whole] == [t.params for t in resumed]
    assert len({t.params["w_con"] for t in whole}) == 3


def test_killed_worker_study_resumes(csvs):
    """SIGKILL a `ganad tune` worker once the study has a finished trial; the same study resumes
    with what is missing, nothing written to the model directory by the killed worker."""
    import signal
    import time
    url = f"sqlite:///{csvs / 'killed.db'}"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "ganad.cli", "tune", str(csvs / "train.csv"), "-o", str(csvs / "mk"), "--trials", "50",
                          "--epochs", "2", "--storage", url, "--study-name", "k"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        finished = 0
        while time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.5)
            try:
                finished = sum(t.state.is_finished() for t in optuna.load_study(study_name="k", storage=url).trials)
            except Exception:  # the study is not created yet
                continue
            if finished >= 1:
                break
        assert finished >= 1 and p.poll() is None
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert not (csvs / "mk").exists()
    X = pd.read_csv(csvs / "train.csv").to_numpy(np.float64)  # as `ganad tune` read it: float64, every digit kept
    before = optuna.load_study(study_name="k", storage=url).trials
    n_fin = sum(t.state.is_finished() for t in before)
    r = tune(X, n_trials=n_fin + 1, storage=url, study_name="k", params={"epochs": 2, "device": "auto"}, seed=0)
    after = r.study.trials
    assert sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in after) == n_fin + 1
    assert len(after) == len(before) + 1 and after[0].params == before[0].params


def test_optuna_dashboard_reads_the_study(X, tmp_path):
    """optuna-dashboard's own API (its WSGI app on the SQLite URL) lists the study and its trials."""
    import io
    dash = pytest.importorskip("optuna_dashboard")
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    tune(X, n_trials=2, storage=url, study_name="dash", params={"epochs": 1}, refit=False,
         search_space=_only({"knn_weight": {"type": "float", "low": 0.0, "high": 1.0}}))
    app_ = dash.wsgi(url)

    def get(path):
        status = {}
        env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": io.StringIO()}
        body = b"".join(app_(env, lambda s, h, e=None: status.setdefault("s", s)))
        assert status["s"].startswith("200"), (path, status)
        return json.loads(body)

    studies = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["dash"]
    detail = get(f"/api/studies/{studies[0]['study_id']}")
    assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete"]
    assert detail["has_intermediate_values"]  # the per-epoch values the pruner reads are there to plot


def test_storage_that_cannot_work_is_refused_without_retries(monkeypatch):
    """Retries are for two workers racing to create one database; an unknown URL scheme or a missing
    driver fails the same way every time and is refused at once (no sleeps)."""
    import ganad.tune as tune_mod
    sleeps = []
    monkeypatch.setattr(tune_mod.time, "sleep", lambda s: sleeps.append(s))
    with pytest.raises(InputError, match="storage.*nosuch.*Fix:"):
        tune_mod._open_storage("nosuch://host/db")
    assert sleeps == []


def test_joining_a_study_whose_settings_are_still_being_written(X, tmp_path):
    """A second worker that opens the study while the first is still writing its settings (one user
    attribute at a time) waits for them instead of taking the missing ones for other settings."""
    import threading

    import ganad.tune as tune_mod
    url = f"sqlite:///{tmp_path / 'race.db'}"
    attrs = tune_mod._study_attrs("ganomaly", False, X.shape[1:], 0.2, 0)
    study = optuna.create_study(storage=url, study_name="r", direction="maximize")
    study.set_user_attr("ganad_method", "ganomaly")  # the first worker, half-way through its writes
    rest = threading.Timer(0.5, lambda: [study.set_user_attr(k, v) for k, v in attrs.items() if k != "ganad_method"])
    rest.start()
    try:
        r = tune(X, n_trials=1, storage=url, study_name="r", params={"epochs": 1}, refit=False)
    finally:
        rest.join()
    assert len(r.study.trials) == 1
    # settings that really differ are still refused
    with pytest.raises(InputError, match="was created with other settings"):
        tune(X, n_trials=1, storage=url, study_name="r", params={"epochs": 1}, refit=False, seed=3)


def test_a_worker_that_lost_a_queued_trial_to_another_goes_on(X, tmp_path, monkeypatch):
    """On SQLite storage two workers can both take the same queued trial (SQLite ignores optuna's row
    lock); the second to finish gets optuna's 'Cannot tell a COMPLETE trial' from its optimize loop.
    That worker carries on with the study's remaining trials instead of failing the tuning run; any
    other error still propagates."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    space = _only({"w_con": {"type": "float", "low": 10.0, "high": 60.0}})
    real = optuna.study.Study.optimize
    calls = []

    def lost_once(self, *a, **kw):
        calls.append(kw.get("n_trials"))
        if len(calls) == 1:
            real(self, a[0], n_trials=1, catch=kw.get("catch", ()))  # one trial runs, then the lost race
            raise ValueError("Cannot tell a COMPLETE trial.")
        return real(self, *a, **kw)

    monkeypatch.setattr(optuna.study.Study, "optimize", lost_once)
    res = tune(X[:200], n_trials=3, storage=url, study_name="r", search_space=space, params={"epochs": 1}, refit=False, seed=0)
    done = [t for t in res.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and calls == [3, 2]

    def other_error(self, *a, **kw):
        raise ValueError("something else")

    monkeypatch.setattr(optuna.study.Study, "optimize", other_error)
    with pytest.raises(ValueError, match="something else"):
        tune(X[:200], n_trials=4, storage=url, study_name="r", search_space=space, params={"epochs": 1}, refit=False, seed=0)


# --------------------------------------------------------------------------- audit fixes


def test_the_tuning_record_is_part_of_the_models_atomic_write(csvs, monkeypatch):
    """tuning.json was written after det.save(): a kill between the two left a model without it.
    It is now in the folder that replaces OUTPUT in one step; a refit forgets the record."""
    import ganad.io
    seen, real = [], ganad.io.replace_dir

    def spy(tmp, path):
        seen.append(sorted(p.name for p in Path(tmp).iterdir()))
        return real(tmp, path)

    monkeypatch.setattr(ganad.io, "replace_dir", spy)
    r = CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "model"), "--trials", "1", "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert seen == [["config.json", "model.safetensors", "tuning.json"]]
    rec = json.loads((csvs / "model" / "tuning.json").read_text())
    assert rec["study_name"].startswith("ganomaly-train-") and rec["best_trial"] == 0
    import ganad
    det = ganad.load(csvs / "model")
    assert det.tuning_ == rec  # read back with the model: a load and a save elsewhere keep it
    det.save(csvs / "copy")
    assert json.loads((csvs / "copy" / "tuning.json").read_text()) == rec
    (csvs / "copy" / "tuning.json").write_text("{not json")
    with pytest.raises(ganad.exceptions.ModelFileError, match=r"tuning.json: cannot be read as JSON"):
        ganad.load(csvs / "copy")
    det.fit(pd.read_csv(csvs / "train.csv").to_numpy(np.float32)[:100])  # no longer the tuned model
    det.save(csvs / "refit")
    assert not (csvs / "refit" / "tuning.json").exists()


def test_a_space_of_fixed_values_only_is_refused(X):
    """Every trial would train the same model: n_trials identical fits."""
    with pytest.raises(InputError, match=r"^search_space: only fixes values \(knn_weight, width\).*Fix: give at least one range"):
        tune(X, n_trials=3, params={"epochs": 1}, search_space=_only({"knn_weight": 0.5, "width": 8}))


def test_a_key_in_params_and_in_the_space_is_refused(X, csvs):
    """The space's entry was dropped without a word: the user's range was never searched."""
    with pytest.raises(InputError, match=r"^search_space\['epochs'\]: is given, and params\['epochs'\] fixes it too \(1\)"):
        tune(X, n_trials=1, params={"epochs": 1}, search_space={"epochs": {"type": "int", "low": 1, "high": 3}})
    with pytest.raises(InputError, match="fixes it too"):
        tune(X, n_trials=1, params={"latent_dim": 8}, search_space={"latent_dim": 8})
    tune(X, n_trials=1, params={"epochs": 1, "latent_dim": 8}, search_space={"latent_dim": None}, refit=False)  # None: not searched
    (csvs / "space.json").write_text(json.dumps({"epochs": {"type": "int", "low": 1, "high": 3}}))
    r = CliRunner().invoke(app, ["tune", str(csvs / "train.csv"), "-o", str(csvs / "m"), "--epochs", "1", "--space", str(csvs / "space.json")])
    msg = " ".join(r.output.split())
    assert r.exit_code != 0 and "entry ['epochs']: is given, and --epochs fixes it too (1)" in msg and msg.startswith("error: --space "), r.output
    assert "Fix: give epochs in one of them: --epochs to fix it for every trial" in msg and "params[" not in msg
    assert not (csvs / "m").exists()


def test_the_pruners_warm_up_follows_the_epochs_of_the_space(X):
    """The warm-up was a third of params['epochs'] or of the default (GANomaly: 50 -> 16 steps), even
    when the space fixes or draws fewer: a trial of 3 epochs was never pruned."""
    space = {"epochs": {"type": "categorical", "choices": [2, 1]}}
    r = tune(X, n_trials=1, search_space=_only(space), refit=False)
    assert r.study.pruner._n_warmup_steps == 1
    r = tune(X, n_trials=1, search_space=_only({"epochs": {"type": "int", "low": 6, "high": 7}}), refit=False, enqueue_defaults=False,
             enqueue=[{"epochs": 6}])
    assert r.study.pruner._n_warmup_steps == 2


def test_labelled_study_resumes_with_another_tune_fraction(X, tmp_path):
    """--tune-fraction is unused with labelled validation data, but was stored: a resume with another was refused."""
    X_val = np.r_[manifold(40, 7), np.random.RandomState(7).uniform(-1, 1, (10, 8)).astype(np.float32)]
    y_val = np.r_[np.zeros(40, int), np.ones(10, int)]
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    space = _only({"knn_weight": {"type": "float", "low": 0.0, "high": 1.0}})
    kw = dict(storage=url, study_name="s", X_val=X_val, y_val=y_val, params={"epochs": 1}, search_space=space, refit=False)
    tune(X, n_trials=1, tune_fraction=0.2, **kw)
    r = tune(X, n_trials=1, tune_fraction=0.3, **kw)
    assert len(r.study.trials) == 1 and "ganad_tune_fraction" not in r.study.user_attrs
    with pytest.raises(InputError, match="other settings"):  # label-free: the fraction still counts
        tune(X, n_trials=1, storage=url, study_name="s", params={"epochs": 1}, search_space=space)


def test_redact_keeps_paths_and_hides_passwords_only():
    from ganad.tune import _redact
    assert _redact("sqlite:////data/me@work/study.db") == "sqlite:////data/me@work/study.db"
    assert _redact("postgresql://user:s3cret@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert _redact("postgresql://user@host/db") == "postgresql://user@host/db"
    assert _redact(None) is None
    # a password holding a '/' (a valid URL: SQLAlchemy reads the password 'se/cret') was printed in full
    assert _redact("postgresql://u:se/cret@127.0.0.1:1/db") == "postgresql://u:***@127.0.0.1:1/db"
    assert _redact("sqlite:///C:/data/a@b.db") == "sqlite:///C:/data/a@b.db"


def test_a_space_files_plain_net_and_knn_space_shape_the_space_and_the_defaults_trial(X):
    """A plain net in a space file (the CLI's only way to fix it) left the width choices of the data's
    auto family (conv1d's 2 and 8 for LSTM hidden sizes); a plain knn_space left the defaults trial
    with knn_weight 1.0 where the method's default there is 0.75 (the trial labelled defaults was not);
    a net that cannot take the data's shape failed every trial instead of being refused before them."""
    S = np.random.RandomState(0).randn(120, 2, 16).astype(np.float32)
    r = tune(S, n_trials=2, params={"epochs": 1}, search_space={"net": "lstm"}, seed=0)
    widths = {t.distributions["width"].choices for t in r.study.trials if "width" in t.distributions}
    assert widths == {tuple(default_space("ganomaly", (2, 16), "lstm")["width"]["choices"])}
    r = tune(X, n_trials=1, params={"epochs": 1}, search_space={"knn_space": "input"}, seed=0)
    assert r.study.trials[0].params["knn_weight"] == GANomaly(knn_space="input")._knn_weight_now("input") == 0.75
    with pytest.raises(InputError, match="search_space\\['net'\\].*lstm"):
        tune(X, n_trials=2, params={"epochs": 1}, search_space={"net": {"type": "categorical", "choices": ["lstm", "mlp"]}})


def test_cli_npz_val_data_with_exclude_is_checked_by_width_naming_exclude(tmp_path):
    """--exclude names CSV / Parquet columns; an NPZ --val-data has none, so --exclude was silently not
    applied to it and rows holding the excluded column failed with "X_val: ... X ..." (names the CLI has
    not). Now: an NPZ holding the training columns after --exclude is taken; another width is refused
    naming the file and --exclude."""
    rng = np.random.RandomState(0)
    tr = pd.DataFrame(rng.randn(120, 3), columns=["a", "b", "c"])
    tr.insert(0, "id", np.arange(120))
    tr.to_csv(tmp_path / "train.csv", index=False)
    Xv, yv = rng.randn(40, 4), (np.arange(40) % 4 == 0).astype(int)
    np.savez(tmp_path / "v4.npz", X=Xv, y=yv)
    np.savez(tmp_path / "v3.npz", X=Xv[:, 1:], y=yv)
    base = ["tune", str(tmp_path / "train.csv"), "--exclude", "id", "--label-column", "y", "--trials", "1", "--epochs", "1",
            "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    r = CliRunner().invoke(app, base + ["--val-data", str(tmp_path / "v4.npz"), "-o", str(tmp_path / "m4")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "v4.npz" in out and "--exclude id" in out and "no column names" in out and "Fix:" in out, r.output
    assert "X_val" not in out and not (tmp_path / "m4").exists()
    r = CliRunner().invoke(app, base + ["--val-data", str(tmp_path / "v3.npz"), "-o", str(tmp_path / "m3")])
    assert r.exit_code == 0, r.output


def test_the_defaults_trial_runs_the_resolved_default_knn_weight(X):
    """knn_weight's default is 'auto' (1.0 in the default 'feature+input' space, 0.75 elsewhere), which
    the numeric range [0, 1] does not hold as a string: the trial labelled "defaults" left it to the
    sampler (0.876 in an audit), so it was not the defaults and the best trial could be worse than them."""
    r = tune(X, n_trials=1, params={"epochs": 1}, refit=False)
    t = r.study.trials[0]
    assert t.user_attrs["ganad_enqueued"] == "defaults" and t.params["knn_weight"] == 1.0
    r = tune(X, n_trials=1, params={"epochs": 1, "knn_space": "code"}, refit=False)
    assert r.study.trials[0].params["knn_weight"] == 0.75


def test_redact_hides_what_sqlalchemy_reads_as_the_password():
    """The storage is SQLAlchemy's: the part it reads as the password is what is hidden."""
    from sqlalchemy.engine import make_url
    from ganad.tune import _redact
    for url in ("postgresql://u:se/cret@127.0.0.1:1/db", "postgresql://u:pw9x@[::1]:5432/db", "postgresql://host:5432/my@db"):
        pw = make_url(url).password
        assert pw and pw not in _redact(url) and "***" in _redact(url)
    assert _redact("postgresql://user@host/db") == "postgresql://user@host/db"


def test_ctrl_c_caught_and_turned_into_another_error_by_optuna_is_an_interruption(csvs, monkeypatch, capsys):
    """Ctrl-C while optuna's tell wrote a finished trial to the SQLite storage came out of its handler
    as "AssertionError: Should not reach." (the KeyboardInterrupt in its __context__), a traceback with
    exit status 1: `ganad` says "interrupted" and exits 130, as for a Ctrl-C elsewhere."""
    from optuna.storages import RDBStorage

    from ganad.cli import main
    orig, calls = RDBStorage.set_trial_state_values, [0]

    def interrupted(self, trial_id, state, values=None):
        if state.is_finished():
            calls[0] += 1
            if calls[0] == 2:
                try:
                    raise KeyboardInterrupt  # what Python's SIGINT handler raises during the write
                except KeyboardInterrupt:
                    raise AssertionError("Should not reach.")  # noqa: B904 (optuna's handler, failing on its own state)
        return orig(self, trial_id, state, values)
    monkeypatch.setattr(RDBStorage, "set_trial_state_values", interrupted)
    monkeypatch.setattr(sys, "argv", ["ganad", "tune", str(csvs / "train.csv"), "-o", str(csvs / "m"), "--trials", "5", "--epochs", "1"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 130
    err = capsys.readouterr()
    assert "interrupted" in err.out + err.err and "Traceback" not in err.out + err.err and "AssertionError" not in err.out + err.err


def test_cli_image_folder_val_data_is_refused_as_a_folder_before_asking_for_a_label_column(tmp_path):
    """--val-data FOLDER without --label-column said 'pass --label-column NAME'; given one, the next run said
    a folder of images holds no label column. The folder is named as the problem at once, with the NPZ fix."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for d in ("train", "val"):
        (tmp_path / d).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / d / f"{i}.png")
    base = ["tune", str(tmp_path / "train"), "-o", str(tmp_path / "m"), "--trials", "1", "--epochs", "1", "--val-data", str(tmp_path / "val")]
    for extra in ([], ["--label-column", "y"]):
        r = CliRunner().invoke(app, base + extra)
        out = " ".join(r.output.split())
        assert r.exit_code != 0 and "folder of images" in out and "np.savez" in out, out
        assert not (tmp_path / "m").exists()
