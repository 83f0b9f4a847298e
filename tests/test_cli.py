import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, breast_cancer_split):
    d = tmp_path_factory.mktemp("cli")
    Xtr, Xte, yte = breast_cancer_split
    cols = [f"f{i}" for i in range(Xtr.shape[1])]
    tr = pd.DataFrame(Xtr, columns=cols)
    tr.insert(0, "id", np.arange(len(tr)))
    tr.to_csv(d / "train.csv", index=False)
    te = pd.DataFrame(Xte, columns=cols)
    te.insert(0, "id", np.arange(len(te)))
    te.to_csv(d / "test.csv", index=False)
    te.to_parquet(d / "test.parquet")
    np.save(d / "test.npy", Xte)
    np.savez(d / "test.npz", X=Xte)
    pd.DataFrame({"y": yte}).to_csv(d / "labels.csv", index=False)
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(d / "model"), "--epochs", "15", "--exclude", "id", "-q"])
    assert r.exit_code == 0, r.output
    return d


def test_every_command_help_shows_an_example():
    commands = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"fit", "score", "evaluate", "export", "demo", "calibrate", "info"} <= set(commands)
    for cmd in commands:
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.output and "ganad " + cmd in r.output, cmd


def test_score_formats_agree_and_stream(workdir):
    d = workdir
    outs = {}
    for name, extra in [("test.csv", ["--exclude", "id"]), ("test.parquet", ["--exclude", "id"]), ("test.npy", []), ("test.npz", [])]:
        r = runner.invoke(app, ["score", str(d / "model"), str(d / name), "-o", str(d / f"{name}.scores.csv"), "--chunk-rows", "37", *extra])
        assert r.exit_code == 0, r.output
        outs[name] = pd.read_csv(d / f"{name}.scores.csv")
    base = outs["test.csv"]
    assert list(base.columns) == ["index", "score", "label", "threshold"] and len(base) == len(pd.read_csv(d / "test.csv"))
    for name, df in outs.items():
        # the NPY / NPZ / Parquet files hold the float32 values; the CSV holds their decimal text, read in
        # float64 (docs/scaling.md, "Precision"): its scores differ in float32's last digits
        np.testing.assert_allclose(df["score"], outs["test.npy"]["score"], rtol=1e-6, atol=1e-5 if name == "test.csv" else 0)
    # chunked streaming gives exactly what the library gives on the whole array at once
    det = ganad.load(d / "model")
    np.testing.assert_allclose(outs["test.npy"]["score"], det.decision_function(np.load(d / "test.npy")), rtol=1e-6)
    np.testing.assert_array_equal(outs["test.npy"]["label"], det.predict(np.load(d / "test.npy")))
    # the score and the threshold with every digit of their float64: read back, the label is score > threshold
    # (with 9 digits a score a hair above the threshold printed equal to it beside label 1)
    for df in outs.values():
        np.testing.assert_array_equal(df["label"], (df["score"] > df["threshold"]).astype(int))
    np.testing.assert_array_equal(outs["test.npy"]["score"].to_numpy(), det.decision_function(np.load(d / "test.npy")))
    assert outs["test.npy"]["threshold"].iloc[0] == det.threshold_


def test_score_and_calibrate_name_the_file_and_the_cli_fix_for_an_extra_column(workdir, tmp_path):
    # before: a CSV holding a column left out at fit time (`fit --exclude id`) was refused with the API's fix only
    # ("for a DataFrame: X[detector.feature_names_in_]"), and by calibrate under the name X_val, not the file
    d = workdir
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "test.csv: has column(s) ['id'] not seen at fit time" in out, r.output
    assert "--exclude COL leaves a column out" in out and "--id-column COL" in out, r.output
    assert not (tmp_path / "s.csv").exists()
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "cal"), "-q"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "test.csv: has column(s) ['id'] not seen at fit time" in out and "X_val" not in out, r.output
    assert "--exclude COL leaves a column out of DATA" in out, r.output
    assert not (tmp_path / "cal").exists()
    # columns in another order: the message is the model's, without the hint (no column to leave out)
    te = pd.read_csv(d / "test.csv")
    te[["id", *te.columns[1:][::-1]]].to_csv(tmp_path / "reordered.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "reordered.csv"), "-o", str(tmp_path / "s.csv"), "--exclude", "id"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "another order" in out and "on the command line" not in out, r.output


def test_score_parquet_of_a_shuffled_or_indexed_frame(workdir, tmp_path):
    # before: a Parquet file written from a filtered / shuffled frame (pandas stores its index as a column
    # '__index_level_0__') or from df.set_index('id') was refused as having "rows with more fields than the
    # header" (check the separator); --id-column and --exclude could not take an index column
    d = workdir
    te = pd.read_parquet(d / "test.parquet").sample(frac=1.0, random_state=0)
    te.to_parquet(tmp_path / "shuffled.parquet")
    te.set_index("id").to_parquet(tmp_path / "indexed.parquet")
    det = ganad.load(d / "model")
    want = det.decision_function(te[det.feature_names_in_].to_numpy())
    for name in ("shuffled.parquet", "indexed.parquet"):
        for extra in (["--id-column", "id"], ["--exclude", "id", "--chunk-rows", "37"]):
            out = tmp_path / f"{name}.{extra[0][2:]}.csv"
            r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / name), "-o", str(out), *extra])
            assert r.exit_code == 0, r.output
            s = pd.read_csv(out, dtype={"id": str})
            np.testing.assert_allclose(s["score"], want, rtol=1e-6)
            if extra[0] == "--id-column":
                assert s["id"].tolist() == te["id"].astype(str).tolist()


def test_score_components_and_evaluate(workdir):
    d = workdir
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.npy"), "-o", str(d / "s.csv"), "--components"])
    assert r.exit_code == 0, r.output
    assert {"residual", "feature", "discriminator", "latent_norm"} <= set(pd.read_csv(d / "s.csv").columns)
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((d / "ev" / "metrics.json").read_text())
    assert m["auroc"] > 0.8 and 0 <= m["f1"] <= 1
    for f in ("roc.png", "pr.png", "report.html"):
        assert (d / "ev" / f).stat().st_size > 1000
    assert "auroc" in r.output


