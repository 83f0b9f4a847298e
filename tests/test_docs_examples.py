"""Every example in README.md and docs/*.md runs as written (the promise of "docs with a runnable example").

Python: the ```python blocks of one page run in order, in one namespace (a later block uses the names of
an earlier one), in a scratch folder, as a user pasting them one after the other would. A Python heredoc
in a bash block (``python - <<'PY'`` ... ``PY``) runs in its place, as a program of its own (a fresh
namespace, the same folder: the files it writes are there for the blocks after it). A bash block that
makes its own data that way, and otherwise runs only ``ganad`` commands (not ``serve`` or ``stream``) and
``head`` / ``cat`` / ``ls``, runs its ``ganad`` commands too, in process, each one required to succeed.
A block that raises fails the test, naming the page and the line; so does a warning a block's own call
raises (an example that the library warns about teaches what it warns against).

Markers, on the last non-blank line before a block's opening fence (docs/conventions.md, "Examples in the
documentation"):

- ``<!-- no-run: REASON -->``: the block is not run (a running server, several processes, a GPU);
- ``<!-- needs-data: NAME -->``: the block reads the reference data ``$GANAD_SHARED_DATA/NAME`` (mitdb,
  mnist, adbench, nab); it runs with ``GANAD_MITBIH_DIR`` / ``GANAD_DATA_DIR`` pointing there, in a copy of
  the namespace (the blocks after it never depend on it), and the page's test is reported skipped, with
  the reason, when the data is absent (after its other blocks ran).

Bash: every ``ganad ...`` command of a bash block (also after ``&&`` or ``|``, and ``torchrun ... -m
ganad``) is parsed by the real command's parser, without running it: the command and every option must
exist, option values must convert (integers, numbers, and the methods, thresholds and compositions the
library accepts), no argument is left over, and the required ones are there. The examples in each
command's ``--help`` epilog are checked the same way, and ``ganad CMD --option`` fragments in running
text name options the command has.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer

from conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
DATA_SETS = ("mitdb", "mnist", "adbench", "nab")  # the folders of the reference data ($GANAD_SHARED_DATA)
# modules of the optional extras (pyproject.toml): a block that imports a missing one is skipped
OPTIONAL_MODULES = {"onnx", "onnxruntime", "optuna", "optuna_dashboard", "fastapi", "uvicorn", "orjson", "httpx", "pyod", "tqdm"}
MARKER = re.compile(r"^\s*<!--\s*(no-run|needs-data)\s*:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^\s*```(\S*)")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
PYTHON_HEREDOC = re.compile(r"^\s*python3?\s+-\s*<<-?\s*(['\"]?)(\w+)\1\s*$")
SHELL_OK = {"head", "cat", "ls"}  # commands a runnable bash block may hold beside ganad and Python heredocs

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class Block:
    path: str      # page, relative to the repository
    line: int      # line of the block's first line of code (1-based)
    lang: str      # the fence's info string: 'python', 'bash', ... ('' for none)
    code: str
    marker: tuple[str, str] | None = None  # ('no-run', reason) or ('needs-data', names)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks_of(text: str, path: str) -> list[Block]:
    """The fenced blocks of a markdown text, in order (indented fences of list items too, dedented), each
    with the marker comment on the last non-blank line before its fence."""
    lines = text.splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = next((j for j in range(i + 1, len(lines)) if re.match(r"^\s*```\s*$", lines[j])), None)
        assert j is not None, f"{path}:{i + 1}: a code block is never closed"
        prev = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        mk = MARKER.match(prev)
        body = textwrap.dedent("\n".join(lines[i + 1:j])) + "\n"
        out.append(Block(path, i + 2, m.group(1).lower(), body, (mk.group(1), mk.group(2)) if mk else None))
        i = j + 1
    return out


def _doc_blocks(path: str) -> list[Block]:
    return blocks_of((REPO / path).read_text(encoding="utf-8"), path)


def _is_shell(b: Block) -> bool:
    return b.lang in ("bash", "sh", "shell")


def _names(spec: str) -> list[str]:
    return [n for n in re.split(r"[\s,]+", spec) if n]


# ------------------------------------------------------------------------------------------ shell scripts
def shell_steps(script: str, first_line: int = 1) -> list[tuple[str, object, int]]:
    """A shell script as steps, in order: ``("python", code, line)`` for a Python heredoc, ``("ganad",
    args, line)`` for a ganad command (``ganad ...``, ``python -m ganad ...``, ``torchrun [...] -m ganad
    ...``), ``("other", tokens, line)`` for any other command, ``("background", [], line)`` for an ``&``.
    Line continuations are joined, comments dropped, other heredocs' bodies skipped, and commands split at
    ``&&``, ``||``, ``|``, ``;`` and ``&``; ``VAR=value`` before a command is dropped."""
    lines: list[tuple[int, str]] = []  # (line number, logical line): continuations joined
    for n, text in enumerate(script.splitlines(), first_line):
        if lines and lines[-1][1].endswith("\\"):
            lines[-1] = (lines[-1][0], lines[-1][1][:-1] + " " + text)
        else:
            lines.append((n, text))
    steps: list[tuple[str, object, int]] = []
    k = 0
    while k < len(lines):
        lineno, line = lines[k]
        h = HEREDOC.search(line)
        if h:
            end = next((e for e in range(k + 1, len(lines)) if lines[e][1].strip() == h.group(2)), None)
            assert end is not None, f"line {lineno}: the heredoc {h.group(2)} is never closed"
            if PYTHON_HEREDOC.match(line):
                steps.append(("python", "\n".join(t for _, t in lines[k + 1:end]) + "\n", lineno + 1))
                k = end + 1
                continue
            body_end = end
        else:
            body_end = k
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        lex.commenters = "#"
        cmd: list[str] = []
        for tok in [*lex, ";"]:
            if tok and set(tok) <= set(";&|"):
                while cmd and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", cmd[0]):
                    cmd.pop(0)
                if cmd and cmd[0] == "ganad":
                    steps.append(("ganad", cmd[1:], lineno))
                elif cmd and cmd[0] in ("python", "python3", "torchrun") and "-m" in cmd and cmd[cmd.index("-m") + 1:][:1] == ["ganad"]:
                    steps.append(("ganad", cmd[cmd.index("-m") + 2:], lineno))
                elif cmd:
                    steps.append(("other", cmd, lineno))
                if tok == "&":
                    steps.append(("background", [], lineno))
                cmd = []
            else:
                cmd.append(tok)
        k = body_end + 1
    return steps


def ganad_invocations(script: str) -> list[list[str]]:
    return [list(args) for kind, args, _ in shell_steps(script) if kind == "ganad"]


def runs_its_commands(steps) -> bool:
    """A shell block that makes its own data (a Python heredoc) and otherwise runs ganad commands that
    end by themselves and a few harmless ones: the test runs it whole."""
    return (any(k == "python" for k, _, _ in steps)
            and all(k == "python" or (k == "ganad" and a[:1] not in (["serve"], ["stream"])) or (k == "other" and a[0] in SHELL_OK)
                    for k, a, _ in steps))


# ----------------------------------------------------------------------------------------------- running
def run_blocks(blocks: list[Block], monkeypatch, after=None) -> tuple[int, list[str]]:
    """Run a page's Python blocks, the Python heredocs of its shell blocks and the commands of its
    self-contained shell blocks, in order, in the current folder; return how many pieces ran (blocks,
    heredocs, commands) and why the blocks that needed absent reference data did not run. ``after``:
    {(lang, n): check}, called with the namespace after the n-th Python block, or with the folder after
    the n-th shell block that ran its commands; a check whose block never ran (the page changed) fails."""
    from typer.testing import CliRunner

    from ganad.cli import app

    ns: dict = {"__name__": "__main__"}
    skipped: list[str] = []
    n_python = n_shell = -1
    ran = 0
    after = after or {}
    checked: set = set()
    for b in blocks:
        if b.lang == "python":
            n_python += 1
        if b.lang != "python" and not _is_shell(b) or b.marker and b.marker[0] == "no-run":
            continue
        if _is_shell(b):
            steps = shell_steps(b.code, b.line)
            whole = runs_its_commands(steps)
            for kind, what, line in steps:
                if kind == "python":
                    _exec(str(what), f"{b.path}:{line}", {"__name__": "__main__"})
                    ran += 1
                elif kind == "ganad" and whole:
                    ran += 1
                    r = CliRunner().invoke(app, list(what))
                    assert r.exit_code == 0, f"{b.path}:{line}: ganad {shlex.join(what)} exited {r.exit_code}:\n{r.output[-3000:]}"
            if whole:
                n_shell += 1
                if ("bash", n_shell) in after:
                    after["bash", n_shell](None)
                    checked.add(("bash", n_shell))
            continue
        scope = ns
        with monkeypatch.context() as mp:
            if b.marker and b.marker[0] == "needs-data":
                missing = [n for n in _names(b.marker[1]) if not (SHARED_DATA / n).is_dir()]
                if missing:
                    skipped.append(f"{b.where} needs the reference data {', '.join(missing)} (not under {SHARED_DATA}; set GANAD_SHARED_DATA)")
                    continue
                mp.setenv("GANAD_DATA_DIR", str(SHARED_DATA))
                mp.setenv("GANAD_MITBIH_DIR", str(SHARED_DATA / "mitdb"))
                scope = dict(ns)
            _exec(b.code, b.where, scope)
            ran += 1
        if ("python", n_python) in after:
            after["python", n_python](scope)
            checked.add(("python", n_python))
    missed = set(after) - checked - ({("python", n) for n in range(n_python + 1)} if skipped else set())
    assert not missed, f"result checks {sorted(missed)} found no block of that number that ran (the page changed: renumber AFTER)"
    return ran, skipped


def _exec(code: str, where: str, scope: dict) -> None:
    try:
        with warnings.catch_warnings():
            # a warning attributed to a line of the block (it runs as __main__) fails it: the example does
            # what the library warns against (README's and docs/scoring.md's fpr=0.01 on 60 / 80 normal rows did)
            warnings.filterwarnings("error", category=UserWarning, module="__main__")
            # (but as pyproject.toml's filterwarnings: a few examples train on fewer rows than a held-out slice needs)
            warnings.filterwarnings("ignore", message=".*too few for a held-out slice", category=UserWarning)
            exec(compile(code, where, "exec"), scope)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL_MODULES:
            pytest.skip(f"{where} needs the optional module {exc.name} (pip install -e '.[test]')")
        raise


# what the text around an example says of its result
def _multiview_first(ns):
    """The synthetic two-view example finds its 10 odd beats, each in the view that shows it."""
    pred, views = ns["mv"].predict(ns["test"]), ns["views"]
    assert pred[50:].mean() >= 0.8 and pred[:50].mean() <= 0.1
    assert views["beat"][50:55].mean() > views["rhythm"][50:55].mean()
    assert views["rhythm"][55:].mean() > views["beat"][55:].mean()


def _performance_runners(ns):
    from ganad.runtime import native
    assert ns["runners"]["eager"] == "eager" and ns["runners"]["gemm"] == "gemm"
    assert ns["runners"]["native"] == ("native" if native.available() else "gemm")


def _scoring_maps(ns):
    """The anomaly maps peak where the anomalies were put."""
    assert set(np.argsort(ns["series_map"])[-5:]) == {40, 41, 42, 43, 44}
    assert np.argmax(ns["image_map"].mean(1)) == 2


def _image_folder_scores(_):
    """`ganad score` of a folder: a `file` column first, the image's name."""
    scores = pd.read_csv("scores.csv")
    assert list(scores.columns) == ["file", "index", "score", "label", "threshold"]
    assert scores["file"][0] == "0000_digit0.png" and len(scores) == 20 and np.load("maps.npy").shape == (20, 1, 8, 8)


