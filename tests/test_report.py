"""Plots and the self-contained HTML report (ganad.report)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.figure import Figure

from ganad.exceptions import InputError
from ganad.report import (
    examples_figure,
    fig_to_base64_png,
    image_map_figure,
    pr_figure,
    roc_figure,
    roc_pr_figure,
    sample_kind,
    save_png,
    score_distribution_figure,
    series_map_figure,
    training_curves_figure,
    vector_map_figure,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --------------------------------------------------------------------------- synthetic data


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def scored(rng):
    n_norm, n_anom = 300, 40
    scores = np.concatenate([rng.normal(0.0, 1.0, n_norm), rng.normal(2.5, 1.0, n_anom)])
    labels = np.concatenate([np.zeros(n_norm, int), np.ones(n_anom, int)])
    return scores, labels


@pytest.fixture
def history():
    e = np.arange(1, 21)
    return {"loss_d": (1.4 / e**0.3).tolist(), "loss_g": (0.7 + 0.3 * np.sin(e / 3)).tolist(),
            "val_auroc": (0.5 + 0.45 * (1 - np.exp(-e / 5))).tolist()}


def _series_sample(rng, channels=2, length=180):
    t = np.linspace(0, 4 * np.pi, length)
    x = np.stack([np.sin(t + c) for c in range(channels)]) + 0.05 * rng.normal(size=(channels, length))
    rec = np.stack([np.sin(t + c) for c in range(channels)])
    x[0, 100:125] += 1.5  # the anomaly
    amap = np.abs(x - rec)
    return {"x": x, "reconstruction": rec, "map": amap, "score": 7.5, "label": 1, "title": "window 17"}


def _image_sample(rng):
    x = rng.uniform(0, 0.3, size=(1, 28, 28))
    x[0, 10:16, 12:20] = 1.0
    rec = np.clip(x + rng.normal(0, 0.02, x.shape), 0, 1)
    rec[0, 10:16, 12:20] = 0.1
    return {"x": x, "reconstruction": rec, "map": np.abs(x - rec)[0], "score": 5.0, "label": 1, "title": "image 3"}


def _vector_sample(rng, n_features=30):
    x = rng.normal(size=n_features)
    amap = np.abs(rng.normal(size=n_features)) * 0.2
    amap[[3, 7]] = [2.0, 1.4]
    return {"x": x, "map": amap, "score": 3.0, "label": 0, "title": "flow 42",
            "feature_names": [f"f{i}" for i in range(n_features)]}


@pytest.fixture
def examples(rng):
    return [_vector_sample(rng), _series_sample(rng), _image_sample(rng)]


# --------------------------------------------------------------------------- helpers


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((tag, k, v or ""))
            if tag == "img" and k == "src":
                self.imgs.append(v or "")


def _check_png(data: bytes) -> tuple[int, int]:
    """Walk the PNG chunks, checking every CRC; return (width, height)."""
    assert data[:8] == PNG_SIGNATURE
    pos, chunks, width, height = 8, [], 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length:pos + 12 + length], "big")
        assert zlib.crc32(ctype + body) == crc, f"bad CRC in {ctype!r} chunk"
        if ctype == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        chunks.append(ctype)
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    assert width > 0 and height > 0
    return width, height


def _n_axes(fig: Figure) -> int:
    """Axes of a figure; ``Figure.axes`` includes those inside subfigures."""
    return len(fig.axes)


# --------------------------------------------------------------------------- plots


def test_roc_pr_figures(scored):
    scores, labels = scored
    fig = roc_pr_figure(labels, scores, threshold=1.5)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    legend_text = " ".join(t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())
    assert "AUROC" in legend_text and "AUPRC" in legend_text and "τ = 1.5" in legend_text
    assert len(roc_figure(labels, scores).axes) == 1
    assert len(pr_figure(labels, scores, threshold=99.0).axes) == 1  # a τ above every score still draws


def test_roc_needs_both_classes(scored):
    scores, _ = scored
    with pytest.raises(InputError, match="only one class"):
        roc_pr_figure(np.zeros(len(scores)), scores)


def test_score_distribution_binary_and_string_classes(scored, rng):
    scores, labels = scored
    fig = score_distribution_figure(scores, labels, threshold=1.5)
    assert len(fig.axes) == 1
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("normal (0)") for t in texts) and any(t.startswith("anomaly (1)") for t in texts)
    aami = rng.choice(list("NSVFQ"), size=len(scores))
    texts = [t.get_text() for t in score_distribution_figure(scores, aami).axes[0].get_legend().get_texts()]
    assert [t.split()[0] for t in texts] == ["N", "S", "V", "F", "Q"]  # AAMI order, not alphabetical
    assert len(score_distribution_figure(scores).axes) == 1


def test_score_axis_keeps_long_tailed_scores_readable(rng):
    from ganad.report.plots import score_axis
    # positive scores over more than two decades: a log axis
    lognormal = np.exp(rng.standard_normal(500) * 2.0)
    assert score_axis(lognormal)["scale"] == "log"
    fig = score_distribution_figure(lognormal, threshold=float(np.quantile(lognormal, 0.9)))
    assert fig.axes[0].get_xscale() == "log"
    # a few huge scores among signed ones: the range clipped to the 0.5-99.5 percentiles, the rest counted
    signed = np.r_[rng.standard_normal(995), [1e3, 2e3, 5e3, 1e4, -1e3]]
    ax = score_axis(signed, threshold=1.0)
    assert ax["scale"] == "linear" and ax["hi"] < 100 and ax["above"] >= 4 and ax["below"] >= 1
    fig = score_distribution_figure(signed, threshold=1.0)
    title = fig.axes[0].get_title()
    assert "clipped" in title and f"{ax['above']} above" in title
    assert fig.axes[0].get_xlim()[1] < 200  # not squeezed into one bin by the 1e4 outlier
    # the threshold always stays in the drawn range
    assert score_axis(signed, threshold=500.0)["hi"] >= 500.0
    # ordinary scores: the full range, nothing clipped
    normal = rng.standard_normal(500)
    assert score_axis(normal) == {"scale": "linear", "lo": normal.min(), "hi": normal.max(), "below": 0, "above": 0}
    with pytest.raises(InputError, match="x_scale"):
        score_axis(normal, x_scale="log")


def test_report_has_one_metrics_table(tmp_path, scored, history, examples):
    scores, labels = scored
    from ganad.metrics import evaluate
    given = evaluate(labels, scores, threshold=1.5).to_dict()
    text = _report(tmp_path, scored, history, examples, metrics={**given, "fit seconds": 12.5}).read_text(encoding="utf-8")
    section = text[text.index('id="metrics"'):text.index('id="curves"')]
    assert section.count("<table") == 1 and "Given" not in section and "(given)" not in section
    assert "fit seconds" in section and "precision" in section
    # without a threshold the computed precision is blank: the given value fills it, in the same table
    text = _report(tmp_path, scored, history, examples, threshold=None, metrics={"precision": 0.25}).read_text(encoding="utf-8")
    section = text[text.index('id="metrics"'):text.index('id="curves"')]
    assert section.count("<table") == 1 and "0.25" in section
    # a given value that disagrees with the computed one is shown beside it, marked
    text = _report(tmp_path, scored, history, examples, metrics={"auroc": 0.123}).read_text(encoding="utf-8")
    assert "auroc (given)" in text


def test_training_curves(history):
    assert len(training_curves_figure(history).axes) == 2  # losses | other values
    assert len(training_curves_figure({"loss": [3.0, 2.0, float("nan"), 1.0]}).axes) == 1
    with pytest.raises(InputError):
        training_curves_figure({})


def test_series_map_figure(rng):
    s = _series_sample(rng, channels=2)
    fig = series_map_figure(s["x"], s["reconstruction"], s["map"], title="beat")
    assert len(fig.axes) == 3  # two channels + map strip
    shaded = [p for p in fig.axes[0].patches]
    assert shaded, "the anomalous segment of channel 0 should be shaded"
    beat = np.sin(np.linspace(0, 6, 250))
    assert len(series_map_figure(beat).axes) == 1  # (L,) beat, no map
    assert len(series_map_figure(beat, beat * 0.9, np.abs(beat) ** 2).axes) == 2
    many = rng.normal(size=(12, 64))
    assert len(series_map_figure(many, amap=np.abs(many), max_channels=4).axes) == 5
    with pytest.raises(InputError, match="map"):
        series_map_figure(beat, amap=np.ones(10))


def test_image_map_figure(rng):
    s = _image_sample(rng)
    assert len(image_map_figure(s["x"]).axes) == 1
    assert len(image_map_figure(s["x"], s["reconstruction"]).axes) == 2
    assert len(image_map_figure(s["x"], s["reconstruction"], s["map"]).axes) == 4  # + overlay + colour bar
    rgb = rng.uniform(size=(3, 16, 16))
    assert len(image_map_figure(rgb, amap=rng.uniform(size=(4, 4))).axes) == 3  # coarse map is stretched


def test_vector_map_figure(rng):
    s = _vector_sample(rng)
    fig = vector_map_figure(s["x"], s["map"], feature_names=s["feature_names"], top=10)
    assert len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 10 and labels[-1].startswith("f3 = ")  # largest contribution on top
    with pytest.raises(InputError, match="feature_names"):
        vector_map_figure(s["x"], s["map"], feature_names=["a"])


def test_examples_figure_dispatch(examples):
    assert [sample_kind(e) for e in examples] == ["vector", "series", "image"]
    assert sample_kind({"x": np.zeros(50), "kind": "series"}) == "series"
    fig = examples_figure(examples)
    assert _n_axes(fig) == 1 + 3 + 4
    # sorted by score: series (7.5), image (5.0), vector (3.0)
    assert [sub._suptitle.get_text().split(" · ")[0] for sub in fig.subfigs] == ["window 17", "image 3", "flow 42"]
    assert len(examples_figure(examples, max_samples=1).subfigs) == 1


def test_png_helpers(tmp_path, scored):
    scores, labels = scored
    p = save_png(roc_figure(labels, scores, threshold=1.0), tmp_path / "sub" / "roc.png")
    assert p.exists() and _check_png(p.read_bytes())[0] > 100
    assert oct(p.stat().st_mode & 0o777) == oct(0o644)
    assert not [f for f in p.parent.iterdir() if f.name != "roc.png"]  # no temp files left
    b64 = fig_to_base64_png(pr_figure(labels, scores))
    _check_png(base64.b64decode(b64, validate=True))


def test_plots_do_not_touch_pyplot(scored):
    scores, labels = scored
    before = "matplotlib.pyplot" in sys.modules
    fig_to_base64_png(roc_pr_figure(labels, scores))
    if not before:
        assert "matplotlib.pyplot" not in sys.modules


# --------------------------------------------------------------------------- HTML report


def _report(tmp_path, scored, history, examples, **kw):
    scores, labels = scored
    args = dict(title="Test <report> & co", scores=scores, labels=labels, threshold=1.5, history=history,
                examples=examples, metrics={"fit seconds": 12.5},
                tables={"benchmark": [{"method": "AnoGAN", "auroc": 0.91}, {"method": "<b>f-AnoGAN</b>", "auroc": 0.95}]},
                notes=["Trained on normal beats only.", "<script>alert(1)</script>"])
    args.update(kw)
    return write_report(tmp_path / "report.html", **args)


def test_report_is_self_contained(tmp_path, scored, history, examples):
    path = _report(tmp_path, scored, history, examples)
    assert path == tmp_path / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)

    # no external resource of any kind
    for tag, attr, value in parser.attrs:
        if attr in ("src", "href", "srcset", "poster", "data", "action", "xlink:href"):
            assert not re.match(r"\s*(https?:)?//", value, re.I), f"<{tag} {attr}={value[:60]!r}> points outside the file"
            assert not value.lower().startswith(("http:", "https:", "file:")), value[:60]
    assert "link" not in parser.tags
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", text, re.I)
    assert "@import" not in text and "url(" not in text
    assert all(not (t == "script" and a == "src") for t, a, _ in parser.attrs)

    # every image is an embedded, valid PNG: curves, distribution, training, 3 examples
    assert len(parser.imgs) == 6
    for src in parser.imgs:
        assert src.startswith("data:image/png;base64,")
        _check_png(base64.b64decode(src.split(",", 1)[1], validate=True))

    # content: metrics from ganad.metrics.evaluate, sections, escaping, footer
    for needle in ("auroc", "auprc", "mcc", "fit seconds", "Training curves", "Examples", "benchmark", "ganad"):
        assert needle in text
    assert "Test &lt;report&gt; &amp; co" in text
    assert "&lt;b&gt;f-AnoGAN&lt;/b&gt;" in text and "<b>f-AnoGAN</b>" not in text
    assert "<script>alert(1)</script>" not in text
    assert re.search(r"Generated by ganad [^<]+ on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)


def test_report_minimal_and_classes(tmp_path, rng):
    scores = rng.normal(size=200)
    p = write_report(tmp_path / "a" / "r.html", title="scores only", scores=scores)
    parser = _Collector()
    parser.feed(p.read_text())
    assert len(parser.imgs) == 1  # distribution only
    aami = rng.choice(list("NSVFQ"), size=200)
    p = write_report(tmp_path / "b.html", title="classes", scores=scores, classes=aami, threshold=1.0,
                     labels=(aami != "N").astype(int), tables={"df-like": {"beats": 200}})
    text = p.read_text()
    assert "flagged fraction" in text and "<td>V</td>" in text


def test_report_single_class_labels_degrade_gracefully(tmp_path, rng):
    p = write_report(tmp_path / "r.html", title="all normal", scores=rng.normal(size=50), labels=np.zeros(50, int))
    assert "only one class" in p.read_text()


def test_report_refuses_missing_classes(tmp_path, rng):
    # a class column with gaps (NaN, pandas' NA): each NaN was a class of its own with no score, and the
    # per-class table crashed with numpy's "zero-size array" ValueError (a string column: IndexError)
    pd = pytest.importorskip("pandas")
    scores = rng.normal(size=6)
    for classes in (np.array([0, 1, np.nan, 0, 1, 0]), pd.Series(["N", "V", None, "N", "V", "N"], dtype="string"),
                    pd.Series(["N", "V", np.nan, "N", "V", "N"]).astype("category")):
        with pytest.raises(InputError, match=r"classes: holds 1 missing class label\(s\).*position 2"):
            write_report(tmp_path / "r.html", title="t", scores=scores, classes=classes)
        with pytest.raises(InputError, match="missing class label"):
            score_distribution_figure(scores, classes)
    assert not (tmp_path / "r.html").exists()
    p = write_report(tmp_path / "r.html", title="t", scores=scores, classes=["N", "V", None, "N", "V", "N"])  # None is a class
    assert "<td>V</td>" in p.read_text() and "<td>—</td>" in p.read_text()


def test_report_pandas_table(tmp_path, rng):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"method": ["a", "b"], "auroc": [0.9, 0.8]})
    text = write_report(tmp_path / "r.html", title="t", scores=rng.normal(size=10), tables={"df": df}).read_text()
    assert "<th>method</th>" in text and "0.9" in text


@pytest.mark.parametrize("bad", ["nan_scores", "bad_example"])
def test_report_failure_leaves_no_partial_file(tmp_path, scored, history, examples, bad):
    scores, labels = scored
    target = tmp_path / "report.html"
    target.write_text("previous report")
    if bad == "nan_scores":
        scores = scores.copy()
        scores[5] = np.nan
        kw = {"scores": scores}
    else:  # fails late, after several figures were rendered
        broken = dict(examples[1], map=np.ones(7))
        kw = {"examples": examples[:1] + [broken]}
    ex = kw.pop("examples", examples)
    with pytest.raises(InputError):
        _report(tmp_path, scored, history, ex, **kw)
    assert target.read_text() == "previous report"  # untouched
    assert sorted(os.listdir(tmp_path)) == ["report.html"]  # no temp file left behind
    target.unlink()
    with pytest.raises(InputError):
        _report(tmp_path, scored, history, ex, **kw)
    assert not target.exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); "
                                             "the browser rendering check needs it")
def test_report_renders_in_headless_chromium(tmp_path, scored, history, examples):
    path = _report(tmp_path, scored, history, examples)
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", path.resolve().as_uri()]
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body[^>]*>", proc.stdout)
    assert body, f"no <body> in the dumped DOM; stderr: {proc.stderr[-2000:]}"
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(0))
    total = re.search(r'data-images-total="(\d+)"', body.group(0))
    assert loaded and total, f"the load script did not run: {body.group(0)}"
    assert int(total.group(1)) == 6
    assert int(loaded.group(1)) == int(total.group(1)) > 0


def test_report_to_a_folder_is_refused_naming_it(tmp_path, rng):
    """write_report(folder): a raw IsADirectoryError from the final rename, after the whole render."""
    with pytest.raises(InputError, match=rf"^path {re.escape(str(tmp_path))}: is a folder, not a file\. Fix: .*report\.html"):
        write_report(tmp_path, title="x", scores=rng.normal(size=20))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scores", [[0.9905882352941175, 0.9905882352941177], [3.0, 3.0, 3.0], [1e12, 1e12 + 1e-4]])
def test_score_distribution_of_scores_equal_up_to_rounding(scores):
    """Two seeds' AUROC equal but for the last bit (the benchmark report plots them): numpy could not
    split the range and the report raised "Too many bins for data range"."""
    fig = score_distribution_figure(np.asarray(scores), [0] * (len(scores) - 1) + [1])
    assert len(fig.axes) == 1
