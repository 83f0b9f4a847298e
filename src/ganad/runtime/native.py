"""Native CPU kernels for the frozen conv1d stacks, compiled on first use (the ``native`` runner).

The GEMM programs of :mod:`ganad.runtime.gemm` are bound by memory traffic at the default width:
every layer is a matrix multiply followed by element-wise passes (shifted add, bias, activation,
pad rows) over its output, and with 4-16 channels each pass moves about as many bytes as the
layer does multiply-adds. The kernels in ``_native.c`` run one sample's whole stack in L1 cache
instead: each layer is one or two windowed passes with the bias and the activation applied in
vector registers, so a sample's input is read once and its outputs written once. Samples are
split across ``torch.get_num_threads()`` threads (the calls release the GIL).

The C file is compiled with the system's C compiler (``$CC``, else ``cc`` / ``gcc``) the first
time a frozen conv1d network is built, with ``-O3 -march=native -ffp-contract=fast`` (fused
multiply-adds; 512-bit kernels where the target has AVX-512), into a cache directory
(``$GANAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganad``, else ``~/.cache/ganad``) under a name that
hashes the source, the flags and this CPU's model and instruction-set flags, so a shared home
directory on mixed machines gets one library per kind of CPU. Where there is no compiler, the
compile fails, or ``ganad.runtime.use("gemm")`` is in force, nothing changes but speed: the
GEMM programs run instead (:func:`available` says which). Encoder scoring runs every network on
them (:class:`NativeDown`, :class:`NativeGenerator`), and the latent search its generator's
forward and hand-written backward (masked stride-2 convolutions, :meth:`NativeGenerator.backward`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ganad.runtime import layout

_SRC = Path(__file__).with_name("_native.c")
logger = logging.getLogger("ganad")
_FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-fPIC", "-shared", "-std=c11"]
#: tried first: with OpenMP the kernels run on the process's OpenMP threads, which are PyTorch's
#: own where its bundled libgomp is loaded (same soname), instead of Python threads competing with
#: PyTorch's spinning OpenMP workers for the same cores
_OPENMP = ["-fopenmp"]
_LOCK = threading.Lock()
_STATE: dict = {}


def _cpu_id() -> str:
    parts = [platform.machine(), platform.processor()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name", "Features")):
                parts.append(line)
                if line.startswith(("flags", "Features")):
                    break
    except OSError:
        pass
    return "\n".join(parts)


def cache_dir() -> Path:
    if os.environ.get("GANAD_CACHE_DIR"):
        return Path(os.environ["GANAD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative (invalid per the XDG spec: not the CWD)
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganad"


def _compiler() -> str | None:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    return None


def _target(cc: str, flags: list[str]) -> Path:
    key = hashlib.sha256(_SRC.read_bytes() + " ".join([cc] + flags).encode() + _cpu_id().encode()).hexdigest()[:16]
    return cache_dir() / f"native-{key}.so"


def _private_dir(d: Path) -> str | None:
    """Create ``d`` (0700) or check it: a directory owned by this user that group and others cannot
    write, else another user could plant a library in it. Returns the problem, or None."""
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.stat(d)
    except OSError as e:
        return f"cannot create the cache directory {d}: {e}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{d} is not a directory"
    return _foreign(st, f"the cache directory {d}")


def _private_file(f: Path) -> str | None:
    try:
        st = os.lstat(f)
    except OSError as e:
        return f"cannot read {f}: {e}"
    if not stat.S_ISREG(st.st_mode):
        return f"{f} is not a regular file"
    return _foreign(st, str(f))


_WINDOWS = os.name == "nt"


def _foreign(st: os.stat_result, what: str) -> str | None:
    """What lets another user change ``what`` (its owner, group / other write bits), or None."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{what} is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022 and not _WINDOWS:  # Windows reports every folder as mode 777: its ACLs guard them, not these bits
        return f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _sha256(f: Path) -> str:
    return hashlib.sha256(f.read_bytes()).hexdigest()