def _series_cli_events(_):
    """The raw-CSV example finds the injected anomaly (rows 1200-1230) as its one event."""
    events = pd.read_csv("machine_scores.events.csv")
    assert len(events) == 1 and events["start"][0] <= 1200 and events["end"][0] >= 1230
    assert events["channels"][0].startswith("pressure")
    m = json.loads(Path("machine-eval/metrics.json").read_text())
    assert m["event_f1"] == 1.0 and m["point_auroc"] > 0.99


AFTER = {"docs/multiview.md": {("python", 0): _multiview_first},
         "docs/performance.md": {("python", 1): _performance_runners},
         "docs/scoring.md": {("python", 2): _scoring_maps},
         "docs/conventions.md": {("bash", 0): _image_folder_scores},
         "docs/series.md": {("bash", 0): _series_cli_events}}


@pytest.fixture
def clean_state():
    """What a page's example may change for the rest of the session: methods it registers, torch's
    default dtype and thread count, the runtime's choice."""
    import ganad.detectors  # noqa: F401  (registers the built-in methods: they stay)
    from ganad import runtime
    from ganad.registry import DETECTORS, unregister
    before = set(DETECTORS)
    dtype, threads, chosen = torch.get_default_dtype(), torch.get_num_threads(), list(runtime._CHOSEN)
    yield
    for name in set(DETECTORS) - before:
        unregister(name)
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
    runtime._CHOSEN[:] = chosen  # a `runtime.use(kind)` called as a function stays in force otherwise


