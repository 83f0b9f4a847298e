"""Quality benchmarks with honest protocols: ganad's detectors against PyOD peers on the same splits.

Three protocols, each a library function that returns a JSON-ready dict and is reproducible
from its arguments and one seed (the CLI's ``ganad benchmark {mitbih,adbench,mnist}`` calls them):

* :func:`run_mitbih` — inter-patient MIT-BIH (de Chazal et al. 2004). Train on N beats of
  DS1 records; a random 20 % of the DS1 records (by patient, chosen by the seed) is held out
  for calibration: the threshold τ is set on those held-out records only, **never on test
  labels** (default: the 95th percentile of their N beats, i.e. 5 % false-positive rate, no labels
  at all; ``calibration='mcc'`` or ``'f1'`` instead picks τ on every beat of the held-out DS1
  records with their labels). Test on DS2 beats (all, or a class-stratified subsample).
  AUROC / AUPRC overall (anomaly = every class but N) and N-vs-S, N-vs-V, N-vs-F; F1 and MCC at τ.
* :func:`run_adbench` — for each dataset and seed: a random 60 % of the normal samples train,
  the other 40 % plus every anomaly test. AUROC / AUPRC.
* :func:`run_mnist` — one-class per digit: train on that digit's training images, test on the
  test set (anomaly = any other digit). AUROC / AUPRC per digit and their mean.

Every method sees the same split. ganad's detectors take the data in its natural shape (beats
(n, 1, 256), images (n, 1, 28, 28), vectors (n, d)); PyOD peers take flattened vectors. Peers
keep PyOD's defaults except the number of epochs of its deep models (``peer_epochs``). Fit and
score wall-clock seconds are recorded for every method. AUROC / AUPRC always come from
continuous scores. A method that fails is recorded with its error and skipped, never silently.

:func:`write_outputs` writes ``results.json``, ``results.md``, PNG figures and a
self-contained ``report.html``.

The package, one job per module: :mod:`~ganad.benchmark.environment` (machine, data folder),
:mod:`~ganad.benchmark.peers` (the methods compared), :mod:`~ganad.benchmark.runner` (one method on
one split), the protocols :mod:`~ganad.benchmark.mitbih`, :mod:`~ganad.benchmark.adbench` and
:mod:`~ganad.benchmark.mnist`, :mod:`~ganad.benchmark.summary`, :mod:`~ganad.benchmark.tables`,
:mod:`~ganad.benchmark.figures` and :mod:`~ganad.benchmark.outputs`.
"""

from __future__ import annotations

from ganad.benchmark import peers, runner
from ganad.benchmark.adbench import adbench_split, run_adbench
from ganad.benchmark.environment import ENV_VAR, machine, resolve_data_dir
from ganad.benchmark.mitbih import MITBIH_CALIBRATIONS, mitbih_split, run_mitbih
from ganad.benchmark.mnist import run_mnist
from ganad.benchmark.outputs import _json_default as _json_default  # used by benchmarks/full_scale.py
from ganad.benchmark.outputs import write_outputs
from ganad.benchmark.peers import _PEER_PREFIX as _PEER_PREFIX  # used by benchmarks/full_scale.py
from ganad.benchmark.peers import GANAD_PARAMS, PEERS, default_methods, make_ganad, make_peer, pyod_available
from ganad.benchmark.runner import _subsample as _subsample  # used by benchmarks/select_defaults.py
from ganad.benchmark.runner import run_one, run_two_views
from ganad.benchmark.tables import markdown_tables
from ganad.exceptions import InputError, _fmt

PROTOCOLS = ("mitbih", "adbench", "mnist")


def run_protocol(protocol: str, data, **kwargs) -> dict:
    """Dispatch to :func:`run_mitbih`, :func:`run_adbench` or :func:`run_mnist`."""
    fn = {"mitbih": run_mitbih, "adbench": run_adbench, "mnist": run_mnist}.get(protocol)
    if fn is None:
        raise InputError(_fmt("protocol", f"is {protocol!r}", f"use one of {', '.join(PROTOCOLS)}"))
    return fn(data, **kwargs)


__all__ = ["PEERS", "PROTOCOLS", "run_mitbih", "run_adbench", "run_mnist", "run_protocol", "write_outputs", "markdown_tables",
           "adbench_split", "mitbih_split", "default_methods", "machine", "resolve_data_dir", "make_peer", "make_ganad", "run_one", "run_two_views", "pyod_available", "ENV_VAR",
           "GANAD_PARAMS", "MITBIH_CALIBRATIONS", "peers", "runner"]