def _verify(target: Path) -> str | None:
    """The library may be loaded: private file, and its content hash is the one recorded when it was built."""
    digest = target.with_name(target.name + ".sha256")
    for f in (target, digest):
        problem = _private_file(f)
        if problem:
            return problem
    if digest.read_text().strip() != _sha256(target):
        return f"{target} does not match the hash recorded when it was built"
    return None


def _compile(cc: str, flags: list[str], target: Path) -> str | None:
    """Compile into ``target`` and record its hash beside it (both written atomically). Returns the error, or None."""
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            logger.info("compiling the native kernels into %s", target)
            res = subprocess.run([cc, *flags, str(_SRC), "-o", str(out)], capture_output=True, text=True, timeout=120)
            if res.returncode != 0 or not out.is_file():
                return f"compiling {_SRC.name} failed: {res.stderr.strip()[:500]}"
            os.chmod(out, 0o700)
            digest = Path(tmp) / "sha256"
            digest.write_text(_sha256(out))
            os.chmod(digest, 0o600)
            os.replace(digest, target.with_name(target.name + ".sha256"))
            os.replace(out, target)  # atomic: concurrent builders never load a half-written file
    except (OSError, subprocess.SubprocessError) as e:
        return f"could not build the native kernels: {e}"
    return None


def _open(target: Path) -> tuple[ctypes.CDLL | None, str | None]:
    try:
        lib = ctypes.CDLL(str(target))
        P, I, L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
        lib.ganad_stack.argtypes = [P, L, L, I, I, I, P, P, P, P, P, P, I, P, P, L, P, P]
        lib.ganad_stack.restype = None
        lib.ganad_run.argtypes = [P, I, L, I]
        lib.ganad_run.restype = I
        lib.ganad_openmp.restype = I
        lib.ganad_gemm.argtypes = [P, L, I, P, I, P, I]
        lib.ganad_gemm.restype = None
        lib.ganad_gemm_tn.argtypes = [P, P, L, I, I, L, P, P, I]
        lib.ganad_gemm_tn.restype = None
    except (OSError, AttributeError) as e:
        return None, f"could not load {target}: {e}"
    return lib, None


