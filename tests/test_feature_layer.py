"""feature_layer='auto': GANomaly's features from D's second-to-last block (its only block where it has one),
the last block for every other method; explicit indices keep their meaning (benchmarks/RESULTS.md, thirty-fifth
session)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganad
from ganad.exceptions import InputError

pytestmark = pytest.mark.usefixtures("one_thread")
X = np.random.RandomState(0).randn(300, 6).astype(np.float32)


def test_ganomaly_reads_the_second_to_last_block_by_default():
    assert ganad.GANomaly().get_params()["feature_layer"] == "auto"
    det = ganad.GANomaly(epochs=1, random_state=0).fit(X)
    D = det.nets_["D"]
    assert len(D.blocks) == 2 and D.feature_layer == 0
    # the features the default score reads are that block's output: as wide as the first hidden layer
    scaled = torch.from_numpy(det.scaler_.transform(X[:4]).astype(np.float32))
    assert det._knn_feature(scaled).shape[1] == det._width()
    same = ganad.GANomaly(epochs=1, random_state=0, feature_layer=-2).fit(X)
    np.testing.assert_allclose(same.decision_function(X), det.decision_function(X), rtol=1e-6)
    last = ganad.GANomaly(epochs=1, random_state=0, feature_layer=-1).fit(X)
    assert last.nets_["D"].feature_layer == 1
    assert not np.allclose(last.decision_function(X), det.decision_function(X))


def test_auto_falls_back_to_the_only_block_and_means_the_last_for_other_methods():
    img = np.random.RandomState(1).rand(200, 1, 8, 8).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0).fit(img)  # an 8 x 8 DCGAN discriminator has one block
    assert len(det.nets_["D"].blocks) == 1 and det.nets_["D"].feature_layer == 0
    with pytest.raises(InputError, match="feature_layer: -2 is out of range"):  # an explicit index is not clamped
        ganad.GANomaly(epochs=1, random_state=0, feature_layer=-2).fit(img)
    for cls in (ganad.AnoGAN, ganad.FAnoGAN, ganad.VAEGAN):
        assert cls().get_params()["feature_layer"] == -1
        d = cls(epochs=1, random_state=0, feature_layer="auto").fit(X)
        assert d.nets_["D"].feature_layer == len(d.nets_["D"].blocks) - 1
    with pytest.raises(InputError, match="feature_layer"):
        ganad.GANomaly(feature_layer="second").fit(X)
    with pytest.raises(InputError, match="BiGAN"):
        ganad.BiGAN(feature_layer="auto").fit(X)


def test_auto_saves_loads_and_an_equivalent_index_is_no_structure_change(tmp_path):
    det = ganad.GANomaly(epochs=1, random_state=0).fit(X)
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.feature_layer == "auto" and back.nets_["D"].feature_layer == 0
    np.testing.assert_allclose(back.decision_function(X), det.decision_function(X), rtol=1e-6)
    back.set_params(feature_layer=0)  # the block 'auto' built: the same model
    back.save(tmp_path / "m2")
    back.set_params(feature_layer=-1)  # another block: refused, as any structure change after fit
    with pytest.raises(InputError, match="feature_layer is -1, but the fitted model was built with feature_layer='auto'"):
        back.save(tmp_path / "m3")


def test_series_keep_the_last_block():
    x = np.sin(np.arange(1200) / 9.0) + 0.05 * np.random.RandomState(0).randn(1200)
    sd = ganad.SeriesDetector("ganomaly", window=16, detector_params={"epochs": 1}).fit(x)
    assert sd.detector_.feature_layer == -1
    D = sd.detector_.nets_["D"]
    assert D.feature_layer == len(D.blocks) - 1
    sd2 = ganad.SeriesDetector("ganomaly", window=16, detector_params={"epochs": 1, "feature_layer": "auto"}).fit(x)
    assert sd2.detector_.nets_["D"].feature_layer == len(sd2.detector_.nets_["D"].blocks) - 2