def test_evaluate_class_names_with_normal_gives_each_class_its_auroc(tmp_path):
    """--normal: labels that are class names (MIT-BIH's AAMI N, S, V): anomaly = any class but the normal one,
    and metrics.json's per_class holds the normal class against each other class (a researcher needed sklearn
    for it); the labels may be aligned by id; a class the labels do not hold, and --normal with --ranges, refused."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    rs = np.random.RandomState(0)
    cls = np.array(["N"] * 60 + ["S"] * 15 + ["V"] * 25)
    score = np.where(cls == "N", 0.0, np.where(cls == "S", 0.5, 2.0)) + rs.randn(100)
    order = rs.permutation(100)  # the labels file lists the samples in another order, paired by id
    pd.DataFrame({"id": np.arange(100), "index": np.arange(100), "score": score,  # as `ganad score --id-column id` writes
                  "label": (score > 1.0).astype(int)}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"id": order, "aami": cls[order]}).to_csv(tmp_path / "lab.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "lab.csv"), "--label-column", "aami",
                            "--normal", "N", "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["normal_class"] == "N" and set(m["per_class"]) == {"S", "V"}
    assert m["auroc"] == pytest.approx(roc_auc_score(cls != "N", score))
    for c in ("S", "V"):
        sel = (cls == "N") | (cls == c)
        assert m["per_class"][c]["n"] == int((cls == c).sum())
        assert m["per_class"][c]["auroc"] == pytest.approx(roc_auc_score(cls[sel] == c, score[sel]))
        assert m["per_class"][c]["auprc"] == pytest.approx(average_precision_score(cls[sel] == c, score[sel]))
        assert m["per_class"][c]["flagged"] == pytest.approx(np.mean(score[cls == c] > 1.0))
    assert m["per_class"]["V"]["auroc"] > m["per_class"]["S"]["auroc"]
    assert "N against each class" in r.output
    np.save(tmp_path / "lab.npy", cls)  # an array of class names too (in the samples' order)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "lab.npy"), "--normal", "N",
                            "-o", str(tmp_path / "ev2")])
    assert r.exit_code == 0 and json.loads((tmp_path / "ev2" / "metrics.json").read_text())["per_class"] == m["per_class"]
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "lab.csv"), "--label-column", "aami",
                            "--normal", "Normal", "-o", str(tmp_path / "ev3")])
    assert r.exit_code != 0 and "is not a class" in r.output and "'N'" in r.output and not (tmp_path / "ev3" / "metrics.json").exists()
    pd.DataFrame({"start": [1], "end": [2]}).to_csv(tmp_path / "ranges.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "ranges.csv"), "--normal", "N",
                            "-o", str(tmp_path / "ev4")])
    assert r.exit_code != 0 and "--normal" in r.output


def test_evaluate_normal_reads_class_names_from_npz_and_parquet_and_names_an_object_array(tmp_path):
    """--normal read every non-CSV labels file with np.load: an NPZ failed with a traceback ('NpzFile' object has
    no attribute 'reshape'), a Parquet file with numpy's advice to load pickled data; both read as labels without
    --normal. An object array of classes (what np.save(df.aami.to_numpy()) writes) is refused with the way to text."""
    cls = np.array(["N"] * 20 + ["V"] * 10 + ["S"] * 5)
    score = (cls != "N") * 2.0 + np.linspace(0, 1, len(cls))
    pd.DataFrame({"score": score, "threshold": 1.0}).to_csv(tmp_path / "s.csv", index=False)
    np.savez(tmp_path / "lab.npz", cls)
    pd.DataFrame({"aami": cls}).to_parquet(tmp_path / "lab.parquet")
    np.save(tmp_path / "lab.npy", cls)
    ref = None
    for name in ("lab.npy", "lab.npz", "lab.parquet"):
        out = tmp_path / name.replace(".", "_")
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / name), "--normal", "N", "-o", str(out)])
        assert r.exit_code == 0, (name, r.output)
        per_class = json.loads((out / "metrics.json").read_text())["per_class"]
        assert set(per_class) == {"S", "V"} and (ref is None or per_class == ref)
        ref = per_class
    np.save(tmp_path / "obj.npy", cls.astype(object), allow_pickle=True)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "obj.npy"), "--normal", "N",
                            "-o", str(tmp_path / "ev")])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "Python objects" in msg and "dtype=str" in msg and "allow_pickle" not in msg, r.output


def test_evaluate_normal_reads_a_header_less_file_of_class_names(tmp_path):
    """A header-less CSV of 0/1 labels is read whole; one of class names (N, V, ...) lost its first class to
    the header with --normal and was refused as "39 classes for 40 scored samples"."""
    cls = np.array(["N"] * 25 + ["V"] * 10 + ["S"] * 5)
    pd.DataFrame({"score": (cls != "N") * 2.0 + np.linspace(0, 1, 40), "threshold": 1.0}).to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "lab.csv").write_text("\n".join(cls) + "\n")
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "lab.csv"), "--normal", "N",
                            "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["n"] == 40 and m["n_anomalies"] == 15 and m["per_class"]["V"]["n"] == 10


def test_labels_npz_of_several_arrays_names_a_fix_the_labels_options_have(tmp_path):
    """An NPZ labels file of several arrays was told to 'pass --key NAME', an option of fit and score that
    evaluate and calibrate do not have: the fix now says how to store the labels."""
    pd.DataFrame({"index": [0, 1, 2], "score": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "s.csv", index=False)
    np.savez(tmp_path / "two.npz", a=np.array([0, 0, 1]), b=np.array([0, 1, 1]))
    for extra in ([], ["--normal", "0"]):
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "two.npz"), "-o", str(tmp_path / "ev"), *extra])
        assert r.exit_code != 0 and "--key" not in r.output and "np.save('labels.npy', y)" in r.output, r.output
        assert not (tmp_path / "ev" / "metrics.json").exists()


def test_evaluate_rejects_wrong_label_count(workdir):
    d = workdir
    pd.DataFrame({"y": [0, 1]}).to_csv(d / "short.csv", index=False)
    runner.invoke(app, ["score", str(d / "model"), str(d / "test.npy"), "-o", str(d / "s2.csv")])
    r = runner.invoke(app, ["evaluate", str(d / "s2.csv"), "--labels", str(d / "short.csv"), "-o", str(d / "ev2")])
    assert r.exit_code != 0 and "2 labels for" in r.output


def test_demo_runs_end_to_end(tmp_path):
    r = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "--epochs", "3"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert 0 <= m["auroc"] <= 1 and m["n_novel_test"] > 0
    assert (tmp_path / "demo" / "report.html").exists() and (tmp_path / "demo" / "model" / "config.json").exists()
    # the saved model flags what the report counts: its threshold is the report's (it kept fit's before)
    from ganad.demo import digits_novelty_split
    model = ganad.load(tmp_path / "demo" / "model")
    assert model.threshold_ == m["threshold"]
    (_, (Xv, yv), (Xt, yt)) = digits_novelty_split(0, 0)
    s = model.decision_function(Xt)
    assert model.predict(Xt).sum() == (s > m["threshold"]).sum()
    assert np.mean(model.decision_function(Xv[yv == 0]) > m["threshold"]) <= 0.05
    html = (tmp_path / "demo" / "report.html").read_text()
    assert f"The 6 highest-scoring of the 6 examples given ({len(yt)} samples scored)" in html  # it said "of 6 samples"
    assert "What the model chose (ganad info model/):" in html and f"threshold: {round(m['threshold'], 6)} (fpr 0.05" in html


@pytest.mark.parametrize("args, needle, fix", [
    (["--fpr", "0.01"], "--fpr", "--threshold fpr --fpr 0.01"), (["--metric", "f1"], "--metric", "--compose grid --metric f1"),
    (["--beta", "2", "--threshold", "mcc"], "--beta", "--threshold fbeta --beta 2"),
    (["--label-column", "y"], "--label-column", "--labels FILE --label-column y"),
    (["--contamination", "0.2", "--threshold", "fpr"], "--contamination", "--threshold contamination --contamination 0.2"),
])
def test_calibrate_refuses_options_its_rules_would_ignore(workdir, tmp_path, args, needle, fix):
    # before: `--fpr 0.01` without `--threshold fpr` calibrated the contamination threshold (10 % false alarms), without a word
    d = workdir
    labels = ["--labels", str(d / "labels.csv")] if needle == "--beta" else []
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "test.npy"), "-o", str(tmp_path / "cal"), "-q", *labels, *args])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and needle in r.output and "would be ignored" in out, r.output
    # the fix names the rule that reads the option given (it offered `--threshold fpr --fpr 0.01` whatever the option,
    # even to `--threshold fpr --contamination 0.2`)
    assert f"Fix: pass the rule that reads it ({fix})" in out, r.output
    assert not (tmp_path / "cal").exists()


def test_calibrate_then_score_uses_it(workdir, tmp_path):
    d = workdir
    X = np.load(d / "test.npy")
    y = pd.read_csv(d / "labels.csv")["y"].to_numpy()
    rng = np.random.RandomState(0)
    val = rng.permutation(len(X))[: len(X) // 2]
    np.save(tmp_path / "val.npy", X[val])
    np.save(tmp_path / "val_y.npy", y[val])
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val.npy"), "--labels", str(tmp_path / "val_y.npy"),
                            "--compose", "grid", "--threshold", "mcc", "-o", str(tmp_path / "cal")])
    assert r.exit_code == 0, r.output
    det = ganad.load(tmp_path / "cal")
    assert det.composer_.to_dict()["kind"] == "grid"
    r = runner.invoke(app, ["score", str(tmp_path / "cal"), str(d / "test.npy"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    np.testing.assert_allclose(s["score"], det.decision_function(X), rtol=1e-6)
    np.testing.assert_array_equal(s["label"], (det.decision_function(X) > det.threshold_).astype(int))
    # a threshold from labels without labels is refused with a fix
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val.npy"), "--threshold", "mcc", "-o", str(tmp_path / "c2")])
    assert r.exit_code != 0 and not (tmp_path / "c2").exists()
    # -o inside the model's own folder is refused (it left a folder there that the model's next save refused)
    before = sorted(p.name for p in (d / "model").iterdir())
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val.npy"), "-o", str(d / "model" / "sub")])
    assert r.exit_code == 2 and "is inside MODEL_DIR" in " ".join(r.output.split()), r.output
    assert sorted(p.name for p in (d / "model").iterdir()) == before


@pytest.fixture(scope="module")
def id_workdir(tmp_path_factory):
    """A tiny model, validation rows with an id column, and labels keyed by that id in reverse order."""
    d = tmp_path_factory.mktemp("cli_ids")
    rng = np.random.RandomState(0)
    cols = list("abcde")
    tr = pd.DataFrame(rng.randn(200, 5), columns=cols)
    tr.insert(0, "id", [f"t{i}" for i in range(200)])
    tr.to_csv(d / "train.csv", index=False)
    V = rng.randn(120, 5)
    y = np.zeros(120, dtype=int)
    y[:30] = 1
    V[:30] += 4.0
    va = pd.DataFrame(V, columns=cols)
    va.insert(0, "id", [f"v{i}" for i in range(120)])
    va.to_csv(d / "val.csv", index=False)
    pd.DataFrame({"y": y}).to_csv(d / "y.csv", index=False)
    pd.DataFrame({"id": va["id"][::-1], "y": y[::-1]}).to_csv(d / "y_by_id.csv", index=False)
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(d / "model"), "--epochs", "1", "--exclude", "id", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "val.csv"), "-o", str(d / "s.csv"), "--id-column", "id"])
    assert r.exit_code == 0, r.output
    return d, y


def test_evaluate_aligns_labels_by_the_scores_id_column(id_workdir):
    """Labels keyed by the id column `score --id-column` wrote, in another order, are matched by id, not by row."""
    from sklearn.metrics import roc_auc_score
    d, y = id_workdir
    s = pd.read_csv(d / "s.csv")["score"]
    for i, extra in enumerate(([], ["--label-column", "y"])):
        r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "y_by_id.csv"), *extra, "-o", str(d / f"ev_id{i}")])
        assert r.exit_code == 0, r.output
        m = json.loads((d / f"ev_id{i}" / "metrics.json").read_text())
        assert m["auroc"] == pytest.approx(roc_auc_score(y, s))
    pd.DataFrame({"id": [f"v{i}" for i in range(119)], "y": y[:119]}).to_csv(d / "y_short_id.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "y_short_id.csv"), "-o", str(d / "ev_bad")])
    assert r.exit_code == 2 and "error:" in r.output and "Fix:" in r.output and "Traceback" not in r.output
    assert not (d / "ev_bad").exists()


def test_calibrate_fpr_prints_the_rate_achieved_and_warns_when_ties_leave_it_under_half(id_workdir, tmp_path):
    """Discrete rows (20 of them, each 10 times) tie their scores in runs of 10 of 200: --fpr 0.02 flags
    none. The table shows the target, the rate achieved, the run tied at the threshold and the next rate;
    a warning line names them and the --fpr that reaches that next rate."""
    d, _ = id_workdir
    V = pd.read_csv(d / "val.csv").iloc[30:50]
    pd.DataFrame(np.repeat(V.to_numpy(), 10, axis=0), columns=V.columns).to_csv(tmp_path / "rep.csv", index=False)
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "rep.csv"), "--exclude", "id", "--threshold", "fpr",
                            "--fpr", "0.02", "-o", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "warning: threshold='fpr': flags 0 of the 200 validation samples" in out and "10 of them tie" in out
    assert "pass fpr=0.05 (CLI: --fpr 0.05)" in out
    assert "achieved_fpr │ 0.0000" in out and "tied_at_threshold │ 10" in out and "next_fpr │ 0.0500" in out
    cal = ganad.load(tmp_path / "m").calibration_
    assert (cal["fpr"], cal["achieved_fpr"], cal["tied_at_threshold"], cal["next_fpr"]) == (0.02, 0.0, 10, 0.05)


def test_labels_with_ids_the_samples_lack_are_not_paired_by_position(id_workdir, tmp_path):
    """Scored without --id-column, labels keyed by id in another order were paired by row position with
    --label-column (AUROC 0.48 for a 0.92 model, exit 0): refused, naming --id-column. calibrate, whose
    data has no id column, refuses them the same way."""
    d, y = id_workdir
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "val.csv"), "-o", str(tmp_path / "noid.csv"), "--exclude", "id"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "noid.csv"), "--labels", str(d / "y_by_id.csv"), "--label-column", "y",
                            "-o", str(tmp_path / "ev")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "has an id column 'id', but the samples carry no 'id'" in out and "--id-column id" in out
    assert not (tmp_path / "ev").exists()
    r = runner.invoke(app, ["evaluate", str(tmp_path / "noid.csv"), "--labels", str(d / "y.csv"), "-o", str(tmp_path / "ev2")])
    assert r.exit_code == 0, r.output  # the label column alone: by position, as documented
    pd.read_csv(d / "val.csv").drop(columns=["id"]).to_csv(tmp_path / "val_noid.csv", index=False)
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val_noid.csv"), "--labels", str(d / "y_by_id.csv"),
                            "--label-column", "y", "--threshold", "f1", "-o", str(tmp_path / "cal")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "has an id column 'id'" in out and not (tmp_path / "cal").exists()


def test_labels_matched_by_id_may_carry_other_id_columns(id_workdir, tmp_path):
    """Labels matched by the scores' id column were refused when the file had a second id-like column
    (patient_id) once the check against positional pairing came in: they are paired by id, as before."""
    from sklearn.metrics import roc_auc_score
    d, y = id_workdir
    lab = pd.read_csv(d / "y_by_id.csv")
    lab.insert(1, "patient_id", [f"p{i % 7}" for i in range(len(lab))])
    lab.to_csv(tmp_path / "y2.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(tmp_path / "y2.csv"), "--label-column", "y", "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["auroc"] == pytest.approx(roc_auc_score(y, pd.read_csv(d / "s.csv")["score"]))


def test_labels_by_id_keep_ids_that_pandas_reads_as_missing(id_workdir, tmp_path):
    """Ids such as 'NA' (Namibia), 'null' or an empty cell are ids: the data's and the scores file's are read as
    written, and the labels file's must be too (they were NaN there: "repeated ids" or "missing", refused)."""
    from sklearn.metrics import roc_auc_score
    d, y = id_workdir
    va = pd.read_csv(d / "val.csv")
    va["id"] = ["NA", "null", ""] + [f"v{i}" for i in range(3, len(va))]
    va.to_csv(tmp_path / "val.csv", index=False)
    pd.DataFrame({"id": va["id"][::-1], "y": y[::-1]}).to_csv(tmp_path / "y_by_id.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "val.csv"), "-o", str(tmp_path / "s.csv"), "--id-column", "id"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y_by_id.csv"), "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["auroc"] == pytest.approx(roc_auc_score(y, pd.read_csv(tmp_path / "s.csv")["score"]))
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val.csv"), "--exclude", "id", "--labels",
                            str(tmp_path / "y_by_id.csv"), "--label-column", "y", "--threshold", "mcc", "-o", str(tmp_path / "m"), "-q"])
    assert r.exit_code == 0, r.output
    det = ganad.load(d / "model").calibrate(va.drop(columns="id"), y, threshold="mcc")
    assert ganad.load(tmp_path / "m").threshold_ == pytest.approx(det.threshold_)