def _has_python(path: str) -> bool:
    """The page has Python to run (a block or a heredoc not marked no-run)."""
    return any(not (b.marker and b.marker[0] == "no-run")
               and (b.lang == "python" or _is_shell(b) and any(k == "python" for k, _, _ in shell_steps(b.code))) for b in _doc_blocks(path))


@pytest.mark.parametrize("path", [p for p in DOC_FILES if _has_python(p)])
def test_examples_run(path, tmp_path, monkeypatch, clean_state):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    ran, skipped = run_blocks(_doc_blocks(path), monkeypatch, AFTER.get(path))
    assert ran > 0, f"{path}: no example ran"
    if skipped:
        pytest.skip("; ".join(skipped))


def test_a_failing_block_fails_and_markers_are_honoured(tmp_path, monkeypatch):
    """The runner itself: a block that raises fails (its page and line in the traceback), names flow
    from block to block, ``no-run`` blocks are left out, a ``needs-data`` block's names stay its own, a
    heredoc writes into the same folder, and a failing ganad command of a self-contained block fails."""
    monkeypatch.chdir(tmp_path)
    mitbih_dir = os.environ.get("GANAD_MITBIH_DIR")
    md = ("```python\na = 1\n```\n\n<!-- no-run: a pretend server -->\n```python\nraise RuntimeError('ran')\n```\n"
          "<!-- needs-data: mitdb -->\n\n```python\nb = a + 1\n```\n"
          "- item\n\n  ```bash\n  python - <<'PY'\n  open('h.txt', 'w').write('x')\n  PY\n  ganad --version\n  ```\n"
          "```python\nassert 'b' not in globals() and open('h.txt').read() == 'x'\nc = a + 1\nassert c == 3, 'wrong'\n```\n")
    blocks = blocks_of(md, "fake.md")
    assert [(b.lang, b.marker and b.marker[0]) for b in blocks] == [
        ("python", None), ("python", "no-run"), ("python", "needs-data"), ("bash", None), ("python", None)]
    with pytest.raises(AssertionError, match="wrong") as info:
        run_blocks(blocks, monkeypatch)
    assert any(tb.frame.code.raw.co_filename == blocks[-1].where for tb in info.traceback)
    assert os.environ.get("GANAD_MITBIH_DIR") == mitbih_dir  # put back after the needs-data block
    bad = blocks_of("```bash\npython - <<'PY'\nopen('t.csv', 'w').write('a\\n1\\n')\nPY\nganad score no-model/ t.csv -o s.csv\n```\n", "bad.md")
    with pytest.raises(AssertionError, match=r"bad.md:5: ganad score no-model/ t.csv -o s.csv exited 2"):
        run_blocks(bad, monkeypatch)
    warns = blocks_of("```python\nimport warnings\nwarnings.warn('an example the library warns about')\n```\n", "warns.md")
    with pytest.raises(UserWarning, match="an example the library warns about") as info:
        run_blocks(warns, monkeypatch)
    assert any(tb.frame.code.raw.co_filename == "warns.md:2" for tb in info.traceback)


