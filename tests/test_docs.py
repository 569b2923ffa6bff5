"""Every code example of the documentation (docs/**/*.md and README.md) runs, so none can drift from the code.

Each page's fenced blocks run in order in one fresh Python process (a page reads like a script: later blocks use
what earlier ones made), in a temporary folder that is also on PYTHONPATH (for the worker processes too):

* ``python`` blocks are executed; one whose first line is ``# file: PATH`` is written to PATH instead (a module
  that later blocks or worker processes import, e.g. an evaluator).
* ``yaml`` blocks that are configs (they have ``space:``) are written (to their ``# file: PATH`` or a name of
  their own) and run as ``nas search FILE`` does, through ``nas.cli.main``; YAML fragments of the groups
  (``goal:``, ``strategy:``, ``run:``) are checked as a record's groups.
* A comment ``# docs-test: n_trials=2, epochs=1`` in a block runs it with those values instead of the ones
  shown (``name=value`` in Python, ``name: value`` in YAML; each must replace something, or the test fails);
  ``# docs-test: check-only (reason)`` only compiles a Python block (loads a YAML config with its checks) where
  running needs what a test machine lacks (GPUs, a Ray cluster, the Fashion-MNIST files).
* A ``text`` block right after a block is that block's output: its first line (``...`` matching anything) must be
  a line the block printed.

``sh`` blocks are not run, but every ``nas ...`` command line in them must parse with the ``nas`` command's own
parser, and every ``make TARGET`` must be a target of the Makefile.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
# pages whose examples train nothing (evaluators, specs, placement): run by `make test-fast` too
FAST = {"concepts/cost.md", "concepts/spaces.md", "concepts/studies.md", "guides/resume.md", "security.md"}
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"#\s*docs-test:\s*(.+?)\s*$", re.MULTILINE)
FILE = re.compile(r"\A#\s*file:\s*(\S+)\s*\n")


@dataclasses.dataclass
class Block:
    lang: str
    code: str
    line: int  # of the opening fence, 1-based
    output: str | None = None  # the first line of the text block that follows, if any


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a page, each with the first line of the ``text`` block that follows it."""
    text = path.read_text()
    out: list[Block] = []
    for m in FENCE.finditer(text):
        lang, code = m.group(1).lower(), m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        if lang == "text":
            if out and out[-1].output is None and out[-1].lang in ("python", "yaml"):
                between = text[text.rfind("```", 0, m.start() - 1) + 3:m.start()]
                if between.strip() == "":  # right after the previous block
                    out[-1].output = code.splitlines()[0] if code.strip() else ""
            continue
        out.append(Block(lang, code, line))
    return out


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT / "docs")) if path.is_relative_to(ROOT / "docs") else path.name


def substitute(block: Block) -> tuple[str, bool]:
    """The block's code with its ``# docs-test:`` substitutions applied, and whether it is check-only."""
    directives = MARKER.findall(block.code)
    code, check_only = MARKER.sub("@@docs-test marker@@", block.code), False  # the markers are not substituted
    for directive in directives:
        if directive.startswith("check-only"):
            check_only = True
            continue
        for item in directive.split(","):
            name, _, value = (p.strip() for p in item.partition("="))
            assert name.isidentifier() and value, f"line {block.line}: bad docs-test directive {item!r}"
            if block.lang == "python":
                pattern, repl = rf"\b{name}=([^,)\s]+)", f"{name}={value}"
                quoted, qrepl = rf"([\"']){name}\1:\s*([^,}}\s]+)", rf"\g<1>{name}\g<1>: {value}"
                code, n1 = re.subn(pattern, repl, code)
                code, n2 = re.subn(quoted, qrepl, code)
                n = n1 + n2
            else:
                code, n = re.subn(rf"\b{name}:\s*([^,}}\s]+)", f"{name}: {value}", code)
            assert n, f"line {block.line}: `# docs-test: {item.strip()}` replaces nothing in the block"
    for directive in directives:
        code = code.replace("@@docs-test marker@@", f"# docs-test: {directive}", 1)
    return code, check_only


