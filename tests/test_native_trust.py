"""Issue 10: the native kernels' library is loaded only from a private cache, when its content
hash is the one recorded at build time; a planted, garbage or symbol-less library never loads and
never crashes fit / score (rebuild once, then the GEMM programs, with a warning)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganad.nets import native

REPO = Path(__file__).resolve().parents[1]
needs_cc = pytest.mark.skipif(native._compiler() is None, reason="no C compiler")

PLANT = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(getenv("PLANT_MARK"), "w"); if (f) { fputs("ran", f); fclose(f); }
}
int ganad_openmp(void) { return 0; }
void ganad_stack(void) {}
int ganad_run(void) { return 0; }
"""

# plant a library at the exact cache name, then use the kernels on a small conv1d model
SCRIPT = """
import os, shutil, sys, warnings
import numpy as np
warnings.simplefilter("always")
from ganad.nets import native
plant = os.environ.get("PLANT_SO")
if plant:
    t = native._target(native._compiler(), native._FLAGS + native._OPENMP)
    t.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(plant, t)
    if os.environ.get("PLANT_HASH"):
        t.with_name(t.name + ".sha256").write_text(native._sha256(t))
ok = native.available()
from ganad import BiGAN
X = np.random.RandomState(0).randn(40, 1, 32).astype(np.float32)
s = BiGAN(epochs=1, random_state=0, width=4, depth=2).fit(X).decision_function(X)
assert np.isfinite(s).all()
print("AVAILABLE", ok, native.status())
"""


def _run(tmp_path, env_extra, mode=0o700):
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    os.chmod(cache, mode)
    env = {**os.environ, "GANAD_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
           "PLANT_MARK": str(tmp_path / "planted-ran"), **env_extra}
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


def _planted(tmp_path) -> str:
    src = tmp_path / "plant.c"
    src.write_text(PLANT)
    so = tmp_path / "plant.so"
    subprocess.run([native._compiler(), "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    return str(so)


@needs_cc
def test_planted_library_without_recorded_hash_is_rebuilt_never_loaded(tmp_path):
    r = _run(tmp_path, {"PLANT_SO": _planted(tmp_path)})
    assert not (tmp_path / "planted-ran").exists()
    assert "AVAILABLE True" in r.stdout and "rebuilding" in r.stderr


@needs_cc
def test_cache_writable_by_others_is_never_loaded_from(tmp_path):
    r = _run(tmp_path, {"PLANT_SO": _planted(tmp_path), "PLANT_HASH": "1"}, mode=0o777)
    assert not (tmp_path / "planted-ran").exists()
    assert "AVAILABLE False" in r.stdout and "writable by group or others" in r.stderr and "RuntimeWarning" in r.stderr


@needs_cc
@pytest.mark.parametrize("kind", ["garbage", "no-symbols"])
def test_bad_compiler_output_falls_back_with_a_warning(tmp_path, kind):
    cc = tmp_path / "fakecc"
    if kind == "garbage":  # exits 0 but writes junk to the -o file
        body = 'out=""; while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done; echo junk > "$out"'
    else:  # a real ELF, without the kernels' symbols
        (tmp_path / "empty.c").write_text("int nothing(void) { return 0; }\n")
        body = (f'out=""; while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done; '
                f'{native._compiler()} -shared -fPIC {tmp_path / "empty.c"} -o "$out"')
    cc.write_text("#!/bin/sh\n" + body + "\n")
    cc.chmod(0o755)
    r = _run(tmp_path, {"CC": str(cc)})
    assert "AVAILABLE False" in r.stdout and "rebuilding" in r.stderr and "GEMM programs" in r.stderr