def test_calibrate_aligns_labels_by_an_excluded_id_column(id_workdir, tmp_path):
    d, y = id_workdir
    X = pd.read_csv(d / "val.csv").drop(columns="id")
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "val.csv"), "--exclude", "id", "--labels", str(d / "y_by_id.csv"),
                            "--label-column", "y", "--compose", "grid", "--threshold", "mcc", "-o", str(tmp_path / "m"), "-q"])
    assert r.exit_code == 0, r.output
    det = ganad.load(d / "model").calibrate(X, y, compose="grid", threshold="mcc")
    assert ganad.load(tmp_path / "m").threshold_ == pytest.approx(det.threshold_)


def test_calibrate_does_not_take_an_excluded_label_column_for_the_id(id_workdir, tmp_path):
    """Data holding its label column too, left out with --exclude y --exclude id: the labels are matched by the id,
    whatever the order of --exclude. Before: the first excluded column the labels file also held was taken as the
    id: with y first, labels listed in another order were paired by row position, silently (--label-column y),
    or refused as 'repeated ids' (a labels file of the column y alone)."""
    d, y = id_workdir
    va = pd.read_csv(d / "val.csv")
    va.assign(y=y).to_csv(tmp_path / "val_y.csv", index=False)
    det = ganad.load(d / "model").calibrate(va.drop(columns="id"), y, compose="grid", threshold="mcc")
    for labels, extra in (("y_by_id.csv", ["--label-column", "y"]), ("y_by_id.csv", []), ("y.csv", [])):
        for exclude in (["--exclude", "y", "--exclude", "id"], ["--exclude", "id", "--exclude", "y"]):
            out = tmp_path / f"m_{labels}_{len(extra)}_{exclude[1]}"
            r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val_y.csv"), *exclude, "--labels", str(d / labels),
                                    *extra, "--compose", "grid", "--threshold", "mcc", "-o", str(out), "-q"])
            assert r.exit_code == 0, (labels, extra, exclude, r.output)
            assert ganad.load(out).threshold_ == pytest.approx(det.threshold_), (labels, extra, exclude)


