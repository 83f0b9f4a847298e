import numpy as np
import pytest
import torch

from ganad.inversion.latent_search import LatentSearch, sample_distance
from ganad.nets import build_generator
from ganad.nets.inference import frozen_copy
from ganad.training.priors import NormalPrior


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    g = build_generator("conv1d", 8, (1, 64), 8, 3)
    g.train()
    for _ in range(3):
        g(torch.randn(64, 8))
    return frozen_copy(g.eval())


def test_search_recovers_the_generators_own_samples(G):
    z_true = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    x = G(z_true)
    base = sample_distance(x, G(torch.randn(32, 8)), "l2")  # residual of random codes, for scale
    r = LatentSearch(distance="l2", eps=1e-5, n_max=1500, lr=0.05).run(G, x, NormalPrior(), latent_dim=8, seed=0)
    assert (r.distance < 0.01 * base).float().mean() > 0.9
    assert float(r.distance.median()) < 1e-4


def test_each_sample_stops_on_its_own(G):
    x = G(torch.randn(16, 8, generator=torch.Generator().manual_seed(2)))
    x_far = torch.randn(4, 1, 64) * 3  # cannot be reached: runs to n_max
    xx = torch.cat([x, x_far])
    s = LatentSearch(distance="l2", eps=2e-3, n_max=400, lr=0.05, check_every=10)
    r = s.run(G, xx, NormalPrior(), latent_dim=8, seed=0)
    it = r.iterations.numpy()
    assert (it[-4:] == 400).all() and not r.converged[-4:].any()
    conv = r.converged[:16].numpy()
    assert conv.sum() >= 12
    assert len(np.unique(it[:16][conv])) > 1  # stopped at different iterations
    assert (r.distance[:16][r.converged[:16]] < 2e-3).all()
    # a converged sample stopped at the first iteration its distance fell below eps,
    # so running it alone gives exactly the same iteration count and result
    i = int(np.flatnonzero(conv)[0])
    alone = s.run(G, xx[i:i + 1], NormalPrior(), latent_dim=8, seed=0)
    assert int(alone.iterations[0]) == int(it[i])
    torch.testing.assert_close(alone.z[0], r.z[i], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("distance", ["l2", "l1", "rbf"])
def test_restarts_never_worse_than_one_start(G, distance):
    x = torch.randn(24, 1, 64) * 0.8
    one = LatentSearch(distance=distance, eps=0.0, n_max=60, restarts=1).run(G, x, NormalPrior(), latent_dim=8, seed=3)
    many = LatentSearch(distance=distance, eps=0.0, n_max=60, restarts=4).run(G, x, NormalPrior(), latent_dim=8, seed=3)
    assert (many.distance <= one.distance + 1e-6).all()
    assert (many.distance < one.distance - 1e-6).any()  # and at least sometimes better


def test_result_does_not_depend_on_the_batch(G):
    x = torch.randn(20, 1, 64)
    s = LatentSearch(eps=0.0, n_max=30)
    full = s.run(G, x, NormalPrior(), latent_dim=8, seed=5)
    part = s.run(G, x[7:12].flip(0), NormalPrior(), latent_dim=8, seed=5)
    torch.testing.assert_close(part.distance.flip(0), full.distance[7:12], atol=1e-6, rtol=1e-5)


def test_unknown_distance_is_rejected():
    with pytest.raises(ValueError, match="unknown distance"):
        LatentSearch(distance="cosine")


class _LogG(torch.nn.Module):
    """x̂ = log(z_0) on 8 steps: a NaN reconstruction wherever z_0 < 0 (a diverged search)."""

    def forward(self, z):
        return torch.log(z[:, :1]).unsqueeze(-1).expand(z.shape[0], 1, 8)


@pytest.mark.parametrize("restarts", [1, 2])
def test_a_nan_distance_is_never_converged(restarts):
    x = torch.zeros(3, 1, 8)  # finite inputs
    z0 = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [3.0, 0.0]])  # row 0: NaN from the start; row 1: exact (log 1 = 0)
    r = LatentSearch(eps=1e-3, n_max=5, lr=1e-3, restarts=restarts, check_every=1).run(
        _LogG(), x, NormalPrior(), latent_dim=2, z0=z0, seed=0)
    if restarts == 1:
        assert torch.isnan(r.distance[0]) and not bool(r.converged[0])
    else:  # a finite restart wins over the diverged one
        assert not (torch.isnan(r.distance[0]) and bool(r.converged[0]))
    assert bool(r.converged[1]) and float(r.distance[1]) < 1e-3
    assert not bool(r.converged[2])  # finite, above eps after n_max steps
    assert (r.converged <= torch.isfinite(r.distance)).all()
