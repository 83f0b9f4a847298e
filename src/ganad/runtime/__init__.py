"""How a trained (frozen) network runs: one seam, three runners.

:func:`compile` turns a frozen network (:func:`ganad.nets.inference.frozen_copy`) into a
:class:`~ganad.runtime.runner.Runner` with one small API, used by the detectors, the latent
search and the export alike:

* ``runner(*args)`` / ``runner.forward(*args)``: what the module returns;
* ``runner.forward_features(x)``: a discriminator's (logit, kept feature layer);
* ``runner.objective(x, loss, distance=...)``: the latent search's per-sample loss and its
  gradient with respect to z (``value_and_grad_z``);
* :func:`encode_generate` and :func:`discriminate_pair`: the fused E → G and D(x), D(x̂) passes of
  encoder scoring (:func:`encode_generate_discriminate` runs both).

Behind it, per call, one of three runners computes the same function (tests/test_runtime.py):

* ``eager``: the PyTorch modules (with autograd for the latent search's gradient); every network;
* ``gemm``: :mod:`ganad.runtime.gemm`, each frozen conv1d network as one GEMM program over a flat
  padded batch, with a hand-written backward for dL/dz;
* ``native``: :mod:`ganad.runtime.native`, C kernels (compiled on first use) that run one
  sample's whole conv1d stack in L1 cache.

``gemm`` and ``native`` cover the conv1d family on CPU float32 without autograd or tracing; the
runner falls back to the next simpler one everywhere else (native → gemm → eager). Which runner
runs is one switch for the process: :func:`use` (``"auto"``, the default: native where built, else
gemm, else eager), whose default is the environment variable ``GANAD_RUNTIME``. ``benchmarks/bench_runtime.py`` measures
every runner against PyTorch eager, ``torch.compile`` and ONNX Runtime (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
import warnings

KINDS = ("auto", "eager", "gemm", "native")

# use()'s choices in force, oldest first, each with its own token; the last one rules, else the environment's.
# A block removes its own entry at its end: blocks that overlap in two threads (A enters, B enters, A
# leaves, B leaves) each leave the choice the others made (restoring a saved copy left A's choice in force).
_CHOSEN: list[tuple[object, str]] = []
_LOCK = __import__("threading").Lock()
_DEFAULT: list[str] = []


def _from_env() -> str:
    v = os.environ.get("GANAD_RUNTIME")
    if v is not None and v.strip():
        kind = v.strip().lower()
        if kind not in KINDS:
            from ganad.exceptions import InputError
            raise InputError(f"GANAD_RUNTIME: is {v!r}, not a runtime. Fix: set it to one of {', '.join(KINDS)}, or unset it")
        return kind
    if os.environ.get("GANAD_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        warnings.warn("GANAD_NATIVE=0 is deprecated; set GANAD_RUNTIME=gemm instead", DeprecationWarning, stacklevel=3)
        return "gemm"
    return "auto"


def selected() -> str:
    """The runtime in force: ``use``'s choice, else ``GANAD_RUNTIME``, else ``"auto"``."""
    chosen = _CHOSEN[-1:]
    if chosen:
        return chosen[0][1]
    if not _DEFAULT:
        _DEFAULT.append(_from_env())
    return _DEFAULT[0]


class use:
    """Choose the runtime for the process: ``ganad.runtime.use("gemm")`` from now on, or as a block
    (the previous choice comes back at its end; every thread, a server's workers included, follows)::

        with ganad.runtime.use("eager"):        # the PyTorch modules, e.g. as a reference
            reference = det.decision_function(X)

    ``"auto"``: native kernels where built, else GEMM programs, else the modules; ``"native"``
    the same (the name says what you want); ``"gemm"``: GEMM programs, else the modules;
    ``"eager"``: the modules everywhere."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            from ganad.exceptions import InputError
            raise InputError(f"runtime: {kind!r} is not a runtime. Fix: use one of {', '.join(KINDS)}")
        self._token = object()
        with _LOCK:
            _CHOSEN.append((self._token, kind))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with _LOCK:
            _CHOSEN[:] = [e for e in _CHOSEN if e[0] is not self._token]
        return False


def status() -> dict:
    """What runs where: the selected runtime and whether the native kernels are built (and why not)."""
    from ganad.runtime import native
    return {"selected": selected(), "native_available": native.available(), "native": native.status()}


from ganad.runtime.runner import (  # noqa: E402
    Runner,
    compile,
    discriminate_pair,
    encode_generate,
    encode_generate_discriminate,
)

__all__ = ["KINDS", "Runner", "compile", "discriminate_pair", "encode_generate", "encode_generate_discriminate",
           "selected", "status", "use"]