def test_calibrate_reads_a_semicolon_decimal_comma_csv(id_workdir, tmp_path):
    """calibrate takes --sep / --decimal as fit and score do: the same validation rows written with ';'
    and decimal commas calibrate the model as the ',' file does (labels matched by the excluded id)."""
    d, y = id_workdir
    pd.read_csv(d / "val.csv").to_csv(tmp_path / "val_eu.csv", index=False, sep=";", decimal=",")
    args = ["--exclude", "id", "--labels", str(d / "y_by_id.csv"), "--label-column", "y", "--compose", "grid",
            "--threshold", "mcc", "-q"]
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "val.csv"), *args, "-o", str(tmp_path / "m_comma")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val_eu.csv"), *args, "--sep", ";", "--decimal", ",",
                            "-o", str(tmp_path / "m_eu")])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m_eu").threshold_ == pytest.approx(ganad.load(tmp_path / "m_comma").threshold_)
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val_eu.csv"), *args, "-o", str(tmp_path / "m_bad")])
    assert r.exit_code == 2 and "--sep" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m_bad").exists()


def test_labels_csv_takes_the_separator_of_sep(id_workdir, tmp_path):
    """A ';'-separated labels CSV: `evaluate --sep ';'`, and calibrate's --sep (which DATA takes too), read it.
    Before: labels were always read with ',' (evaluate had no --sep): one column 'id;y', refused or misread."""
    from sklearn.metrics import roc_auc_score
    d, y = id_workdir
    pd.read_csv(d / "y_by_id.csv").to_csv(tmp_path / "y_semi.csv", index=False, sep=";")
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(tmp_path / "y_semi.csv"), "--label-column", "y",
                            "--sep", ";", "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["auroc"] == pytest.approx(roc_auc_score(y, pd.read_csv(d / "s.csv")["score"]))  # aligned by the id column
    # without --sep: refused with the fix, nothing written
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(tmp_path / "y_semi.csv"), "-o", str(tmp_path / "ev2")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "y_semi.csv" in out and "--sep ';'" in out and not (tmp_path / "ev2").exists(), r.output
    # --sep with an NPY labels file would be ignored: refused
    np.save(tmp_path / "y.npy", y)
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(tmp_path / "y.npy"), "--sep", ";", "-o", str(tmp_path / "ev3")])
    assert r.exit_code == 2 and "--sep" in r.output and not (tmp_path / "ev3").exists()
    # calibrate: ';' data and ';' labels with --sep ';' calibrate as the ',' files do (labels matched by the excluded id)
    pd.read_csv(d / "val.csv").to_csv(tmp_path / "val_semi.csv", index=False, sep=";")
    args = ["--exclude", "id", "--label-column", "y", "--threshold", "mcc", "-q"]
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "val.csv"), "--labels", str(d / "y_by_id.csv"), *args,
                            "-o", str(tmp_path / "m_comma")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(tmp_path / "val_semi.csv"), "--labels", str(tmp_path / "y_semi.csv"),
                            *args, "--sep", ";", "-o", str(tmp_path / "m_semi")])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m_semi").threshold_ == pytest.approx(ganad.load(tmp_path / "m_comma").threshold_)


def test_calibrate_contamination_sets_the_threshold_as_at_fit(id_workdir, tmp_path):
    """--contamination: the expected anomaly fraction, as for fit, here of the validation data (the (1 - c)
    quantile of its scores); the API takes it as calibrate(contamination=...). Before: no such option."""
    d, _ = id_workdir
    X = pd.read_csv(d / "val.csv").drop(columns="id")
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "val.csv"), "--exclude", "id", "--contamination", "0.25",
                            "-o", str(tmp_path / "m"), "-q"])
    assert r.exit_code == 0, r.output
    cal = ganad.load(tmp_path / "m")
    det = ganad.load(d / "model").calibrate(X, contamination=0.25)
    assert cal.threshold_ == pytest.approx(det.threshold_) and cal.calibration_["contamination"] == 0.25
    assert 0.2 <= (cal.decision_function(X) > cal.threshold_).mean() <= 0.3
    assert ganad.load(d / "model").calibrate(X).threshold_ > cal.threshold_  # the model's contamination (0.1) otherwise: higher
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "val.csv"), "--exclude", "id", "--contamination", "0.7",
                            "-o", str(tmp_path / "m2"), "-q"])
    assert r.exit_code == 2 and "--contamination" in r.output and "Fix:" in r.output and not (tmp_path / "m2").exists()
    with pytest.raises(ganad.exceptions.InputError, match="contamination"):
        ganad.load(d / "model").calibrate(X, threshold="fpr", contamination=0.2)


def test_evaluate_refuses_labels_with_ranges(id_workdir):
    d, _ = id_workdir
    pd.DataFrame({"start": [0], "end": [3]}).to_csv(d / "ranges.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--ranges", str(d / "ranges.csv"), "--labels", str(d / "y.csv"),
                            "-o", str(d / "ev_rl")])
    assert r.exit_code == 2 and "--ranges" in r.output and "Fix:" in r.output
    assert not (d / "ev_rl").exists()