def _is_config(code: str) -> bool:
    return re.search(r"^space:", code, re.MULTILINE) is not None


def script(path: Path) -> tuple[str, dict[str, str], list[tuple[Block, str]]]:
    """The Python program that runs a page's blocks, the files to write first, and the blocks it runs (each with
    the marker it prints before running, so that each block's output is found in the process's output)."""
    files: dict[str, str] = {}
    steps: list[str] = []
    ran: list[tuple[Block, str]] = []
    page = _page_id(path)
    for i, block in enumerate(blocks(path)):
        if block.lang not in ("python", "yaml"):
            continue
        code, check_only = substitute(block)
        m = FILE.match(code)
        where = f"{page}:{block.line}"
        if block.lang == "python":
            if m:
                files[m.group(1)] = code
                continue
            body = (f"compile({code!r}, {where!r}, 'exec')" if check_only
                    else f"exec(compile({code!r}, {where!r}, 'exec'), NS)")
        elif _is_config(code):
            name = m.group(1) if m else f"docs-config-{i}.yaml"
            files[name] = code
            body = (f"_check_config({name!r})" if check_only else f"_run_config({name!r}, {where!r})")
        else:
            body = f"_check_fragment({code!r}, {where!r})"
        marker = f"@@docs-test block {i} ({where})@@"
        steps.append(f"print({marker!r}, flush=True)\n{body}\nsys.stdout.flush()")
        ran.append((block, marker))
    program = PRELUDE + "\n".join(steps) + "\nprint('@@docs-test end@@', flush=True)\n"
    return program, files, ran


PRELUDE = textwrap.dedent('''
    import contextlib
    import sys
    import warnings

    import yaml

    NS = {"__name__": "__main__"}


    def _check_config(path):
        from nas.config import load_config

        with contextlib.redirect_stderr(sys.stdout):  # as a terminal shows them: warnings among the output
            load_config(path)


    def _run_config(path, where):
        from nas.cli import main

        with contextlib.redirect_stderr(sys.stdout):
            code = main(["search", path])
        assert code == 0, f"{where}: `nas search {path}` exited with {code}"


    def _check_fragment(text, where):
        from nas.engine.schema import StudyConfig

        data = yaml.safe_load(text)
        assert isinstance(data, dict) and data and set(data) <= {"goal", "strategy", "run", "export"}, (
            f"{where}: a YAML block that is not a config must hold only groups (goal, strategy, run), got {data!r}")
        data.pop("export", None)
        StudyConfig.from_dict({"space": "families", **data})

''')


def _outputs(stdout: str, ran: list[tuple[Block, str]]) -> dict[str, str]:
    """Each block's printed output, by its marker."""
    out: dict[str, str] = {}
    markers = [m for _, m in ran] + ["@@docs-test end@@"]
    for a, b in itertools.pairwise(markers):
        start, end = stdout.find(a), stdout.find(b)
        if start != -1 and end != -1:
            out[a] = stdout[start + len(a):end]
    return out


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in line.split("...")) + r"\s*$", re.MULTILINE)