def test_markers_are_few_and_each_gives_a_reason():
    """The no-run exclusions stay few, and each says why; needs-data names a folder of the reference data."""
    no_run = []
    for path in DOC_FILES:
        text = (REPO / path).read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if "no-run" in line or "needs-data" in line:
                assert MARKER.match(line) or path == "docs/conventions.md", f"{path}:{n}: a marker not in the form <!-- no-run: REASON -->"
        for b in _doc_blocks(path):
            if b.marker and b.marker[0] == "no-run":
                assert len(b.marker[1].split()) >= 3, f"{b.where}: no-run without a reason"
                no_run.append(b.where)
            if b.marker and b.marker[0] == "needs-data":
                assert _names(b.marker[1]) and set(_names(b.marker[1])) <= set(DATA_SETS), f"{b.where}: needs-data names {b.marker[1]!r}"
    assert len(no_run) <= 6, no_run
    assert sum(b.lang == "python" for p in DOC_FILES for b in _doc_blocks(p)) >= 35  # the extraction sees the pages' blocks


# ----------------------------------------------------------------------------------- ganad command lines
def _cli():
    from ganad.cli import app
    return typer.main.get_command(app)


def check_ganad_args(args: list[str], where: str) -> None:
    """Parse ``ganad ARGS`` with the real command's parser and convert every value, without running the
    command: the command and its options exist, values convert, the required arguments are there and
    none is left over. (No option of ganad checks that a path exists, and no command has a callback
    that acts while parsing.) Options typed as text whose values the library checks later (``--method``,
    ``--threshold``, ``--compose``) are checked against what it accepts."""
    from ganad.cli import METHOD_NAMES
    from ganad.scoring.calibration import COMPOSE, THRESHOLDS
    group = _cli()
    assert args, f"{where}: 'ganad' without a command"
    if args[0].startswith("-"):
        known = {o for p in group.params for o in p.opts} | {"--help"}
        assert {a for a in args if a.startswith("-")} <= known, f"{where}: ganad {shlex.join(args)}: not an option of ganad ({sorted(known)})"
        return
    cmd = group.commands.get(args[0])
    assert cmd is not None, f"{where}: ganad {args[0]}: no such command ({', '.join(sorted(group.commands))})"
    assert "--help" not in args, f"{where}: ganad {shlex.join(args)}: --help is not checked here"
    try:
        params = cmd.make_context(args[0], list(args[1:]), parent=group.context_class(group, info_name="ganad")).params
    except Exception as exc:  # the parser's UsageError / BadParameter (typer's own copy of click's)
        message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
        raise AssertionError(f"{where}: ganad {shlex.join(args)}: {message}") from None
    for name, allowed in (("method", METHOD_NAMES), ("threshold", THRESHOLDS), ("compose", COMPOSE)):
        if params.get(name) is not None and cmd.name != "benchmark":  # benchmark's --compose: method or default
            assert params[name] in allowed, f"{where}: ganad {shlex.join(args)}: --{name} {params[name]} is not one of {sorted(allowed)}"