def test_fit_says_how_it_read_the_samples_and_flags_square_3d_arrays(tmp_path):
    """A (n, 16, 16) NPY is read as series windows (16 channels x 16 steps), which is what a user who
    saved images without a channel axis does not mean: the summary says how the samples were read and
    a note gives the fix; images with their channel axis get no note."""
    rng = np.random.RandomState(0)
    np.save(tmp_path / "sq.npy", rng.rand(64, 16, 16).astype(np.float32))
    np.save(tmp_path / "im.npy", rng.rand(64, 1, 16, 16).astype(np.float32))
    r = runner.invoke(app, ["fit", str(tmp_path / "sq.npy"), "-o", str(tmp_path / "m1"), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "series windows: 16 channel(s) x 16 steps" in out and "conv1d nets" in out
    assert "read as series windows" in out and "X[:, None]" in out
    r = runner.invoke(app, ["fit", str(tmp_path / "im.npy"), "-o", str(tmp_path / "m2"), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "images: 1 channel(s) x 16 x 16" in out and "dcgan nets" in out and "read as series windows" not in out
    assert "channels last" not in out


def test_fit_flags_channels_last_images(tmp_path):
    """(n, 16, 16, 3) RGB images saved channels last are read as 16-channel 16 x 3 images: a note
    says so and gives the transpose."""
    np.save(tmp_path / "nhwc.npy", np.random.RandomState(0).rand(64, 16, 16, 3).astype(np.float32))
    r = runner.invoke(app, ["fit", str(tmp_path / "nhwc.npy"), "-o", str(tmp_path / "m"), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "images: 16 channel(s) x 16 x 3" in out and "channel(s) last" in out and "X.transpose(0, 3, 1, 2)" in out


def test_score_writes_anomaly_maps_as_one_npy(tmp_path):
    """--maps: every sample's map (the library's score_components(return_map=True).map) in one NPY
    array, written chunk by chunk; refused for the wrong suffix, an existing file and series models."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X.reshape(-1, 1, 8, 8) / 16).astype(np.float32)
    np.save(tmp_path / "tr.npy", X[y != 3][:300])
    te = X[:37].copy()
    te[:, :, 2:5, 2:5] = 1.0
    np.save(tmp_path / "te.npy", te)
    r = runner.invoke(app, ["fit", str(tmp_path / "tr.npy"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "te.npy"), "-o", str(tmp_path / "s.csv"),
                            "--maps", str(tmp_path / "maps.npy"), "--chunk-rows", "10"])
    assert r.exit_code == 0, r.output
    maps = np.load(tmp_path / "maps.npy")
    ref = ganad.load(tmp_path / "m").score_components(te, return_map=True).map
    assert maps.shape == (37, 1, 8, 8) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, ref, atol=1e-5)
    assert len(pd.read_csv(tmp_path / "s.csv")) == 37
    for extra, msg in ((["--maps", str(tmp_path / "maps.csv")], "NPY"), (["--maps", str(tmp_path / "maps.npy")], "already")):
        r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "te.npy"), "-o", str(tmp_path / "s2.csv"), *extra])
        assert r.exit_code == 2 and msg in r.output and not (tmp_path / "s2.csv").exists()
    t = np.arange(600)
    pd.DataFrame({"a": np.sin(t / 5), "b": np.cos(t / 7)}).to_csv(tmp_path / "series.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "series.csv"), "--window", "16", "-o", str(tmp_path / "sm"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "sm"), str(tmp_path / "series.csv"), "-o", str(tmp_path / "s3.csv"),
                            "--maps", str(tmp_path / "m3.npy")])
    assert r.exit_code == 2 and "--components" in r.output and not (tmp_path / "m3.npy").exists()


def test_fit_batch_size_takes_auto_or_a_number(tmp_path):
    X = np.random.RandomState(0).randn(200, 4)
    pd.DataFrame(X, columns=list("abcd")).to_csv(tmp_path / "t.csv", index=False)
    for value, expect in (("auto", "auto"), ("64", 64)):
        r = runner.invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / f"m{value}"), "--epochs", "1", "-q",
                                "--method", "bigan", "--batch-size", value])
        assert r.exit_code == 0, r.output
        assert ganad.load(tmp_path / f"m{value}").get_params()["batch_size"] == expect
    r = runner.invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / "mx"), "--epochs", "1", "--batch-size", "big"])
    assert r.exit_code == 2 and "--batch-size" in r.output and not (tmp_path / "mx").exists()


def _evaluate_files(d, nan_at=None):
    s = np.r_[np.linspace(0, 1, 10), 3.0, 4.0]
    if nan_at is not None:
        s[nan_at] = np.nan
    pd.DataFrame({"index": np.arange(12), "score": s}).to_csv(d / "s.csv", index=False)
    pd.DataFrame({"y": [0] * 10 + [1, 1]}).to_csv(d / "y.csv", index=False)
    pd.DataFrame({"start": [10], "end": [11]}).to_csv(d / "ranges.csv", index=False)


def test_evaluate_writes_metrics_json_atomically(tmp_path, monkeypatch):
    """metrics.json went through a plain write_text: a kill mid-write left half a file (labels and --ranges paths)."""
    import ganad.files
    _evaluate_files(tmp_path)
    atomic, real = [], ganad.files.atomic_path

    def spy(path):
        atomic.append(str(path))
        return real(path)

    monkeypatch.setattr(ganad.files, "atomic_path", spy)
    for args, out in ((["--labels", str(tmp_path / "y.csv"), "--label-column", "y"], "ev"), (["--ranges", str(tmp_path / "ranges.csv")], "ev_r")):
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), *args, "-o", str(tmp_path / out)])
        assert r.exit_code == 0, r.output
        # written atomically into the set's temporary folder beside the output, which then replaces it whole
        assert any(Path(a).name == "metrics.json" and Path(a).parent.name.startswith(f".{out}.new-") for a in atomic), (out, atomic)
        assert json.loads((tmp_path / out / "metrics.json").read_text())


def test_evaluate_names_the_scores_file_holding_nan(tmp_path):
    """A NaN score was reported as "scores: contains NaN ...", not as the file (and its row)."""
    _evaluate_files(tmp_path, nan_at=3)
    for args, out in ((["--labels", str(tmp_path / "y.csv"), "--label-column", "y"], "ev"), (["--ranges", str(tmp_path / "ranges.csv")], "ev_r")):
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), *args, "-o", str(tmp_path / out)])
        msg = " ".join(r.output.split())
        assert r.exit_code == 2 and f"{tmp_path / 's.csv'}: has 1 NaN" in msg and "row 3" in msg and "Fix:" in msg, r.output
        assert not (tmp_path / out / "metrics.json").exists()


def test_score_leaves_no_empty_folder_when_the_data_is_refused(workdir, tmp_path):
    """The scores file's folder was made before the data was read, so a refused file left an empty
    folder behind; --maps in a folder that did not exist yet crashed with FileNotFoundError."""
    d = workdir
    te = pd.read_csv(d / "test.csv")
    te["f3"] = te["f3"].astype(object)
    te.loc[len(te) - 1, "f3"] = "oops"  # refused while the file is read, after the header was checked
    te.to_csv(tmp_path / "bad.csv", index=False)
    for extra in ([], ["--maps", str(tmp_path / "mapsdir" / "deep" / "m.npy")]):
        r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "bad.csv"), "-o", str(tmp_path / "new" / "sub" / "s.csv"),
                                "--exclude", "id", *extra])
        assert r.exit_code == 2 and "bad.csv" in r.output and "Fix" in r.output, r.output
        assert not (tmp_path / "new").exists() and not (tmp_path / "mapsdir").exists()
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "new" / "s.csv"), "--exclude", "id",
                            "--maps", str(tmp_path / "mapsdir" / "m.npy")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "new" / "s.csv").is_file() and np.load(tmp_path / "mapsdir" / "m.npy").shape[0] == len(te)


def test_evaluate_one_class_reports_what_it_defines(tmp_path):
    """`ganad evaluate` refused labels of one class ("ranking metrics need both..."): a user checking
    the false-alarm rate on a batch of known-normal data (or the catch rate on known anomalies) got
    nothing. It now reports the false-positive rate (all normal) or the recall (all anomalous) at the
    scores file's threshold, leaves the two-class metrics empty, and draws no ROC / PR curves."""
    s = np.r_[np.linspace(0, 1, 18), 3.0, 4.0]
    pd.DataFrame({"index": np.arange(20), "score": s, "threshold": 0.9}).to_csv(tmp_path / "s.csv", index=False)
    flagged = int((s > 0.9).sum())  # 0.94.., 1.0, 3, 4
    for value, key in ((0, "false_positive_rate"), (1, "recall")):
        pd.DataFrame({"y": [value] * 20}).to_csv(tmp_path / "y.csv", index=False)
        out = tmp_path / f"ev{value}"
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y.csv"), "-o", str(out)])
        assert r.exit_code == 0, r.output
        m = json.loads((out / "metrics.json").read_text())
        assert m[key] == pytest.approx(flagged / 20) and m["n_flagged"] == flagged
        other = "recall" if key == "false_positive_rate" else "false_positive_rate"
        assert m["auroc"] is None and m["auprc"] is None and m["f1"] is None and m["mcc"] is None and m[other] is None
        assert not (out / "roc.png").exists() and not (out / "pr.png").exists()
        assert "only one class" in (out / "report.html").read_text()
        assert "left out" in " ".join(r.output.split())


def test_evaluate_one_class_overwrite_removes_stale_curves(tmp_path):
    """With --overwrite, the ROC / PR curves of an earlier two-class evaluation in the same folder
    would have stayed beside metrics that no longer match them."""
    _evaluate_files(tmp_path)
    out = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y.csv"), "-o", str(out)])
    assert r.exit_code == 0 and (out / "roc.png").exists(), r.output
    pd.DataFrame({"y": [0] * 12}).to_csv(tmp_path / "y0.csv", index=False)
    pd.DataFrame({"index": np.arange(12), "score": np.linspace(0, 1, 12), "threshold": 0.5}).to_csv(tmp_path / "s0.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s0.csv"), "--labels", str(tmp_path / "y0.csv"), "-o", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (out / "roc.png").exists() and not (out / "pr.png").exists()
    assert json.loads((out / "metrics.json").read_text())["false_positive_rate"] == pytest.approx(6 / 12)


def test_evaluate_one_class_without_a_threshold_is_refused(tmp_path):
    """One class and no threshold (nor a 'label' column): nothing is defined; a clear error, no files."""
    pd.DataFrame({"index": np.arange(12), "score": np.linspace(0, 1, 12)}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"y": [0] * 12}).to_csv(tmp_path / "y.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y.csv"), "-o", str(tmp_path / "ev")])
    msg = " ".join(r.output.split())
    assert r.exit_code != 0 and "every label is 0" in msg and "Fix:" in msg, r.output
    assert not (tmp_path / "ev").exists()


def test_evaluation_false_positive_rate_and_one_class_api():
    from ganad.metrics import auroc, evaluate
    from ganad.exceptions import InputError
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.8, 0.3, 0.9, 0.4])
    ev = evaluate(y, s, threshold=0.5)
    assert ev.false_positive_rate == pytest.approx(1 / 4) and ev.recall == pytest.approx(1 / 2) and ev.n_flagged == 2
    assert ev.precision == pytest.approx(1 / 2) and 0 < ev.auroc < 1
    assert evaluate(y, s).false_positive_rate is None  # no threshold: no decisions
    ev0 = evaluate(np.zeros(4), s[:4], threshold=0.5)
    assert ev0.auroc is None and ev0.false_positive_rate == pytest.approx(1 / 4) and ev0.recall is None
    with pytest.raises(InputError, match="only one class"):
        auroc(np.zeros(4), s[:4])
    with pytest.raises(InputError, match="empty"):
        evaluate(np.zeros(0), np.zeros(0))


def test_score_refuses_an_output_that_is_the_data(workdir, tmp_path):
    """`ganad score model/ data.csv -o data.csv --overwrite` replaced the data with its scores (and
    --maps naming the data likewise): refused before scoring, the data untouched."""
    d = workdir
    data = tmp_path / "test.csv"
    data.write_bytes((d / "test.csv").read_bytes())
    before = data.read_bytes()
    for args in (["-o", str(data)], ["-o", str(tmp_path / "s.csv"), "--maps", str(tmp_path / "x.npy")]):
        if "--maps" in args:  # a .npy data file named by --maps
            np.save(tmp_path / "x.npy", np.load(d / "test.npy"))
            r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "x.npy"), *args, "--overwrite"])
        else:
            r = runner.invoke(app, ["score", str(d / "model"), str(data), *args, "--overwrite", "--exclude", "id"])
        assert r.exit_code == 2 and "is the data being scored" in " ".join(r.output.split()), r.output
    assert data.read_bytes() == before and not (tmp_path / "s.csv").exists()


