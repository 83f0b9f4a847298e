"""A folder of image files as data (fit, score, calibrate; ganad.data.readers)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from ganad.cli import app
from ganad.data.readers import file_format, image_folder, iter_chunks, read_array
from ganad.exceptions import DataFileError, InputError

runner = CliRunner()
RNG = np.random.default_rng(0)


def _gray(h=8, w=8):
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _digits_folder(d: Path, n: int, colour: bool = False) -> np.ndarray:
    """n 8x8 digit images (uint8) as PNG files img_000.png, ...; returns them as (n, C, 8, 8)."""
    from sklearn.datasets import load_digits
    imgs = (load_digits().images[:n] * 16).clip(0, 255).astype(np.uint8)
    d.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(imgs):
        Image.fromarray(np.stack([a, 255 - a, a // 2], -1) if colour else a).save(d / f"img_{i:03d}.png")
    return np.stack([a for a in imgs])[:, None] if not colour else np.stack([np.stack([a, 255 - a, a // 2]) for a in imgs])


# ------------------------------------------------------------------ the reader


def test_grayscale_folder_reads_one_channel_in_name_order(tmp_path):
    a, b, c = _gray(), _gray(), _gray()
    Image.fromarray(b).save(tmp_path / "b.png")
    Image.fromarray(a).save(tmp_path / "a.PNG")  # extensions in any case
    Image.fromarray(c).save(tmp_path / "c.bmp")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"junk")  # hidden: skipped, not even opened
    (tmp_path / "sub").mkdir()
    Image.fromarray(_gray()).save(tmp_path / "sub" / "x.png")  # subfolders are not read
    assert file_format(tmp_path) == "images"
    files, other = image_folder(tmp_path)
    assert [f.name for f in files] == ["a.PNG", "b.png", "c.bmp"] and other == ["notes.txt", "sub/"]
    X = read_array(tmp_path)
    assert X.shape == (3, 1, 8, 8) and X.dtype == np.float32
    np.testing.assert_array_equal(X[:, 0], np.stack([a, b, c]))


def test_colour_makes_every_image_rgb_alpha_dropped_palette_looked_up(tmp_path):
    g = _gray()
    rgb = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    pal = Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    Image.fromarray(g).save(tmp_path / "1_gray.png")
    Image.fromarray(rgb).save(tmp_path / "2_rgb.png")
    Image.fromarray(rgba).save(tmp_path / "3_rgba.png")
    pal.save(tmp_path / "4_pal.png")
    X = read_array(tmp_path)
    assert X.shape == (4, 3, 8, 8)
    np.testing.assert_array_equal(X[0], np.stack([g] * 3))  # gray among colour: R = G = B
    np.testing.assert_array_equal(X[1], rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(X[2], rgba[..., :3].transpose(2, 0, 1))  # alpha dropped, not composited
    np.testing.assert_array_equal(X[3], np.asarray(pal.convert("RGB")).transpose(2, 0, 1))


def test_gray_palette_16bit_and_gray_alpha_stay_one_channel(tmp_path):
    g = _gray()
    Image.fromarray(g).convert("P").save(tmp_path / "a_pal_gray.png")  # a palette of grays: grayscale
    v16 = RNG.integers(0, 65536, (8, 8), dtype=np.uint16)
    v16[0, 0] = 65535
    Image.fromarray(v16).save(tmp_path / "b_16bit.png")
    Image.fromarray(np.stack([g, g], -1), mode="LA").save(tmp_path / "c_la.png")
    X = read_array(tmp_path)
    assert X.shape == (3, 1, 8, 8)
    np.testing.assert_array_equal(X[0, 0], g)
    np.testing.assert_array_equal(X[1, 0], v16)  # values as stored: 0..65535
    assert X[1].max() == 65535
    np.testing.assert_array_equal(X[2, 0], g)


def test_chunks_read_the_images_a_chunk_at_a_time(tmp_path, monkeypatch):
    import ganad.data.readers as R
    _digits_folder(tmp_path, 7)
    opened = []
    real = R._image_pixels
    monkeypatch.setattr(R, "_image_pixels", lambda f, colour: opened.append(f.name) or real(f, colour))
    it = iter_chunks(tmp_path, 3)
    first = next(it)
    assert first.shape == (3, 1, 8, 8) and len(opened) == 3  # not every image loaded for the first chunk
    assert [c.shape[0] for c in it] == [3, 1]
    np.testing.assert_array_equal(first, read_array(tmp_path)[:3])


def test_images_of_different_sizes_refused_naming_the_file(tmp_path):
    Image.fromarray(_gray()).save(tmp_path / "a.png")
    Image.fromarray(_gray()).save(tmp_path / "b.png")
    Image.fromarray(_gray(12, 10)).save(tmp_path / "c.png")
    with pytest.raises(InputError) as e:
        read_array(tmp_path)
    msg = str(e.value)
    assert "c.png" in msg and "12x10" in msg and "8x8" in msg and "a.png" in msg and "resize" in msg


def test_corrupt_image_refused_naming_the_file(tmp_path):
    Image.fromarray(_gray()).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"this is not a png")
    with pytest.raises(DataFileError, match="b.png"):
        read_array(tmp_path)
    (tmp_path / "b.png").unlink()
    Image.fromarray(_gray(64, 64)).save(tmp_path / "c.png")
    (tmp_path / "a.png").unlink()
    raw = (tmp_path / "c.png").read_bytes()
    (tmp_path / "c.png").write_bytes(raw[: len(raw) // 2])  # truncated: the header reads, the pixels do not
    with pytest.raises(DataFileError, match="c.png"):
        read_array(tmp_path)


def test_folder_without_images_refused(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataFileError) as e:
        read_array(tmp_path)
    assert "no image file" in str(e.value) and "CSV, Parquet, NPY or NPZ" in str(e.value) and "folder of image files" in str(e.value)


def test_exclude_refused_for_an_image_folder(tmp_path):
    Image.fromarray(_gray()).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="has no column names"):
        read_array(tmp_path, exclude=["a"])


# ------------------------------------------------------------------ the command line


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    X = _digits_folder(d / "train", 24)
    r = runner.invoke(app, ["fit", str(d / "train"), "-o", str(d / "model"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    return d, X, r.output


def test_fit_on_a_folder_reads_images_without_shape_notes(fitted):
    d, X, out = fitted
    assert "images: 1 channel(s) x 8 x 8" in " ".join(out.split())
    assert "note" not in out  # neither the (n, H, W) nor the channels-last note: the folder's layout is known


def test_score_a_folder_names_each_file_and_equals_scoring_the_npy(fitted, tmp_path):
    d, X, _ = fitted
    test = tmp_path / "test"
    Xt = _digits_folder(test, 10)
    (test / "readme.txt").write_text("x")
    r = runner.invoke(app, ["score", str(d / "model"), str(test), "-o", str(tmp_path / "s.csv"), "--maps", str(tmp_path / "m.npy"),
                            "--chunk-rows", "4"])
    assert r.exit_code == 0, r.output
    assert "readme.txt" in r.output  # the entry not read is named
    s = pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns[:3]) == ["file", "index", "score"]
    assert s["file"].tolist() == [f"img_{i:03d}.png" for i in range(10)] and s["index"].tolist() == list(range(10))
    np.save(tmp_path / "t.npy", Xt)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "t.npy"), "-o", str(tmp_path / "s2.csv")])
    assert r.exit_code == 0, r.output
    s2 = pd.read_csv(tmp_path / "s2.csv")
    np.testing.assert_allclose(s["score"], s2["score"], rtol=1e-6)
    assert (s["label"] == s2["label"]).all()
    assert np.load(tmp_path / "m.npy").shape == (10, 1, 8, 8)


def test_score_a_folder_refuses_exclude_id_column_and_colour_for_a_gray_model(fitted, tmp_path):
    d, _, _ = fitted
    test = tmp_path / "test"
    _digits_folder(test, 3)
    out = str(tmp_path / "s.csv")
    r = runner.invoke(app, ["score", str(d / "model"), str(test), "-o", out, "--exclude", "a"])
    assert r.exit_code == 2 and "has no column names" in r.output
    r = runner.invoke(app, ["score", str(d / "model"), str(test), "-o", out, "--id-column", "a"])
    assert r.exit_code == 2 and "'file' column" in " ".join(r.output.split())
    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(test / "z_colour.png")
    r = runner.invoke(app, ["score", str(d / "model"), str(test), "-o", out])
    assert r.exit_code == 2 and "z_colour.png" in r.output and "grayscale" in r.output
    assert not Path(out).exists()


def test_colour_model_scores_gray_images_as_rgb(tmp_path):
    X = _digits_folder(tmp_path / "train", 12, colour=True)
    assert read_array(tmp_path / "train").shape == X.shape == (12, 3, 8, 8)
    r = runner.invoke(app, ["fit", str(tmp_path / "train"), "-o", str(tmp_path / "model"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    _digits_folder(tmp_path / "gray", 3)
    r = runner.invoke(app, ["score", str(tmp_path / "model"), str(tmp_path / "gray"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 3


def test_calibrate_and_fit_errors_on_folders(fitted, tmp_path):
    d, _, _ = fitted
    val = tmp_path / "val"
    _digits_folder(val, 10)
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(val), "-o", str(tmp_path / "cal"), "--threshold", "fpr", "--fpr", "0.1", "-q"])
    assert r.exit_code == 0, r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["fit", str(tmp_path / "empty"), "-o", str(tmp_path / "m"), "--epochs", "1"])
    assert r.exit_code == 2 and "no image file" in r.output
    Image.fromarray(_gray(9, 8)).save(val / "odd.png")
    r = runner.invoke(app, ["fit", str(val), "-o", str(tmp_path / "m"), "--epochs", "1"])
    assert r.exit_code == 2 and "odd.png" in r.output and "9x8" in r.output


def test_calibrate_pairs_a_folders_labels_by_file_name(fitted, tmp_path):
    """`ganad score` of a folder writes a 'file' column and `evaluate` pairs labels by it, but
    `calibrate` paired a labels CSV with that column by position: shuffled rows, another threshold."""
    d, _, _ = fitted
    val = tmp_path / "val"
    _digits_folder(val, 20)
    names = sorted(p.name for p in val.iterdir())
    y = pd.DataFrame({"file": names, "label": [0] * 15 + [1] * 5})
    y.to_csv(tmp_path / "y.csv", index=False)
    y.sample(frac=1.0, random_state=1).to_csv(tmp_path / "y_shuf.csv", index=False)
    got = []
    for lab in ("y.csv", "y_shuf.csv"):
        r = runner.invoke(app, ["calibrate", str(d / "model"), str(val), "--labels", str(tmp_path / lab), "--label-column", "label",
                                "--threshold", "mcc", "-o", str(tmp_path / lab.replace(".csv", "")), "-q"])
        assert r.exit_code == 0, r.output
        import ganad
        got.append(ganad.load(tmp_path / lab.replace(".csv", "")).threshold_)
    assert got[0] == got[1]


# ------------------------------------------------------------------ scoring memory of large images


def test_image_scoring_steps_are_bounded_by_the_image_size_with_the_same_scores():
    """Scoring large images steps through at most ``_image_score_values`` input values at a time
    (a step of score_batch_size=1,024 RGB images of 224 x 224 needed 10 GB of activations); the
    scores are those of one step over the whole batch (float32 summation order aside)."""
    import ganad
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 255, (24, 3, 16, 16)).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(X)
    assert det._image_score_rows() == (1 << 21) // (3 * 16 * 16)
    steps: list[int] = []
    invert = det._invert

    def spy(x):
        steps.append(int(x.shape[0]))
        return invert(x)

    det._invert = spy
    det._image_score_values = 5 * 3 * 16 * 16  # five images a step
    small = det.score_components(X, return_map=True)
    assert steps == [5, 5, 5, 5, 4]
    steps.clear()
    det._image_score_values = 1 << 62
    whole = det.score_components(X, return_map=True)
    assert steps == [24]
    np.testing.assert_allclose(small.scores, whole.scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(small.map, whole.map, rtol=1e-4, atol=1e-6)
    tab = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(rng.normal(size=(40, 6)))
    assert tab._image_score_rows() >= 1 << 30  # tables and series: score_batch_size as before


def test_a_folder_of_subfolders_reads_every_subfolder_by_relative_path(fitted, tmp_path):
    """An MVTec-style test/ holding good/ and crack/ (no image of its own) was refused as a folder
    without images: its subfolders' images are read, ordered and named by their relative path. A folder
    with images of its own still reads only those, naming the subfolder it left out."""
    d, _, _ = fitted
    test = tmp_path / "test"
    good = _digits_folder(test / "good", 4)
    crack = _digits_folder(test / "crack", 3)
    (test / "crack" / "notes.txt").write_text("x")
    (test / ".cache").mkdir()
    Image.fromarray(_gray()).save(test / ".cache" / "hidden.png")  # hidden folder: not read
    files, other = image_folder(test)
    assert [f.relative_to(test).as_posix() for f in files] == [f"crack/img_{i:03d}.png" for i in range(3)] + [f"good/img_{i:03d}.png" for i in range(4)]
    assert other == ["crack/notes.txt"]
    np.testing.assert_array_equal(read_array(test), np.concatenate([crack, good]).astype(np.float32))
    r = runner.invoke(app, ["score", str(d / "model"), str(test), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert s["file"].tolist()[:2] == ["crack/img_000.png", "crack/img_001.png"] and s["file"].tolist()[-1] == "good/img_003.png"
    assert "crack/notes.txt" in r.output
    Image.fromarray(_gray()).save(test / "top.png")  # an image of its own: only that one is read
    files, other = image_folder(test)
    assert [f.name for f in files] == ["top.png"] and "crack/" in other and "good/" in other


def test_tune_help_names_a_folder_of_images_as_data():
    """`ganad tune` reads a folder of images as `fit` does (docs/conventions.md); its --help said
    DATA was only a CSV, Parquet, NPY or NPZ file."""
    import re

    from typer.testing import CliRunner

    from ganad.cli import app
    r = CliRunner().invoke(app, ["tune", "--help"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    text = re.sub(r"[\s│]+", " ", r.output)
    assert "or a folder of image files of one size" in text
