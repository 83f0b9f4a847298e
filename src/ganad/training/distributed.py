"""Distributed data-parallel training (PyTorch DistributedDataParallel) for every method.

Under ``torchrun --nproc-per-node N -m ganad fit ...`` (or any launcher that sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, or a process group the caller initialised)
:meth:`ganad.detectors.base.BaseGANDetector.fit` trains with one process per rank:

* **Sharding**: every rank draws the single-process permutation of the training rows (same seed)
  and, for every *global* batch of ``batch_size`` rows, trains on its contiguous slice of it
  (sizes differing by at most one row). The global batch is the batch of a single-process run.
* **Gradients**: every network a stage trains is wrapped in
  :class:`torch.nn.parallel.DistributedDataParallel` (gloo on CPU, nccl on CUDA), which averages the
  gradients over the ranks during ``backward``. Every loss reduction of the methods goes through
  :func:`ganad.training.objectives.wmean`, which under DDP normalises a rank's partial sum by the
  *global* count (or the global sum of the robust per-sample weights), so that DDP's average equals
  the gradient of the single-process loss over the global batch, also for an uneven last batch.
* **Random numbers**: latent codes, gradient-penalty interpolation factors, VAE noise and dropout
  masks are drawn for the whole global batch (same generators, same order as a single process) and
  each rank keeps its rows, so the random stream is the single-process one.
* **BatchNorm**: in training mode every BatchNorm layer normalises with the statistics of the
  global batch (each rank's count, sum and sum of squares, formed from its own two-pass mean and
  variance, summed over the ranks in float64 by one differentiable ``all_reduce``: one collective per
  layer forward and one backward), as :class:`torch.nn.SyncBatchNorm` does; SyncBatchNorm itself refuses CPU
  tensors, so ganad uses this one code path on every backend. Running statistics are therefore
  the same on every rank and equal to the single-process ones.
* **On rank 0** (the result broadcast to the others): the held-out selection criterion and the
  robust-training weights. The EMA, the best-epoch snapshot and everything after training (kNN
  bank, threshold, training scores) are computed identically on every rank; after training, rank 0's
  weights and buffers are broadcast once more so that every rank returns the same detector. Only
  rank 0 writes the model file (``ganad fit -o DIR``).

Scores equal those of a single-process run with the same global batch within float tolerance
(reductions are summed in another order). The one difference: a global batch with fewer rows than
ranks (an epoch's tail) is skipped, as a single process skips a lone row.
"""

from __future__ import annotations

import functools
import inspect
import os
import types
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ganad.exceptions import InputError, _fmt
from ganad.nets.blocks import Dropout, dropout_scale, update_running_stats

#: the step being run under DDP (set by the training loop around ``stage.step``), else None
_STEP: "_Step | None" = None