def test_benchmark_and_demo_refuse_before_running(tmp_path):
    """Found by an audit: a results file blocked by a folder was found after the whole run (results.json
    already written, the error naming a temporary file); --seed -1 gave numpy's message; --n-seeds -4
    ran one seed without a word."""
    (tmp_path / "o" / "results.md").mkdir(parents=True)
    base = ["benchmark", "adbench", "--data", str(tmp_path), "--methods", "none", "--peers", "iforest"]
    for extra, want in ((["-o", str(tmp_path / "o")], "holds folder(s) ['results.md']"),
                        (["-o", str(tmp_path / "p"), "--seed", "-1"], "--seed: is -1"),
                        (["-o", str(tmp_path / "p"), "--n-seeds", "-4"], "--n-seeds: is -4")):
        r = runner.invoke(app, [*base, *extra])
        msg = " ".join(r.output.split())
        assert r.exit_code == 2 and want in msg and "Fix:" in msg, (extra, r.output)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["results.md"] and not (tmp_path / "p").exists()
    for extra, want in ((["--seed", "-1"], "--seed: is -1"), (["--digit", "10"], "--digit: is 10"), (["--epochs", "0"], "--epochs: is 0")):
        r = runner.invoke(app, ["demo", "-o", str(tmp_path / "d"), *extra])
        assert r.exit_code == 2 and want in " ".join(r.output.split()), (extra, r.output)


def test_tune_names_a_missing_label_column_and_hides_a_storage_password(tmp_path):
    rng = np.random.RandomState(0)
    pd.DataFrame(rng.randn(200, 2), columns=["a", "b"]).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0), "y": [0, 1] * 10}).to_csv(tmp_path / "v.csv", index=False)
    r = runner.invoke(app, ["tune", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), "--val-data", str(tmp_path / "v.csv"),
                            "--label-column", "nope", "--trials", "1", "--epochs", "1"])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "has no column 'nope'" in msg and "--label-column" in msg and "exclude" not in msg, r.output
    r = runner.invoke(app, ["tune", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), "--trials", "1", "--epochs", "1",
                            "--storage", "postgresql://u:secret@localhost/db"])
    assert r.exit_code == 2 and "secret" not in r.output and "***" in r.output, r.output


def test_benchmark_errors_name_its_options():
    """`ganad benchmark mitbih --calibration bogus` said "calibration: is 'bogus'" (the API's name)."""
    from ganad.cli import _in_benchmark_terms
    from ganad.exceptions import GanadError
    r = runner.invoke(app, ["benchmark", "mitbih", "--data", "/nonexistent", "--calibration", "bogus", "--methods", "none",
                            "--peers", "iforest", "-o", "/tmp/ganad-never-written"])
    assert r.exit_code == 2 and "--calibration: is 'bogus'" in " ".join(r.output.split()), r.output
    assert str(_in_benchmark_terms(GanadError("g/s (ganomaly): stride: is 0. Fix: x"))) == "g/s (ganomaly): --stride: is 0. Fix: x"
    assert str(_in_benchmark_terms(GanadError("max_stride: is 0"))) == "max_stride: is 0"


def test_benchmark_refuses_options_of_another_protocol():
    """`mnist --datasets foo --calibration mcc`, `nab --max-train 10`, `mitbih --peer-rhythm views`
    without --rhythm ran with those options ignored without a word."""
    for args, want in ((["mnist", "--datasets", "foo", "--calibration", "mcc"], "--datasets, --calibration: do not apply to the mnist"),
                       (["nab", "--max-train", "10"], "--max-train: do not apply to the nab"),
                       (["adbench", "--window", "32"], "--window: do not apply to the adbench"),
                       (["mitbih", "--peer-rhythm", "views"], "--peer-rhythm (without --rhythm)")):
        r = runner.invoke(app, ["benchmark", *args, "--data", "/nonexistent", "-o", "/tmp/ganad-never-written"])
        msg = " ".join(r.output.split())
        assert r.exit_code == 2 and want in msg and "Fix: drop" in msg, (args, r.output)


