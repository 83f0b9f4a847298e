"""Quality benchmarks: run the three protocols of :mod:`ganad.benchmark` at the scale recorded in
benchmarks/RESULTS.md, and write that file's ``## Quality benchmarks`` section from the results.

    python benchmarks/run_benchmarks.py run adbench            # one protocol (or: all)
    python benchmarks/run_benchmarks.py section                # rewrite the section from benchmarks/out/quality-*/results.json

Each run is the same as the ``ganad benchmark ...`` command printed for it (``CONFIGS`` below).
Reference data: ``--data``, ``$GANAD_DATA_DIR``, ``$GANAD_SHARED_DATA`` or ``../shared/data`` beside the checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
RESULTS = HERE / "RESULTS.md"
HEADING = "## Quality benchmarks"

PEERS = "iforest,knn,ocsvm,ecod,autoencoder,vae,deepsvdd,alad"
#: the configurations behind the published tables (CPU budget: each run ~20 min on 2 shared cores)
CONFIGS = {
    "mitbih": ["--methods", "fanogan,bigan,alad,ganomaly,vaegan", "--peers", PEERS, "--seed", "0", "--max-train", "5000",
               "--max-test", "10000", "--epochs", "10", "--peer-epochs", "10"],
    "adbench": ["--methods", "fanogan,bigan,alad,ganomaly,vaegan", "--peers", PEERS, "--seed", "0", "--n-seeds", "3",
                "--max-train", "1000", "--max-test", "1000", "--epochs", "10", "--peer-epochs", "10"],
    "mnist": ["--methods", "fanogan,ganomaly,vaegan", "--peers", PEERS, "--seed", "0", "--max-train", "500",
              "--max-test", "1000", "--epochs", "10", "--peer-epochs", "10"],
}

#: follow-up runs on the same splits (same seeds): what was tried to close the gap to the targets
EXTRA = {
    "mitbih-compose": ("mitbih", ["--methods", "vaegan,ganomaly", "--peers", "none", "--seed", "0", "--max-train", "5000",
                                  "--max-test", "10000", "--epochs", "10", "--compose", "default"],
                       "score components re-composed on the held-out normal DS1 beats (robust standardisation, no labels)"),
    "mitbih-rhythm": ("mitbih", ["--methods", "fanogan,ganomaly,vaegan", "--peers", PEERS, "--seed", "0", "--max-train", "5000",
                                 "--max-test", "10000", "--epochs", "10", "--peer-epochs", "10", "--rhythm"],
                      "the rhythm view (RR log-ratios) beside the beat: a second detector per ganad method, scores combined "
                      "label-free on held-out normal DS1 beats; peers get the features appended"),
    "mitbih-e30": ("mitbih", ["--methods", "vaegan,ganomaly", "--peers", "none", "--seed", "0", "--max-train", "5000",
                              "--max-test", "10000", "--epochs", "30"], "30 instead of 10 training epochs"),
    "adbench-e30": ("adbench", ["--methods", "ganomaly,vaegan,fanogan", "--peers", "none", "--seed", "0", "--n-seeds", "3",
                                "--max-train", "1000", "--max-test", "1000", "--epochs", "30"], "30 instead of 10 training epochs"),
    "mnist-e30": ("mnist", ["--methods", "vaegan", "--peers", "none", "--seed", "0", "--max-train", "500", "--max-test", "1000",
                            "--epochs", "30"], "30 instead of 10 training epochs"),
    "adbench-anogan": ("adbench", ["--methods", "anogan", "--peers", "anogan", "--datasets", "WBC,Ionosphere,breastw,Pima,Arrhythmia",
                                   "--seed", "0", "--n-seeds", "3", "--max-train", "300", "--max-test", "300", "--epochs", "10",
                                   "--peer-epochs", "10"],
                       "the two latent-search AnoGANs (ganad's and PyOD's), on the five smallest datasets only (per-sample search cost)"),
}


def data_dir(arg):
    for p in (arg, os.environ.get("GANAD_DATA_DIR"), os.environ.get("GANAD_SHARED_DATA"), HERE.parent.parent / "shared" / "data"):
        if p and Path(p).is_dir():
            return Path(p)
    sys.exit("no reference data: pass --data DIR (holding mitdb/, adbench/, mnist/) or set GANAD_DATA_DIR")


def command(name: str, data="$GANAD_DATA_DIR") -> list[str]:
    protocol, args = (name, CONFIGS[name]) if name in CONFIGS else EXTRA[name][:2]
    return ["ganad", "benchmark", protocol, "--data", str(data), *args, "-o", f"benchmarks/out/quality-{name}"]


def _argv(cmd: list[str]) -> list[str]:
    """The command as this interpreter runs it (a bare `ganad` is not on PATH outside an activated venv)."""
    return [sys.executable, "-m", "ganad", *cmd[1:]] if cmd[:1] == ["ganad"] else cmd


def run(protocol: str, data) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = command(protocol, data)
    print("+", " ".join(cmd), flush=True)
    subprocess.run(_argv(cmd), check=True, env=env, cwd=HERE.parent)


def _load(protocol):
    p = OUT / f"quality-{protocol}" / "results.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _f(v, nd=3):
    return "–" if v is None else f"{v:.{nd}f}"


def _blocks(sec: str) -> dict[str, str]:
    """The section's blocks, by their heading line (### / ####): a protocol whose results.json is not
    here (benchmarks/out/ is not in git) keeps the block RESULTS.md already has."""
    out: dict[str, str] = {}
    key, body = None, []
    for line in sec.splitlines():
        if line.startswith("### ") or line.startswith("#### "):
            if key is not None:
                out[key] = "\n".join(body).strip()
            key, body = line, []
        elif key is not None:
            body.append(line)
    if key is not None:
        out[key] = "\n".join(body).strip()
    return out


def section(extra: str = "", current: str = "") -> str:
    """The Markdown section built from the stored results (tables via ganad.benchmark.markdown_tables);
    ``current``: the section RESULTS.md has now, whose heading line and blocks without a stored
    result are kept (a fresh checkout has no benchmarks/out/, and wiped them as "(not run yet)")."""
    from ganad.benchmark import markdown_tables
    first = current.lstrip("\n").splitlines()[0] if current.strip() else ""
    kept = _blocks(current)
    parts = [first if first.startswith(HEADING) else HEADING, "",
             "Written by `benchmarks/run_benchmarks.py section` from `benchmarks/out/quality-*/results.json`; "
             "protocols in `docs/benchmark.md`. Every method of a protocol sees the same split; AUROC / AUPRC from continuous "
             "scores; thresholds (MIT-BIH only) from held-out DS1 records, never from test labels.", ""]
    if extra:
        parts += [extra, ""]
    for protocol in ("mitbih", "adbench", "mnist"):
        res = _load(protocol)
        parts += [f"### {protocol}", ""]
        if res is None:
            parts += [kept.get(f"### {protocol}") or "(not run yet)", ""]
            continue
        m = res["machine"]
        parts += ["Command:", "", "```", " ".join(command(protocol)), "```", "",
                  f"Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs), torch {m['torch']} "
                  f"({m['torch_threads']} thread), PyOD {m.get('pyod')}, CUDA {'yes' if m.get('cuda') else 'no'}; "
                  f"run {res['started']} – {res['finished']}.", ""]
        parts += [f"- {n}" for n in res.get("notes", [])] + [""]
        parts += [markdown_tables(res)]
    parts += ["### Follow-up runs (same splits and seeds)", ""]
    for name, (protocol, _, what) in EXTRA.items():
        res = _load(name)
        parts += [f"#### {name}: {what}", ""]
        if res is None:
            parts += [kept.get(f"#### {name}: {what}") or "(not run)", ""]
            continue
        parts += ["```", " ".join(command(name)), "```", "", f"Run {res['started']} – {res['finished']}.", "", markdown_tables(res)]
    return "\n".join(parts).rstrip() + "\n"


INTRO_END = "never from test labels."


def _current_extra(text: str) -> str:
    """The findings prose of the section already in RESULTS.md (between the intro and the first table)."""
    i = text.find("\n" + HEADING)
    if i < 0:
        return ""
    a = text.find(INTRO_END, i)
    b = text.find("\n### mitbih", i)
    return text[a + len(INTRO_END):b].strip() if 0 <= a < b else ""


def write_section(extra: str | None = None) -> None:
    """Replace (or append) the Quality benchmarks section at the end of RESULTS.md, leaving the rest untouched.
    ``extra`` None keeps the findings prose already there."""
    text = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    if extra is None:
        extra = _current_extra(text)
    i = text.find("\n" + HEADING)
    head = text if i < 0 else text[:i]
    j = -1 if i < 0 else text.find("\n## ", i + 1 + len(HEADING))  # a later section by someone else stays
    tail = "" if j < 0 else text[j:]
    current = "" if i < 0 else text[i + 1:len(text) if j < 0 else j]
    RESULTS.write_text(head.rstrip() + "\n\n" + section(extra, current) + tail)
    print(f"wrote {RESULTS}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("protocol", choices=["all", *CONFIGS, *EXTRA])
    r.add_argument("--data")
    s = sub.add_parser("section")
    s.add_argument("--extra-file", help="Markdown inserted under the heading (findings, targets); default: keep the current one.")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        d = data_dir(a.data)
        for p in ([*CONFIGS, *EXTRA] if a.protocol == "all" else [a.protocol]):
            run(p, d)
    else:
        write_section(Path(a.extra_file).read_text() if a.extra_file else None)


if __name__ == "__main__":
    main()