def _ganad_lines(path: str) -> list[tuple[list[str], str]]:
    return [(list(args), f"{path}:{line}") for b in _doc_blocks(path) if _is_shell(b)
            for kind, args, line in shell_steps(b.code, b.line) if kind == "ganad"]


@pytest.mark.parametrize("path", [p for p in DOC_FILES if _ganad_lines(p)])
def test_ganad_command_lines_name_real_options(path):
    lines = _ganad_lines(path)
    for args, where in lines:
        check_ganad_args(args, where)  # raises AssertionError naming the line and the parser's complaint
    assert lines, f"{path}: no ganad command line found"


def test_help_examples_name_real_options():
    """The 'Example:' lines that every command's --help shows."""
    seen = set()
    for name, cmd in _cli().commands.items():
        for args in ganad_invocations(cmd.epilog or ""):
            check_ganad_args(args, f"ganad {name} --help")  # raises AssertionError naming the example
            seen.add(name)
    assert len(seen) >= 5, f"only {sorted(seen)} have 'Example:' lines in --help that the extraction found"


def test_inline_ganad_commands_name_real_options():
    """`ganad CMD --option ...` in running text (often a fragment: no data, no -o): the command and every
    option it names exist (``fit/score/calibrate`` names several commands)."""
    group = _cli()
    n = 0
    for path in DOC_FILES:
        text = re.sub(r"^\s*```.*?^\s*```", "", (REPO / path).read_text(encoding="utf-8"), flags=re.S | re.M)
        for span in re.findall(r"`(ganad [^`]+)`", text):
            for args in ganad_invocations(span):
                flags = [a.split("=")[0] for a in args if a.startswith("-") and a != "-" and not re.match(r"^-\d", a)]
                if args[:1] == ["..."]:  # `ganad ...`: a command in general
                    continue
                if not args or args[0].startswith("-"):
                    known = {o for p in group.params for o in p.opts} | {"--help"}
                    assert set(flags) <= known, f"{path}: `{span}`: not an option of ganad"
                    continue
                for name in args[0].split("/"):
                    cmd = group.commands.get(name)
                    assert cmd is not None, f"{path}: `{span}`: no command {name!r}"
                    known = {o for p in cmd.get_params(group.context_class(cmd)) for o in (*p.opts, *p.secondary_opts)}
                    assert not set(flags) - known, f"{path}: `{span}`: ganad {name} has no option {sorted(set(flags) - known)}"
                    n += 1
    assert n > 50