def run_page(path: Path, tmp_path: Path) -> None:
    program, files, ran = script(path)
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (tmp_path / "docs_page.py").write_text(program)
    env = {k: v for k, v in os.environ.items() if k not in ("NAS_STORAGE", "NAS_ARTIFACTS")}
    env.update({"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "TF_CPP_MIN_LOG_LEVEL": "3",
                "RAY_USAGE_STATS_ENABLED": "0", "KERAS_HOME": str(ROOT / ".keras"), "MPLBACKEND": "Agg"})
    proc = subprocess.run([sys.executable, "docs_page.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, f"{_page_id(path)}: an example failed\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    outputs = _outputs(proc.stdout, ran)
    assert len(outputs) == len(ran), f"{_page_id(path)}: not every block ran:\n{proc.stdout[-3000:]}"
    for block, marker in ran:
        if block.output and not _line_pattern(block.output).search(outputs[marker]):
            raise AssertionError(f"{_page_id(path)}:{block.line}: the output shown after the block begins with\n  "
                                 f"{block.output}\nbut the block printed:\n{outputs[marker][-3000:]}")


def _params() -> list[object]:
    out: list[object] = []
    for path in PAGES:
        if not any(b.lang in ("python", "yaml") for b in blocks(path)):
            continue
        page = _page_id(path)
        marks = [] if page in FAST else [pytest.mark.slow]
        if any(b.lang in ("python", "yaml") and ("Ray(" in b.code or "kind: ray" in b.code) for b in blocks(path)):
            # a page that starts a local Ray instance runs with the Ray tests (make test: --dist loadgroup): the
            # Ray backend's start removes the instances of dead drivers, which a Ray test kills on purpose
            marks.append(pytest.mark.xdist_group("ray"))
        out.append(pytest.param(path, id=page, marks=marks))
    return out


@pytest.mark.parametrize("path", _params())
def test_the_examples_of_a_page_run(path: Path, tmp_path: Path) -> None:
    run_page(path, tmp_path)


# ------------------------------------------------------------------ shell lines: parsed, not run

def _shell_lines(path: Path) -> list[tuple[int, str]]:
    """(line, command) of every ``sh`` block line, comments and leading VAR=value assignments removed."""
    out = []
    for block in blocks(path):
        if block.lang not in ("sh", "bash", "shell", "console"):
            continue
        for k, raw in enumerate(block.code.splitlines()):
            text = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
            text = text.removeprefix("$ ")
            if text:
                out.append((block.line + 1 + k, text))
    return out


def _command(text: str) -> list[str]:
    words = shlex.split(text)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words = words[1:]
    return words


@pytest.mark.parametrize("path", [p for p in PAGES if _shell_lines(p)], ids=_page_id)
def test_every_shell_line_names_real_commands(path: Path) -> None:
    from nas.cli import build_parser

    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    checked = 0
    for line, text in _shell_lines(path):
        words = _command(text)
        if not words:
            continue
        program = Path(words[0]).name
        if program == "nas":
            try:
                build_parser().parse_args(words[1:])
            except SystemExit as exc:
                pytest.fail(f"{_page_id(path)}:{line}: `{text}` does not parse with `nas`'s parser (exit {exc.code})")
            checked += 1
        elif program == "make":
            named = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            missing = [w for w in named if w not in targets]
            assert not missing, f"{_page_id(path)}:{line}: `{text}`: no Makefile target {missing[0]!r}"
            checked += 1
    assert checked, f"{_page_id(path)}: its shell blocks name no `nas` or `make` command to check"


def test_the_harness_reads_markers_outputs_and_files(tmp_path: Path) -> None:
    """The rules above, on a page made here: a substitution, an output check, a file block, a failing output."""
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent('''
        ```python
        # file: helper.py
        VALUE = 7
        ```

        ```python
        import helper
        n_trials = dict(n_trials=30)["n_trials"]  # docs-test: n_trials=2
        print("n_trials", n_trials, helper.VALUE)
        ```

        ```text
        n_trials ... 7
        ```
    '''))
    program, files, ran = script(page)
    assert list(files) == ["helper.py"] and len(ran) == 1 and ran[0][0].output == "n_trials ... 7"
    assert "n_trials=2" in program and "n_trials=30" not in program
    work = tmp_path / "work"
    work.mkdir()
    run_page(page, work)
    page.write_text(page.read_text().replace("n_trials ... 7", "n_trials 30 7"))
    with pytest.raises(AssertionError, match=r"the output shown after the block begins with\n  n_trials 30 7"):
        run_page(page, work)
    bad = tmp_path / "bad.md"
    bad.write_text("```python\nx = 1  # docs-test: n_trials=2\n```\n")
    with pytest.raises(AssertionError, match=r"`# docs-test: n_trials=2` replaces nothing"):
        script(bad)