@dataclass(frozen=True)
class _Step:
    """This rank's slice ``[offset, offset + local)`` of a global batch of ``total`` rows."""

    offset: int
    local: int
    total: int
    world: int

    @property
    def mean_scale(self) -> float:
        """Factor turning a local mean into this rank's share of the global mean (1 for equal shards)."""
        return self.world * self.local / self.total

    def rows(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a tensor made of k stacked global batches (k * total rows)."""
        k = t.shape[0] // self.total
        if k == 1:
            return t[self.offset:self.offset + self.local]
        return t.reshape((k, self.total) + tuple(t.shape[1:]))[:, self.offset:self.offset + self.local].reshape(
            (k * self.local,) + tuple(t.shape[1:]))


def current_step() -> _Step | None:
    return _STEP


def batch_random(fn, shape, **kw) -> torch.Tensor:
    """``fn(shape, **kw)`` (``torch.rand``, ``torch.randn``, ...) for a tensor whose rows are samples of
    the batch. Under a DDP step it draws the rows of the whole global batch and keeps this rank's,
    so the generator advances as in a single-process run. Only for per-sample draws."""
    st = _STEP
    shape = tuple(shape)
    if st is None or not shape or shape[0] % st.local:
        return fn(shape, **kw)
    return st.rows(fn((shape[0] // st.local * st.total,) + shape[1:], **kw))


def batch_rows(draw):
    """Decorator of ``draw(self, n, ...)`` methods returning n per-sample rows (a prior's ``sample``):
    under a DDP step, draws the global batch's rows and keeps this rank's (see :func:`batch_random`)."""

    @functools.wraps(draw)
    def wrapper(self, n, *args, **kw):
        st = _STEP
        if st is None or n % st.local:
            return draw(self, n, *args, **kw)
        return st.rows(draw(self, n // st.local * st.total, *args, **kw))

    return wrapper


def global_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of a (non-differentiated) tensor over the ranks of the current DDP step."""
    out = t.detach().clone()
    dist.all_reduce(out)
    return out


# ---------------------------------------------------------------------- set-up
def _threads(local_world: int) -> None:
    """One process per core: ``cores // local_world_size`` threads each, unless OMP_NUM_THREADS is set
    (torchrun sets it to 1 when it starts more than one process)."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // max(1, local_world)))


def setup(device: torch.device) -> "DDPContext | None":
    """The DDP context of this process, or None for a single-process run.

    Initialises the default process group from the environment (``env://``: RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT as set by torchrun) when WORLD_SIZE > 1 and no group exists yet:
    backend nccl for a CUDA device, gloo otherwise; a group the caller initialised is used as it is."""
    if not dist.is_available():
        return None
    if not dist.is_initialized():
        world = os.environ.get("WORLD_SIZE", "1")
        if not world.isdigit() or int(world) <= 1:
            return None
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise InputError(_fmt("environment", f"has WORLD_SIZE={world} but lacks {missing}",
                                  "launch with torchrun (it sets them), or unset WORLD_SIZE for a single-process run"))
        backend = "nccl" if device.type == "cuda" else "gloo"
        avail = dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available()
        if not avail:
            raise InputError(_fmt("device", f"is {device.type!r}, but this PyTorch build lacks the {backend} backend",
                                  "install a PyTorch build with it, or run a single process"))
        _threads(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    world, rank = dist.get_world_size(), dist.get_rank()
    if world <= 1:
        return None
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        torch.cuda.set_device(device)
    elif dist.get_backend() == "nccl":
        raise InputError(_fmt("device", "is 'cpu', but the process group uses the nccl backend, which needs CUDA tensors",
                              "pass device='cuda' (CLI: --device cuda), or initialise the group with backend='gloo'"))
    return DDPContext(rank, world, device)


def is_main_process() -> bool:
    """True on rank 0 of a distributed run and in a single-process run (who writes files)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def shutdown() -> None:
    """Destroy the default process group if one exists (the CLI calls this before it exits)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------- layers under DDP
class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks, differentiable: the gradient of every rank's input is the sum over the
    ranks of the gradients of the output (each rank's loss depends on every rank's input)."""

    @staticmethod
    def forward(ctx, t):
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, g):
        g = g.clone()
        dist.all_reduce(g)
        return g


def _bn_forward(self, x):
    """BatchNorm in training mode with the statistics of the global batch: one differentiable
    all_reduce forward (and one backward) of every rank's count, sum and sum of squares, formed from
    the rank's own two-pass mean and variance and combined in float64 (no cancellation in float32)."""
    if not self.training:
        return type(self).forward(self, x)
    dims = [0] + list(range(2, x.dim()))
    count = x.numel() // x.shape[1]
    c = x.shape[1]
    var_l, mean_l = torch.var_mean(x, dims, correction=0)
    m64 = mean_l.double()
    s = _AllReduceSum.apply(torch.cat([m64 * count, (var_l.double() + m64.square()) * count, m64.new_full((1,), float(count))]))
    n = s[2 * c]
    mean64 = s[:c] / n
    var = (s[c:2 * c] / n - mean64.square()).clamp_min(0).to(x.dtype)
    mean = mean64.to(x.dtype)
    shape = (1, c) + (1,) * (x.dim() - 2)
    update_running_stats(self, mean, var.detach() * (n / (n - 1)).clamp_min(0).to(x.dtype))
    y = (x - mean.reshape(shape)) * torch.rsqrt(var + self.eps).reshape(shape)
    if self.affine:
        y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
    return y


def _dropout_forward(self, x):
    """Dropout whose mask is drawn for the global batch (rows kept by rank), as a single process draws it."""
    st = _STEP
    if not self.training or self.p == 0 or st is None or x.shape[0] % st.local:
        return type(self).forward(self, x)
    if not isinstance(self, Dropout):  # a plain nn.Dropout (a user's network)
        mask = batch_random(lambda shape: torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.p), x.shape)
        return x * mask.div_(1 - self.p)
    # ganad's own Dropout: its masks (dropout_scale) for the global batch, as a single process draws them
    return x * batch_random(lambda shape: dropout_scale(shape, float(self.p), x.dtype, x.device), x.shape)


def _ddp_kwargs(device: torch.device) -> dict:
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    # buffers (spectral-norm vectors, BatchNorm running statistics) are equal on every rank by
    # construction (see above): no broadcast per forward, which would also overwrite in place
    # tensors saved for backward
    kw = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    if device.type == "cuda":
        kw["device_ids"] = [device.index]
    return kw


class DDPContext:
    """What :func:`train` and ``fit`` need of a distributed run: sharding, wrapping, broadcasting."""

    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank, self.world, self.device = rank, world, device
        self._patched: list[nn.Module] = []

    # ------------------------------------------------------------------ sharding
    @property
    def min_batch(self) -> int:
        return max(2, self.world)

    @contextmanager
    def step(self, idx: torch.Tensor):
        """Context of one optimisation step on global batch ``idx``: yields this rank's rows."""
        global _STEP
        n = idx.numel()
        base, extra = divmod(n, self.world)
        offset = self.rank * base + min(self.rank, extra)
        local = base + (1 if self.rank < extra else 0)
        _STEP = _Step(offset, local, n, self.world)
        try:
            yield idx[offset:offset + local]
        finally:
            _STEP = None

    # ------------------------------------------------------------------ networks
    def prepare(self, nets: nn.ModuleDict) -> None:
        """Global-batch BatchNorm and dropout in every network (undone by :meth:`restore`)."""
        for m in nets.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.forward = types.MethodType(_bn_forward, m)
                self._patched.append(m)
            elif isinstance(m, nn.Dropout):
                m.forward = types.MethodType(_dropout_forward, m)
                self._patched.append(m)

    def stages(self, det, generator):
        """The method's stages built over DDP-wrapped networks (``det.nets_`` itself stays unwrapped:
        selection, robust proxies and scoring use the plain modules)."""
        raw = det.nets_
        kw = _ddp_kwargs(self.device)
        wrapped = nn.ModuleDict({k: nn.parallel.DistributedDataParallel(m, **kw) if any(p.requires_grad for p in m.parameters())
                                 else m for k, m in raw.items()})
        det.nets_ = wrapped
        try:
            return det._stages(generator)
        finally:
            det.nets_ = raw

    def restore(self, nets: nn.ModuleDict) -> None:
        """Undo :meth:`prepare` and make every rank hold rank 0's weights and buffers."""
        for m in self._patched:
            m.__dict__.pop("forward", None)
        self._patched.clear()
        with torch.no_grad():
            for t in nets.state_dict().values():
                dist.broadcast(t, 0)

    # ------------------------------------------------------------------ agreement between ranks
    def _comm_device(self):
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def from_rank0(self, fn):
        """``fn()`` (a float) computed on rank 0 and broadcast to every rank."""
        def wrapped():
            v = torch.tensor([float(fn()) if self.rank == 0 else 0.0], dtype=torch.float64, device=self._comm_device())
            dist.broadcast(v, 0)
            return float(v[0])
        return wrapped

    def agree(self, seed: int) -> int:
        """Rank 0's integer (the seed drawn for ``random_state=None``) on every rank."""
        v = torch.tensor([int(seed)], dtype=torch.int64, device=self._comm_device())
        dist.broadcast(v, 0)
        return int(v[0])

    def broadcast(self, t: torch.Tensor) -> torch.Tensor:
        out = t.detach().to(self._comm_device()).contiguous().clone()
        dist.broadcast(out, 0)
        return out.to(t.device)

    def agree_symptom(self, symptom):
        """The divergence guard's verdict agreed over the ranks (one all_reduce of one integer): a
        symptom seen by any rank makes every rank roll back together, so that the networks stay
        identical; a rank that saw nothing itself records which rank did."""
        flag = torch.tensor([-1 if symptom is None else self.rank], dtype=torch.int64, device=self._comm_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        src = int(flag.item())
        if src < 0:
            return None
        return symptom if symptom is not None else f"divergence seen on rank {src}"

    def average(self, means: dict[str, float]) -> dict[str, float]:
        """Per-epoch mean losses averaged over the ranks (one all_reduce per epoch)."""
        if not means:
            return means
        keys = sorted(means)
        v = torch.tensor([means[k] for k in keys], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(v)
        return {k: float(x) / self.world for k, x in zip(keys, v.cpu())}