def test_the_command_check_can_fail():
    with pytest.raises(AssertionError, match="No such option"):
        check_ganad_args(["fit", "train.csv", "-o", "m/", "--epoch", "3"], "here")
    with pytest.raises(AssertionError, match="no such command"):
        check_ganad_args(["fitt", "train.csv"], "here")
    with pytest.raises(AssertionError, match="--threshold mccc is not one of"):
        check_ganad_args(["calibrate", "m/", "v.csv", "--threshold", "mccc"], "here")
    with pytest.raises(AssertionError, match="--method fanogn is not one of"):
        check_ganad_args(["fit", "t.csv", "-o", "m/", "--method", "fanogn"], "here")
    with pytest.raises(AssertionError, match="Missing option"):
        check_ganad_args(["fit", "train.csv"], "here")
    with pytest.raises(AssertionError, match="valid integer"):
        check_ganad_args(["fit", "train.csv", "-o", "m/", "--epochs", "3.5"], "here")
    with pytest.raises(AssertionError, match="extra argument"):
        check_ganad_args(["export", "m/", "x.csv", "-o", "m.onnx"], "here")
    script = ("A=1 ganad fit a.csv -o m/ && ganad score m/ b.csv -o s.csv  # --nope\n"
              "torchrun --nproc-per-node 2 -m ganad fit t.csv \\\n  -o m/\npython - <<'PY'\nganad nope\nPY\n"
              "cat <<EOF > x\nganad nope\nEOF\nganad serve m/ &\nhead -3 s.csv\n")
    assert ganad_invocations(script) == [
        ["fit", "a.csv", "-o", "m/"], ["score", "m/", "b.csv", "-o", "s.csv"], ["fit", "t.csv", "-o", "m/"], ["serve", "m/"]]
    steps = shell_steps(script)
    assert [k for k, _, _ in steps] == ["ganad", "ganad", "ganad", "python", "other", "ganad", "background", "other"]
    assert steps[3] == ("python", "ganad nope\n", 5) and steps[5][2] == 10 and not runs_its_commands(steps)
    assert runs_its_commands([s for s in steps if s[0] != "background" and s[1][:1] != ["serve"] and s[1][:1] != ["cat"]])