def test_score_refuses_a_folder_output_and_options_that_do_not_apply(workdir, tmp_path):
    """`-o newout/` wrote a file named newout (click's Path drops the slash); --events on a table model
    was ignored without a word; --maps on a multi-view model was refused for a false reason."""
    model, data = str(workdir / "model"), str(workdir / "test.csv")
    r = runner.invoke(app, ["score", model, data, "-o", str(tmp_path / "newout") + "/", "--exclude", "id"])
    assert r.exit_code == 2 and "names a folder, but scores are one CSV file" in " ".join(r.output.split())
    assert not (tmp_path / "newout").exists()
    r = runner.invoke(app, ["score", model, data, "-o", str(tmp_path / "fine.csv"), "--exclude", "id"])  # the host's argv is not read
    assert r.exit_code == 0 and (tmp_path / "fine.csv").exists(), r.output
    (tmp_path / "adir").mkdir()
    r = runner.invoke(app, ["score", model, data, "-o", str(tmp_path / "adir"), "--exclude", "id"])
    assert r.exit_code == 2 and "is a folder, but scores are one CSV file" in " ".join(r.output.split())
    r = runner.invoke(app, ["score", model, data, "-o", str(tmp_path / "s.csv"), "--exclude", "id", "--events", str(tmp_path / "e.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--events" in out and "applies to series models" in out
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "e.csv").exists()
    r = runner.invoke(app, ["score", model, "--view", f"a={data}", "--view", f"b={data}", "-o", str(tmp_path / "s.csv"),
                            "--maps", str(tmp_path / "m.npy")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "is not taken with a multi-view model" in out and "different shapes" not in out


def test_evaluate_names_a_scores_file_without_rows(tmp_path):
    """A header-only scores file was reported as a labels (or ranges) problem: "has 2 labels for 0 samples"."""
    (tmp_path / "h.csv").write_text("index,score,label,threshold\n")
    (tmp_path / "l.csv").write_text("y\n1\n0\n")
    (tmp_path / "r.csv").write_text("start,end\n1,2\n")
    for opt in (["--labels", str(tmp_path / "l.csv")], ["--ranges", str(tmp_path / "r.csv")]):
        r = runner.invoke(app, ["evaluate", str(tmp_path / "h.csv"), *opt, "-o", str(tmp_path / "e")])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and "h.csv: has a header but no data rows" in out and not (tmp_path / "e").exists()


def test_feature_count_errors_name_the_file_in_calibrate_and_views(tmp_path):
    """calibrate said "X_val has 5 features" and a multi-view score "view 'b': X has 3 features": the file unnamed."""
    from ganad import GANomaly, MultiViewDetector
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4).astype(np.float32)
    GANomaly(epochs=1, random_state=0).fit(X).save(tmp_path / "m")
    MultiViewDetector({"a": GANomaly(epochs=1, random_state=0), "b": GANomaly(epochs=1, random_state=0)}).fit({"a": X, "b": X}).save(tmp_path / "mv")
    np.save(tmp_path / "five.npy", rng.randn(30, 5))
    np.save(tmp_path / "four.npy", rng.randn(30, 4))
    np.save(tmp_path / "three.npy", rng.randn(30, 3))
    r = runner.invoke(app, ["calibrate", str(tmp_path / "m"), str(tmp_path / "five.npy"), "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and "five.npy has 5 features" in " ".join(r.output.split()) and not (tmp_path / "c").exists()
    r = runner.invoke(app, ["score", str(tmp_path / "mv"), "--view", f"a={tmp_path / 'four.npy'}", "--view", f"b={tmp_path / 'three.npy'}",
                            "-o", str(tmp_path / "s.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "view 'b' (" in out and "three.npy) has 3 features" in out
    assert not (tmp_path / "s.csv").exists()


def test_fit_without_window_on_a_time_series_points_to_window(tmp_path):
    """A series CSV fitted without --window was refused for its text time column with the fix
    '--exclude COLUMN', which trains a per-row model on the series: the fix names --window now."""
    t = pd.date_range("2024-01-01", periods=120, freq="min")
    pd.DataFrame({"time": t, "a": np.sin(np.arange(120) / 5)}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"when": t, "a": np.sin(np.arange(120) / 5)}).to_csv(tmp_path / "w.csv", index=False)
    pd.DataFrame({"site": ["x"] * 120, "a": np.sin(np.arange(120) / 5)}).to_csv(tmp_path / "t.csv", index=False)
    for f, want in (("s.csv", "pass --window W (e.g. --window 64;"), ("w.csv", "pass --window W --time-column when"),
                    ("t.csv", "--exclude COLUMN (for example an id")):
        r = runner.invoke(app, ["fit", str(tmp_path / f), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and want in out and not (tmp_path / "m").exists(), out


def test_fit_notes_constant_and_label_columns_and_score_names_the_excludes(tmp_path):
    """A label column left in at fit (0 in every normal row) passed without a word, and scoring later asked
    for that label; columns left out at fit had to be guessed at score time."""
    rng = np.random.RandomState(0)
    df = pd.DataFrame(rng.randn(120, 3), columns=list("abc"))
    df.insert(0, "id", range(120))
    df["site"], df["y"] = "x", 0
    df.to_csv(tmp_path / "tr.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "tr.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q",
                            "--exclude", "id", "--exclude", "site"])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "column(s) ['y'] hold one value in every training row" in out
    assert "if they hold labels, fit again with --exclude y" in out
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "tr.csv"), "-o", str(tmp_path / "s.csv"), "--id-column", "id"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "here: --exclude site)" in out
    wide = df.copy()
    for c in ("x0", "x1", "x2", "x3", "x4", "my col"):  # more than the five the message lists, one needing quotes
        wide[c] = 1.0
    wide.to_csv(tmp_path / "wide.csv", index=False)
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "wide.csv"), "-o", str(tmp_path / "s.csv"), "--id-column", "id"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "here: --exclude site --exclude x0 --exclude x1 --exclude x2 --exclude x3 --exclude x4 --exclude 'my col')" in out
    df.drop(columns=["y"]).to_csv(tmp_path / "te.csv", index=False)
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "te.csv"), "-o", str(tmp_path / "s.csv"), "--id-column", "id",
                            "--exclude", "site"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "lacks training column(s) ['y']" in out and "fit again without it (CLI: --exclude y)" in out


def test_evaluate_scores_no_axis_can_show_leave_nothing_written(tmp_path):
    """Scores from -1e308 to 1e308: metrics.json, roc.png and pr.png were written, then the report's
    histogram failed ("cannot convert float NaN to integer") and the folder stayed half-written."""
    pd.DataFrame({"index": range(20), "score": [1e308] * 10 + [-1e308] * 10}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"label": [0] * 10 + [1] * 10}).to_csv(tmp_path / "y.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y.csv"), "-o", str(tmp_path / "ev")])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "overflows" in msg and "Fix:" in msg, r.output
    assert not (tmp_path / "ev").exists()


def test_training_progress_goes_to_stderr_one_line_per_epoch_when_not_a_terminal(tmp_path, capsys):
    """The training bar was drawn on stdout (rich's global console): `ganad fit > log` got a stale bar
    line in the program's output and no progress on the terminal. Now stderr only; where stderr is not
    a terminal (a log, CI) one plain line per epoch."""
    X = np.random.RandomState(0).randn(300, 4)
    pd.DataFrame(X, columns=list("abcd")).to_csv(tmp_path / "t.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), "--epochs", "3", "--set", "width=8"])
    assert r.exit_code == 0, r.output
    assert "epoch" not in r.stdout and "d_loss" not in r.stdout, r.stdout
    assert [ln.split(" epoch ")[1].split()[0] for ln in r.stderr.splitlines() if " epoch " in ln] == ["1/3", "2/3", "3/3"], r.stderr
    ganad.GANomaly(epochs=2, width=8, verbose=True, random_state=0).fit(X)  # the Python API alike
    cap = capsys.readouterr()
    assert "d_loss" not in cap.out and "epoch 2/2" in cap.err, (cap.out, cap.err)


def test_stderr_is_not_wrapped_when_it_is_not_a_terminal(workdir, tmp_path):
    """rich cut stderr at 80 columns in a log or a pipe, splitting paths and messages mid-word."""
    out = tmp_path / ("a_really_long_directory_name_for_output_files_" * 2) / "scores_with_a_long_name.csv"
    r = runner.invoke(app, ["score", str(workdir / "model"), str(workdir / "test.csv"), "-o", str(out), "--exclude", "id"])
    assert r.exit_code == 0, r.output
    assert any(str(out) in ln for ln in r.stderr.splitlines()), r.stderr


def test_ctrl_c_says_what_it_left(monkeypatch, capsys):
    """Ctrl-C exited 130 with nothing said (typer's exit for KeyboardInterrupt)."""
    import ganad.cli as C

    def interrupted():
        raise SystemExit(130)

    monkeypatch.setattr(C, "app", interrupted)
    with pytest.raises(SystemExit) as e:
        C.main()
    assert e.value.code == 130 and "interrupted" in capsys.readouterr().err


def test_a_class_beyond_a_clipped_axis_draws_without_a_numpy_warning():
    """Rare anomalies far above the normal scores fall outside the clipped histogram axis: ax.hist
    with density=True divided 0 by 0 (a RuntimeWarning on evaluate's stderr)."""
    import warnings

    from ganad.report import score_distribution_figure
    rng = np.random.RandomState(0)
    s = np.r_[rng.randn(20000), np.full(10, 1e6)]
    y = np.r_[np.zeros(20000), np.ones(10)].astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 0 / 0 RuntimeWarning would raise here
        fig = score_distribution_figure(s, y)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["normal (0)  n=20000", "anomaly (1)  n=10"]
    assert ax.get_xlim()[1] < 1e6 and "101 above not drawn" in ax.get_title()  # the anomalies lie beyond the clipped axis


def test_the_runtime_probe_leaves_the_callers_torch_random_state_alone():
    import torch

    from ganad.runtime import dense
    dense._STATE.clear()
    torch.manual_seed(123)
    ref = torch.rand(3)
    torch.manual_seed(123)
    dense.available()
    assert torch.equal(torch.rand(3), ref)


@pytest.mark.filterwarnings("ignore:install .ipywidgets.")  # rich's own note, outside a real notebook
def test_a_notebook_gets_the_live_training_bar_not_a_line_per_epoch(monkeypatch):
    """rich's consoles are not terminals in Jupyter: training took the plain-lines path there (a
    500-epoch fit printed 500 lines); a notebook draws rich's live bar."""
    import rich.console

    from ganad.training.loop import _Progress
    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: True)
    p = _Progress(10, True)
    try:
        assert p.bar is not None and p.lines is None
    finally:
        p.close()
    monkeypatch.setattr(rich.console, "_is_jupyter", lambda: False)
    p = _Progress(10, True)  # a pipe (pytest's capture): plain lines
    assert p.bar is None and p.lines is not None
    p.close()


def test_score_and_calibrate_on_another_separator_suggest_sep_not_exclude(tmp_path):
    """A ';'-separated CSV scored with a model fitted on a ','-separated one: the header reads as one
    column 'a;b;c;d', and the fix was "--exclude 'a;b;c;d'", which leaves no column at all; `ganad fit`
    on that file already said --sep ';'. Score and calibrate say --sep now (a tab too)."""
    df = pd.DataFrame(np.random.RandomState(0).randn(120, 4), columns=list("abcd"))
    df.to_csv(tmp_path / "tr.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "tr.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    df.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    df.to_csv(tmp_path / "tab.csv", index=False, sep="\t")
    for name, flag in (("semi.csv", ";"), ("tab.csv", "\\t")):
        r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / name), "-o", str(tmp_path / "s.csv")])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and f"separated by '{flag}', not ',': pass --sep '{flag}')" in out and "--exclude 'a" not in out, out
        r = runner.invoke(app, ["calibrate", str(tmp_path / "m"), str(tmp_path / name), "-o", str(tmp_path / "cal")])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and f"pass --sep '{flag}'" in out and "--exclude 'a" not in out, out
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "cal").exists()
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "semi.csv"), "-o", str(tmp_path / "s.csv"), "--sep", ";"])
    assert r.exit_code == 0, r.output
    # a ','-file with an extra column named like 'x;y': its fix is --exclude, in calibrate as in score (review)
    df.assign(**{"x;y": 1.0}).to_csv(tmp_path / "extra.csv", index=False)
    for cmd in ("score", "calibrate"):
        r = runner.invoke(app, [cmd, str(tmp_path / "m"), str(tmp_path / "extra.csv"), "-o", str(tmp_path / f"e_{cmd}")])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and "--exclude 'x;y'" in out and "--sep" not in out, (cmd, out)