def _build() -> ctypes.CDLL | None:
    """Compile (or reuse) and load the kernels. Only a library in a private cache directory, private
    itself, whose content hash is the one recorded at build time is loaded; one that fails a check or
    does not load is rebuilt once, then the GEMM programs are used, with a warning."""
    if os.environ.get("GANAD_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):  # deprecated
        _STATE["why"] = "switched off by GANAD_NATIVE (deprecated: use GANAD_RUNTIME=gemm)"
        return None
    cc = _compiler()
    if cc is None:
        _STATE["why"] = "no C compiler found ($CC, cc, gcc, clang)"
        return None
    problem = _private_dir(cache_dir())
    if problem:
        return _give_up(f"{problem}; set GANAD_CACHE_DIR to a private directory (mode 0700)")
    trouble = None  # a library that failed a check or did not load (worth a warning)
    for extra in (_OPENMP, []):
        flags = _FLAGS + extra
        target = _target(cc, flags)
        for attempt in range(2):
            if attempt or not target.exists():
                err = _compile(cc, flags, target)
                if err:
                    _STATE["why"] = err
                    break  # e.g. no OpenMP here: try the next flags
            problem = _verify(target)
            lib = None
            if problem is None:
                lib, problem = _open(target)
            if lib is not None:
                _STATE["openmp"] = bool(lib.ganad_openmp())
                _STATE["why"] = f"loaded {target}" + (" (OpenMP)" if _STATE["openmp"] else " (Python threads)")
                logger.debug("native kernels: %s", _STATE["why"])
                return lib
            trouble = problem
            logger.warning("native kernels: %s; %s", problem, "rebuilding it" if attempt == 0 else "giving up on these flags")
            for f in (target, target.with_name(target.name + ".sha256")):
                with contextlib.suppress(OSError):
                    if not f.is_dir():
                        f.unlink()
    return _give_up(trouble) if trouble else None


def _give_up(problem: str) -> None:
    import warnings
    _STATE["why"] = problem
    msg = (f"ganad native kernels not used ({problem}); running the slower GEMM programs instead "
           "(and PyTorch's own products in training)")
    logger.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return None


def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on first call (None where they cannot be built)."""
    if "lib" not in _STATE:
        with _LOCK:
            if "lib" not in _STATE:
                _STATE["lib"] = _build()
    return _STATE["lib"]


def available() -> bool:
    """True where the native kernels are built (whether they run is :func:`ganad.runtime.use`'s choice)."""
    return library() is not None


def status() -> str:
    """Why the kernels are or are not in use (the library path, or the reason)."""
    library()
    return _STATE.get("why", "")


_POOL: list = []


def _pool(n: int) -> ThreadPoolExecutor:
    if not _POOL or _POOL[0]._max_workers < n:
        _POOL[:] = [ThreadPoolExecutor(max_workers=n, thread_name_prefix="ganad-native")]
    return _POOL[0]


class Stack:
    """A conv1d stack as windowed passes (see ``_native.c``).

    ``layers``: per layer a function of the input rows per sample returning ``(out_rows,
    out_channels, passes)``, ``passes`` a list of ``dict(taps, istride, ioff, N, ostride, ooff,
    per_rows, W, b, slope)``: ``per_rows`` input rows per position (P = rows / per_rows), W
    ``(taps * c, N)``, slope None for no activation (see :func:`down_layer`, :func:`up_layer`,
    :func:`dense_layer`).
    """

    def __init__(self, in_rows: int, in_c: int, layers, copy: bool = True):
        self._lib = library()
        if self._lib is None:
            raise RuntimeError(f"native kernels unavailable: {status()}")
        self.in_rows, self.in_c = int(in_rows), int(in_c)
        lay, pas, slopes, self._keep_alive = [], [], [], []
        rows, c, sizes = self.in_rows, self.in_c, [(self.in_rows + 2) * self.in_c]
        self.out_shapes = []
        for make in layers:
            out_rows, co, passes = make(rows)
            lay += [len(passes), out_rows, int(co)]
            for p in passes:
                P = rows // p["per_rows"]
                pas += [p["taps"], p["istride"], p["ioff"], p["N"], p["ostride"], p["ooff"], P, int(p["slope"] is not None)]
                slopes.append(float(p["slope"] or 0.0))
                # copies, so a model's later updates do not reach a built stack (``copy=False``:
                # a stack used at once and dropped, the tensors kept alive by the stack)
                W = p["W"].detach().to(torch.float32).contiguous()
                b = p["b"].detach().to(torch.float32).contiguous() if p["b"] is not None else None
                if copy:
                    W, b = W.clone(), b.clone() if b is not None else None
                assert W.shape == (p["taps"] * c, p["N"]), (W.shape, p["taps"], c, p["N"])
                assert b is None or b.numel() == p["N"]
                self._keep_alive += [W, b]
            rows, c = out_rows, int(co)
            self.out_shapes.append((rows, c))
            sizes.append((rows + 2) * c)
        self.nl = len(layers)
        self.half = max(sizes)
        n_pass = len(slopes)
        self._lay = (ctypes.c_int * len(lay))(*lay)
        self._pas = (ctypes.c_int * len(pas))(*pas)
        self._slopes = (ctypes.c_float * n_pass)(*slopes)
        Ws = [t.data_ptr() for t in self._keep_alive[0::2]]
        bs = [t.data_ptr() if t is not None else None for t in self._keep_alive[1::2]]
        self._Ws = (ctypes.c_void_p * n_pass)(*Ws)
        self._bs = (ctypes.c_void_p * n_pass)(*bs)

    def __deepcopy__(self, memo):
        return self  # immutable once built (its weights are copies), and ctypes pointers do not copy

    def outputs(self, n: int, keep: int = -1):
        """Empty (last layer's output (n, rows * c), layer ``keep``'s (n, rows_k * c_k) or None)."""
        r, c = self.out_shapes[-1]
        kout = None
        if 0 <= keep < self.nl - 1:
            kr, kc = self.out_shapes[keep]
            kout = torch.empty(n, kr * kc, dtype=torch.float32)
        return torch.empty(n, r * c, dtype=torch.float32), kout

    def __call__(self, x: torch.Tensor, keep: int = -1):
        """x (n, in_rows, in_c) float32 -> (last layer's output (n, rows * c), layer ``keep``'s or None)."""
        x = x.contiguous()
        out, kout = self.outputs(x.shape[0], keep)
        run([(self, x, out, kout, keep)])
        return out, kout

    def _call(self, x, out, kout, keep, s0, s1, scratch, masks=None, saves=None):
        self._lib.ganad_stack(x.data_ptr(), s0, s1, self.in_rows, self.in_c, self.nl, self._lay, self._pas,
                              self._slopes, self._Ws, self._bs, out.data_ptr(), keep if kout is not None else -1,
                              kout.data_ptr() if kout is not None else None, scratch.data_ptr(), self.half,
                              masks, saves)


class _Step(ctypes.Structure):
    _fields_ = [("x", ctypes.c_void_p), ("in_rows", ctypes.c_int), ("in_c", ctypes.c_int), ("nl", ctypes.c_int),
                ("lay", ctypes.c_void_p), ("pas", ctypes.c_void_p), ("slopes", ctypes.c_void_p),
                ("Ws", ctypes.c_void_p), ("bs", ctypes.c_void_p), ("out", ctypes.c_void_p), ("keep", ctypes.c_int),
                ("out_keep", ctypes.c_void_p), ("half", ctypes.c_long), ("masks", ctypes.c_void_p),
                ("saves", ctypes.c_void_p)]


def run(steps) -> None:
    """Run ``steps`` = [(stack, x, out, keep_out or None, keep[, masks[, saves]])] over the batch,
    ``masks`` / ``saves`` None or one tensor (or None) per layer of the stack, shaped like the layer's
    output for the whole batch (see ``ganad_stack`` in _native.c), piece by piece: each
    thread takes the next piece of samples and runs every step on it in order, so a step may read
    what an earlier one wrote (an encoder's codes into the generator) while it is still in cache.
    ``x`` (n, in_rows, in_c) contiguous float32; outputs as :meth:`Stack.outputs` makes them."""
    steps = [tuple(st) + (None,) * (7 - len(st)) for st in steps]
    n = steps[0][1].shape[0]
    ptrs = []  # ctypes arrays of per-layer pointers, alive for the call

    def layer_ptrs(stack, tensors):
        if tensors is None:
            return None
        assert len(tensors) == stack.nl
        for t, (r, c) in zip(tensors, stack.out_shapes):
            assert t is None or (t.is_contiguous() and t.dtype == torch.float32 and t.numel() == n * r * c)
        arr = (ctypes.c_void_p * stack.nl)(*[t.data_ptr() if t is not None else None for t in tensors])
        ptrs.append(arr)
        return arr

    steps = [(st, x, out, kout, keep, layer_ptrs(st, masks), layer_ptrs(st, saves))
             for st, x, out, kout, keep, masks, saves in steps]
    for stack, x, out, kout, *_ in steps:
        assert x.is_contiguous() and x.dtype == torch.float32 and x.shape[0] == n and out.shape[0] == n
        assert x[0].numel() == stack.in_rows * stack.in_c and out.is_contiguous() and out.dtype == torch.float32
    workers = max(1, min(torch.get_num_threads(), n // 16 or 1))
    if _STATE.get("openmp") and steps[0][0]._lib is _STATE.get("lib"):
        arr = (_Step * len(steps))()
        for i, (stack, x, out, kout, keep, masks, saves) in enumerate(steps):
            arr[i] = _Step(x.data_ptr(), stack.in_rows, stack.in_c, stack.nl, ctypes.addressof(stack._lay),
                           ctypes.addressof(stack._pas), ctypes.addressof(stack._slopes), ctypes.addressof(stack._Ws),
                           ctypes.addressof(stack._bs), out.data_ptr(), keep if kout is not None else -1,
                           kout.data_ptr() if kout is not None else None, stack.half,
                           ctypes.addressof(masks) if masks is not None else None,
                           ctypes.addressof(saves) if saves is not None else None)
        pieces = 1 if workers == 1 else min(4 * workers, max(workers, n // 64))
        if steps[0][0]._lib.ganad_run(arr, len(arr), n, pieces):
            raise MemoryError("native kernels: could not allocate their scratch buffers")
        return
    scratch = torch.empty(workers, 3 * max(st[0].half for st in steps), dtype=torch.float32)
    # pieces pulled by the threads as they finish: a core slowed by another process does not
    # hold up the call (a static split waits for the slowest half)
    pieces = 1 if workers == 1 else min(4 * workers, max(workers, n // 64))
    step = -(-n // pieces)
    nxt = itertools.count()

    def work(i):
        while (k := next(nxt)) < pieces:  # next() on a count is atomic under the GIL
            s0, s1 = k * step, min(n, (k + 1) * step)
            if s0 < s1:
                for stack, x, out, kout, keep, masks, saves in steps:
                    stack._call(x, out, kout, keep, s0, s1, scratch[i], masks, saves)

    if workers == 1:
        work(0)
    else:
        futs = [_pool(workers).submit(work, i) for i in range(1, workers)]
        work(0)
        for f in futs:
            f.result()



#: narrow products go to ``ganad_gemm`` from this many rows (below, the call's overhead eats the gain)
MM_MIN_ROWS = 1024
#: ... and up to this many inner (K) and output (N) columns (a 64-column block of the weight stays in L1)
MM_MAX_K, MM_MAX_N = 64, 256


def _training_lib() -> ctypes.CDLL | None:
    """The library for training's kernels (:func:`mm`, :func:`mm_tn`, :func:`down_forward`,
    :func:`up_forward`), or None where PyTorch's products should run: autograd on (a double
    backward), a runtime other than auto / native (``eager`` is PyTorch only), no library, or
    several threads without OpenMP in the library (MKL's own threads then do better than one native
    thread)."""
    if torch.is_grad_enabled():
        return None
    from ganad import runtime
    lib = library() if runtime.selected() in ("auto", "native") else None
    if lib is None or not (_STATE.get("openmp") or torch.get_num_threads() == 1):
        return None
    return lib


def _products_lib(a: torch.Tensor, b: torch.Tensor, min_rows: int, max_n: int) -> ctypes.CDLL | None:
    """The library for :func:`mm` / :func:`mm_tn` (:func:`_training_lib`) for float32 CPU matrices
    with at least ``min_rows`` rows, up to :data:`MM_MAX_K` inner and ``max_n`` output columns; else None."""
    if not (a.dim() == 2 and b.dim() == 2 and a.shape[0] >= min_rows and 0 < a.shape[1] <= MM_MAX_K
            and 0 < b.shape[1] <= max_n and a.dtype == torch.float32 and b.dtype == torch.float32
            and a.device.type == "cpu" and b.device.type == "cpu"):
        return None
    return _training_lib()


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for the narrow products of the conv1d layers' matmul forms in training (rows =
    batch x steps, 2-64 inner and 4-256 output columns), on the native kernels' one-tap pass: MKL
    runs these at a fraction of the memory rate, the kernels at 2-8x its speed (benchmarks/RESULTS.md,
    "Training's narrow products on the native kernels"). Each output row is summed in the same order
    whatever the thread count. Used without autograd only (inside the layers' autograd functions,
    not under a double backward), where the native runtime is selected (``GANAD_RUNTIME`` auto or
    native) and built, for float32 CPU matrices of the sizes above (:func:`_products_lib`);
    everything else is ``a @ b``."""
    lib = _products_lib(a, b, MM_MIN_ROWS, MM_MAX_N)
    if lib is None:
        return a @ b
    a, b = a.contiguous(), b.contiguous()
    M, K, N = a.shape[0], a.shape[1], b.shape[1]
    out = torch.empty(M, N, dtype=torch.float32)
    lib.ganad_gemm(a.data_ptr(), M, K, b.data_ptr(), N, out.data_ptr(), max(1, min(torch.get_num_threads(), M // 512)))
    return out


#: rows per chunk of :func:`mm_tn` (its partial sums are added in chunk order), and its fewest rows
MM_TN_CHUNK, MM_TN_MIN_ROWS = 2048, 4096


def mm_tn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a.T @ b`` for ``a`` (M, K) and ``b`` (M, N) with many rows and few columns: the weight
    gradients of the conv1d layers' matmul forms. Native chunks of :data:`MM_TN_CHUNK` rows on the
    OpenMP threads, summed in chunk order (the same result whatever the thread count), 1.4-4.5x
    MKL's speed from 4,096 rows; the same conditions as :func:`mm` (:func:`_products_lib`; K and N
    up to 64), else ``a.T @ b``."""
    lib = _products_lib(a, b, MM_TN_MIN_ROWS, MM_MAX_K) if a.dim() == b.dim() == 2 and a.shape[0] == b.shape[0] else None
    if lib is None:
        return a.T @ b
    a, b = a.contiguous(), b.contiguous()
    M, K, N = a.shape[0], a.shape[1], b.shape[1]
    partial = torch.empty(-(-M // MM_TN_CHUNK), K, N, dtype=torch.float32)
    out = torch.empty(K, N, dtype=torch.float32)
    lib.ganad_gemm_tn(a.data_ptr(), b.data_ptr(), M, K, N, MM_TN_CHUNK, partial.data_ptr(), out.data_ptr(),
                      max(1, torch.get_num_threads()))
    return out


#: a conv1d layer's training forward (:func:`down_forward`, :func:`up_forward`) runs on the stack
#: kernels from this many input rows (batch x steps); below, the call's set-up eats the gain
LAYER_MIN_ROWS = 1024


def _layer_ok(x: torch.Tensor) -> bool:
    """A float32 CPU layer input (n, l, c) of at least :data:`LAYER_MIN_ROWS` rows, where
    :func:`_training_lib` gives the library."""
    return (x.dim() == 3 and x.shape[0] * x.shape[1] >= LAYER_MIN_ROWS and x.dtype == torch.float32
            and x.device.type == "cpu" and _training_lib() is not None)


def _one_layer(x: torch.Tensor, layer) -> torch.Tensor | None:
    n, l, c = x.shape
    try:
        st = Stack(l, c, [layer], copy=False)
    except (TypeError, ValueError, AssertionError, RuntimeError):
        return None
    out, _ = st(x)
    r, co = st.out_shapes[-1]
    return out.reshape(n, r, co)


def down_forward(x: torch.Tensor, taps: torch.Tensor, bias, slope) -> torch.Tensor | None:
    """Conv1d(k=4, s=2, p=1) + bias + activation of channels-last ``x`` (n, l, c) with the weight
    in :func:`layout.down_taps` form (4 c, co), for the training forward of ``Down1d``: the stack
    kernels compute each output row straight from the input (no (n, l, 2 co) intermediate, no
    shifted add; the bias, and an activation where one is fused in, in the same pass), 1.2-2.3x the
    matmul form per call (benchmarks/RESULTS.md). Rows are independent, so the result does not
    depend on the thread count. None where :func:`_layer_ok` says no or the kernels do not take
    the shape: the caller runs its own products then."""
    if not _layer_ok(x):
        return None
    c, co = x.shape[2], taps.shape[1]
    return _one_layer(x.contiguous(), down_layer(taps.reshape(4, c, co).permute(2, 1, 0), bias, slope))


def up_forward(x: torch.Tensor, wm: torch.Tensor, bias, slope) -> torch.Tensor | None:
    """ConvTranspose1d(k=4, s=2, p=1) + bias + activation of ``x`` (n, l, c) with the weight in
    :func:`layout.up_taps` form (c, 4 co), for the training forward of ``Up1d``; as
    :func:`down_forward`."""
    if not _layer_ok(x):
        return None
    w3, w1, w2, w0 = wm.split(wm.shape[1] // 4, dim=1)
    return _one_layer(x.contiguous(), up_layer(torch.stack([w0, w1, w2, w3], dim=2), bias, slope))


def _band_rows(total_rows: int, g: int) -> int:
    return g if g > 1 and total_rows % g == 0 else 1


def down_layer(weight, bias, slope, min_cols: int = 8):
    """Conv1d(k=4, s=2, p=1) + bias + activation (weight (co, c, 4)) as a layer of :class:`Stack`."""
    return lambda rows: _down(weight, bias, slope, rows, min_cols)


def up_layer(weight, bias, slope, min_cols: int = 8):
    """ConvTranspose1d(k=4, s=2, p=1) + bias + activation (weight (c, co, 4)) as a layer of :class:`Stack`."""
    return lambda rows: _up(weight, bias, slope, rows, min_cols)


def dense_layer(weight, bias, slope, out_rows: int, out_channels: int):
    """Linear on a sample's whole input (flattened channels-last; weight (out_rows * out_channels,
    in features), the output read as out_rows rows of out_channels) as a layer of :class:`Stack`."""
    def make(rows):
        W = weight.detach().t()
        return (out_rows, out_channels, [dict(taps=rows, istride=rows, ioff=0, N=int(W.shape[1]), ostride=int(W.shape[1]),
                                               ooff=0, per_rows=rows, W=W, b=bias, slope=slope)])
    return make


def _down(weight, bias, slope, rows, min_cols):
    w = weight.detach()
    co = int(w.shape[0])
    g = _band_rows(rows // 2, -(-min_cols // co)) if co < min_cols else 1
    # g outputs per position from a window of 2g + 2 rows
    W = layout.down_taps(w) if g == 1 else layout.down_band(w, g)
    b = bias.detach().repeat(g) if bias is not None else None
    return (rows // 2, co, [dict(taps=2 * g + 2, istride=2 * g, ioff=-1, N=g * co, ostride=g * co, ooff=0, per_rows=2 * g,
                           W=W, b=b, slope=slope)])


def _up(weight, bias, slope, rows, min_cols):
    """Even output 2j = x[j-1] W3 + x[j] W1, odd 2j+1 = x[j] W2 + x[j+1] W0."""
    w = weight.detach()
    co = int(w.shape[1])
    b = bias.detach() if bias is not None else None
    if co >= min_cols:
        even = dict(taps=2, istride=1, ioff=-1, N=co, ostride=2 * co, ooff=0, per_rows=1,
                    W=torch.cat([w[:, :, 3], w[:, :, 1]]), b=b, slope=slope)
        odd = dict(taps=2, istride=1, ioff=0, N=co, ostride=2 * co, ooff=co, per_rows=1,
                   W=torch.cat([w[:, :, 2], w[:, :, 0]]), b=b, slope=slope)
        return (2 * rows, co, [even, odd])
    g = _band_rows(rows, -(-min_cols // (2 * co)))  # g input rows -> 2g outputs from a window of g + 2 rows
    return (2 * rows, co, [dict(taps=g + 2, istride=g, ioff=-1, N=2 * g * co, ostride=2 * g * co, ooff=0, per_rows=g,
                         W=layout.up_band(w, g), b=b.repeat(2 * g) if b is not None else None,
                         slope=slope)])


def _stack(in_rows, in_c, layers):
    """A :class:`Stack`, or None where the kernels are not built or the layers do not fit them."""
    if library() is None:
        return None
    try:
        return Stack(in_rows, in_c, layers)
    except (TypeError, ValueError, AssertionError, RuntimeError):
        return None


class NativeDown:
    """The stride-2 stack of a frozen conv1d encoder or discriminator on the native kernels, with the
    network's dense head (the encoder's code, the discriminator's logit) as the last layer where it
    has one: one call returns the head's output and a kept block's output."""

    def __init__(self, down_mods, channels: int, length: int, head=None):
        self.channels, self.length, self.depth = int(channels), int(length), len(down_mods)
        downs = [down_layer(m.weight, m.bias, m.fused_slope) for m in down_mods]
        self.blocks = _stack(self.length, self.channels, downs)
        self.head = None
        if head is not None and self.blocks is not None:
            self.head = _stack(self.length, self.channels, downs + [dense_layer(head.weight, head.bias, None, 1, head.out_features)])
        if self.blocks is None:
            raise RuntimeError("native kernels unavailable")

    def accepts(self, x: torch.Tensor) -> bool:
        return x.dim() == 3 and tuple(x.shape[1:]) == (self.channels, self.length) and x.shape[0] > 0

    def run_head(self, x_cl: torch.Tensor, keep: int | None = None):
        """Channels-last x (n, length, channels) -> (head output (n, out_features), the flattened
        output of block ``keep`` or None)."""
        return self.head(x_cl, -1 if keep is None else keep % self.depth)

    def run_blocks(self, x_cl: torch.Tensor) -> torch.Tensor:
        """The last block's flattened output (n, l * c), channels-last order as the modules flatten it."""
        return self.blocks(x_cl)[0]


class NativeGenerator:
    """A frozen conv1d generator (Linear + ReLU, then transposed convolutions) on the native kernels,
    with its hand-written backward for the latent search: the input gradient of each transposed
    convolution is the stride-2 convolution with the same weights (no bias), masked by the saved ReLU
    output below it; then the fc layer's transpose gives dL/dz."""

    def __init__(self, lin, up_mods, base: int, c0: int, channels: int, length: int, out_act):
        self.latent_dim, self.channels, self.length, self.out_act = lin.in_features, int(channels), int(length), out_act
        self.out_len = int(base) * 2 ** len(up_mods)
        self.forward_stack = _stack(1, self.latent_dim, [dense_layer(lin.weight, lin.bias, 0.0, base, c0)]
                                    + [up_layer(m.weight, m.bias, m.fused_slope) for m in up_mods])
        self.back_stack = _stack(self.out_len, self.channels, [down_layer(m.weight, None, None) for m in reversed(up_mods)]
                                 + [dense_layer(lin.weight.t(), None, None, 1, self.latent_dim)])
        if self.forward_stack is None or self.back_stack is None:
            raise RuntimeError("native kernels unavailable")

    def accepts(self, z: torch.Tensor) -> bool:
        return z.dim() == 2 and z.shape[1] == self.latent_dim and z.shape[0] > 0

    def _out_act_(self, out):
        if self.out_act == "tanh":
            out.tanh_()
        elif self.out_act == "sigmoid":
            out.sigmoid_()
        return out

    def finish(self, g: torch.Tensor):
        """The stack's raw output g (n, out_len * channels) -> (x̂ (n, channels, length) as the module
        returns it, x̂ channels-last (n, length, channels) contiguous or None). In place."""
        n = g.shape[0]
        out = self._out_act_(g.view(n, self.out_len, self.channels))
        if self.length == self.out_len:
            cl = out
        else:
            out, cl = out[:, : self.length], None
        x_hat = out.reshape(n, 1, self.length) if self.channels == 1 else out.transpose(1, 2)
        return x_hat, cl

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.finish(self.forward_stack(z.contiguous().view(z.shape[0], 1, self.latent_dim))[0])[0]

    def pad_target(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, channels, length) as (n, out_len, channels), zeros beyond length."""
        xp = x.new_zeros(x.shape[0], self.out_len, self.channels)
        xp[:, : self.length] = x.transpose(1, 2)
        return xp

    def forward_saved(self, z: torch.Tensor):
        """Output (n, out_len, channels) after the output activation, and every hidden layer's
        ReLU output (what :meth:`backward` masks with)."""
        n, st = z.shape[0], self.forward_stack
        out, _ = st.outputs(n)
        saves = [torch.empty(n, r * c, dtype=torch.float32) for r, c in st.out_shapes[:-1]] + [None]
        run([(st, z.contiguous().view(n, 1, self.latent_dim), out, None, -1, None, saves)])
        return self._out_act_(out.view(n, self.out_len, self.channels)), saves[:-1]

    def backward(self, g_out: torch.Tensor, out: torch.Tensor, acts) -> torch.Tensor:
        """dL/dz from dL/d(out) (n, out_len, channels; zero beyond length)."""
        if self.out_act == "tanh":
            g = g_out * (1 - out * out)
        elif self.out_act == "sigmoid":
            g = g_out * (out * (1 - out))
        else:
            g = g_out.contiguous()
        n, st = g.shape[0], self.back_stack
        masks = list(reversed(acts)) + [None]  # backward layer k's output is the input of up layer -1-k
        gz, _ = st.outputs(n)
        run([(st, g.view(n, self.out_len, self.channels), gz, None, -1, masks, None)])
        return gz
