"""Latent priors p(z): standard normal, uniform on [-1, 1], truncated normal on [-t, t].

Bounded priors restrict the latent space so the generator cannot be driven into regions it
never saw in training (one of the review's remedies against generators that also explain
anomalies); ``project`` keeps a searched z inside the support.
"""

from __future__ import annotations

import math

import torch

from ganad.training.distributed import batch_rows


class Prior:
    name = "prior"

    def sample(self, n: int, dim: int, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        raise NotImplementedError

    def from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        """Transform uniform (0, 1) numbers into samples of the prior (inverse CDF)."""
        raise NotImplementedError

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Map z back into the support (identity for unbounded priors)."""
        return z

    def norm_mode(self, dim: int) -> float:
        """Most likely norm ‖z‖ of a sample, the reference of the latent-norm component."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"name": self.name}


class NormalPrior(Prior):
    name = "normal"

    @batch_rows  # under DDP: the global batch's codes, this rank's rows
    def sample(self, n, dim, generator=None, device="cpu"):
        return torch.randn(n, dim, generator=generator, device=device)

    def from_uniform(self, u):
        return torch.special.ndtri(u)

    def norm_mode(self, dim):
        # ‖z‖ of a d-dimensional standard normal follows a chi distribution with mode sqrt(d - 1)
        return math.sqrt(max(dim - 1, 0))


class UniformPrior(Prior):
    name = "uniform"

    @batch_rows  # under DDP: the global batch's codes, this rank's rows
    def sample(self, n, dim, generator=None, device="cpu"):
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1

    def from_uniform(self, u):
        return u * 2 - 1

    def project(self, z):
        return z.clamp(-1.0, 1.0)

    def norm_mode(self, dim):
        return math.sqrt(dim / 3.0)  # E‖z‖² = d/3


class TruncatedNormalPrior(Prior):
    name = "truncated_normal"

    def __init__(self, bound: float = 2.0):
        if not bound > 0:
            raise ValueError(f"truncation bound: {bound} must be > 0. Fix: use for example 2.0")
        self.bound = float(bound)

    @batch_rows  # under DDP: the global batch's codes, this rank's rows
    def sample(self, n, dim, generator=None, device="cpu"):
        z = torch.empty(n, dim, device=device)
        if generator is None:
            return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -self.bound, self.bound)
        # inverse-CDF sampling with an explicit generator (reproducible)
        return self.from_uniform(torch.rand(n, dim, generator=generator, device=device))

    def from_uniform(self, u):
        lo = 0.5 * (1 + math.erf(-self.bound / math.sqrt(2)))
        p = lo + u * (1 - 2 * lo)
        return torch.special.ndtri(p).clamp(-self.bound, self.bound)

    def project(self, z):
        return z.clamp(-self.bound, self.bound)

    def norm_mode(self, dim):
        b = self.bound
        # variance of a standard normal truncated to [-b, b]
        phi = math.exp(-b * b / 2) / math.sqrt(2 * math.pi)
        Z = math.erf(b / math.sqrt(2))
        var = 1 - 2 * b * phi / Z
        return math.sqrt(max(dim - 1, 0) * var)

    def to_dict(self):
        return {"name": self.name, "bound": self.bound}


PRIORS = {"normal": NormalPrior, "uniform": UniformPrior, "truncated_normal": TruncatedNormalPrior}


def make_prior(spec) -> Prior:
    """A prior from its name (``'normal'``, ``'uniform'``, ``'truncated_normal'``), a dict or a Prior."""
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        return PRIORS[name](**spec)
    if spec not in PRIORS:
        raise ValueError(f"prior: unknown prior {spec!r}. Fix: use one of {', '.join(PRIORS)}")
    return PRIORS[spec]()