def test_score_with_maps_replaces_the_pair_together(tmp_path, monkeypatch):
    """`ganad score --maps` renamed the new maps into place before the scores file was complete: a
    failure or Ctrl-C then left new maps beside the earlier run's scores. Both are now written whole
    (fsynced) before either is renamed."""
    import ganad.files
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    ganad.FAnoGAN(epochs=1, random_state=0).fit(X).save(tmp_path / "m")
    args = ["score", str(tmp_path / "m"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.csv"), "--maps", str(tmp_path / "maps.npy")]
    assert runner.invoke(app, args).exit_code == 0
    before = {f: (tmp_path / f).read_bytes() for f in ("s.csv", "maps.npy")}
    real = ganad.files.fsync_path

    def interrupted(p):  # Ctrl-C while the scores file is made durable
        if Path(p).name.startswith(".s.csv."):
            raise KeyboardInterrupt
        return real(p)
    monkeypatch.setattr(ganad.files, "fsync_path", interrupted)
    np.save(tmp_path / "x.npy", X[:40] + 1.0)
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code != 0
    assert {f: (tmp_path / f).read_bytes() for f in ("s.csv", "maps.npy")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "maps.npy", "s.csv", "x.npy"]


def test_demo_interrupted_leaves_the_earlier_demo_whole(tmp_path, monkeypatch):
    """`ganad demo -o DIR` over an earlier demo, interrupted after metrics.json: the folder mixed the new
    model and metrics with the earlier report and plots, while the message said nothing was left
    half-written. The demo's files now replace the earlier ones as one set."""
    import ganad.report
    from ganad.demo import run_demo
    out = tmp_path / "demo"
    run_demo(out, digit=0, method="fanogan", epochs=1, log=lambda *a: None)
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = ganad.report.save_png

    def ctrl_c_at_pr(fig, path, **kw):
        if Path(path).name == "pr.png":
            raise KeyboardInterrupt
        return real(fig, path, **kw)
    monkeypatch.setattr(ganad.report, "save_png", ctrl_c_at_pr)
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, digit=3, method="fanogan", epochs=1, log=lambda *a: None)
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_fit_without_method_trains_the_default_method(tmp_path):
    """``ganad fit`` without --method: AnoGAN (the default chosen on validation data) for tables, GANomaly in
    series mode (chosen on NAB validation groups); the message names the method trained."""
    import ganad
    from ganad.cli import DEFAULT_METHOD, DEFAULT_SERIES_METHOD
    assert (DEFAULT_METHOD, DEFAULT_SERIES_METHOD) == ("anogan", "ganomaly")
    X = np.random.RandomState(0).randn(120, 4)
    np.savetxt(tmp_path / "t.csv", X, delimiter=",", header="a,b,c,d", comments="")
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert "AnoGAN" in r.output and type(ganad.load(tmp_path / "m")).__name__ == "AnoGAN"
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / "s"), "--window", "16", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    sd = ganad.load(tmp_path / "s")
    assert type(sd.detector_).__name__ == "GANomaly"
