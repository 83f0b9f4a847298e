"""template_difference: each sample minus the median of the k samples before it from the same source."""

import numpy as np
import pytest

from ganad.data import template_difference
from ganad.exceptions import InputError


def test_causal_median_per_group_in_time_order():
    X = np.arange(10, dtype=np.float32).reshape(10, 1, 1) * 3
    groups = np.array(["a"] * 5 + ["b"] * 5)
    order = np.r_[5, 4, 3, 2, 1, 1, 2, 3, 4, 5]  # group a arrives in reverse time
    D = template_difference(X, groups, order, k=2)
    assert D.dtype == np.float32 and D.shape == X.shape
    # group a in time order: values 12, 9, 6, 3, 0 (rows 4..0); templates: itself, 12, med(12, 9), med(9, 6), med(6, 3)
    np.testing.assert_allclose(D[[4, 3, 2, 1, 0], 0, 0], [0.0, 9 - 12, 6 - 10.5, 3 - 7.5, 0 - 4.5])
    # group b: 15, 18, 21, 24, 27 in time order; never mixed with group a
    np.testing.assert_allclose(D[5:, 0, 0], [0.0, 18 - 15, 21 - 16.5, 24 - 19.5, 27 - 22.5])


def test_a_source_specific_offset_cancels_and_a_change_stands_out():
    """The point of the template: two sources whose normal samples differ by a fixed shape give the same
    differences, and a sample unlike its source's recent ones differs from its template."""
    rs = np.random.RandomState(0)
    base = np.sin(np.linspace(0, 3, 32))
    a = base + 0.01 * rs.randn(50, 32)
    b = base + 0.8 * np.cos(np.linspace(0, 6, 32)) + 0.01 * rs.randn(50, 32)  # another "patient's" shape
    b[30] += 1.0 * np.exp(-((np.arange(32) - 16) / 3.0) ** 2)  # one odd beat
    X = np.concatenate([a, b])[:, None, :]
    D = template_difference(X, np.r_[np.zeros(50), np.ones(50)], k=8)
    norms = np.linalg.norm(D.reshape(100, -1), axis=1)
    assert norms[[*range(1, 50), *range(51, 80), *range(81, 100)]].max() < 0.2  # both sources' normal samples: small
    assert norms[80] > 1.0  # the odd one
    assert np.linalg.norm(X[50:80].mean(0) - X[:30].mean(0)) > 3  # while the raw shapes of the two sources differ


@pytest.mark.parametrize("bad, match", [
    (dict(X=np.zeros(5)), "X"), (dict(X=np.zeros((0, 3))), "X"), (dict(X=np.array([[1.0, np.nan]])), "X.*NaN"),
    (dict(X=np.zeros((4, 2)), groups=np.zeros(3)), "groups"), (dict(X=np.zeros((4, 2)), order=np.zeros(5)), "order"),
    (dict(X=np.zeros((4, 2)), order=np.array([0.0, np.inf, 1, 2])), "order"), (dict(X=np.zeros((4, 2)), k=0), "k"),
    (dict(X=np.zeros((4, 2)), k=2.5), "k"), (dict(X=np.array([["a", "b"]])), "X"),
])
def test_bad_input_is_refused_naming_it(bad, match):
    kw = dict(bad)
    X = kw.pop("X")
    with pytest.raises(InputError, match=match):
        template_difference(X, **kw)
