"""The house rules, tested rather than promised: who may import whom.

- The emulator checks the uploader, so it must not share its mistakes: it
  imports nothing of the uploader's.
- No stage imports a front end (the CLI, the web page, the Python API, the dlt destination).
- The CLI's start-up does not pay for the web page's framework, nor for dlt.
- Reading and validation (schemas/ included, read as the uploader.schemas it is installed as)
  never import the HTTP layer (the sender).
- Each rule is also broken on purpose in a copy of the tree, to show that it can fail.
- The package has no import cycle.

The imports are read from the source (every ``import`` and ``from`` statement,
including those inside functions), not from what happens to be loaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# schemas/ sits at the top level (the design card's layout) and is installed as uploader.schemas
# (pyproject's package-dir): it is read here as the package it becomes.
SOURCES = {"uploader": "uploader", "schemas": "uploader.schemas"}
FRONT_ENDS = {
    "uploader.cli",
    "uploader.__main__",
    "uploader.web",
    "uploader.web.app",
    "uploader.web.server",
    "uploader.web.workspace",
    "uploader.web.launcher",
    "uploader.api",
    "uploader.dlt_destination",
}
# The package re-exports the Python API, `from uploader import upload_rows`, through a module
# __getattr__: loaded on first use, never by `import uploader` (nor by a stage). These edges are
# left out of the front-end rule, but a loop through them is still a loop.
LAZY = {"uploader": {"uploader.api", "uploader.run"}}
EMULATOR = "uploader.emulator"
# The stages that turn a file into checked rows: they run with no network.
OFFLINE_STAGES = {
    "uploader.read",
    "uploader.validate",
    "uploader.timestamps",
    "uploader.problems",
    "uploader.fields",
    "uploader.matcher",
    "uploader.schemas",
}
HTTP_LAYER = {
    "uploader.sender",
    "uploader.http",
    "uploader.pacing",
    "uploader.live_calls",
    "uploader.auth",
    "uploader.engage_calls",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    top, *rest = path.relative_to(root).with_suffix("").parts
    parts = SOURCES[top].split(".") + rest
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(path, root): path for top in SOURCES for path in sorted((root / top).rglob("*.py"))}


def _typing_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under ``if TYPE_CHECKING:``: names for the type checker, never loaded."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            found.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return found


def imports_of(name: str, path: Path, known: set[str], *, runtime: bool = False) -> set[str]:
    """The package's modules that one module imports (relative imports resolved).

    ``from pkg import mod`` is an edge to ``pkg.mod``; ``from pkg import name`` (a
    name defined by the package's ``__init__``) is an edge to ``pkg`` itself.
    With ``runtime``, imports for the type checker only are left out.
    """
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _typing_only(tree) if runtime else set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            named = [f"{stem}.{alias.name}" for alias in node.names]
            targets = [t for t in named if t in known]
            if len(targets) < len(named):  # some name is the package's own attribute
                targets.append(stem)
        else:
            continue
        for target in targets:
            # the module itself, or the nearest package of the package's that holds it
            while target and target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                found.add(target)
    return found


def build_graph(root: Path = ROOT, *, lazy: bool = False, runtime: bool = False) -> dict[str, set[str]]:
    """Who imports whom; with ``lazy``, also the package's load-on-first-use re-exports; with ``runtime``,
    without the imports made for the type checker only (``if TYPE_CHECKING:``)."""
    found = modules(root)
    known = set(found)
    return {
        name: imports_of(name, path, known, runtime=runtime) - (set() if lazy else LAZY.get(name, set()))
        for name, path in found.items()
    }


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return build_graph()


def emulator_modules(graph) -> list[str]:
    return [name for name in graph if name == EMULATOR or name.startswith(EMULATOR + ".")]


def test_the_graph_is_read(graph):
    # A guard for the tests below: the reader sees real edges.
    assert "uploader.outcome" in graph["uploader.journal"]
    assert "uploader.targets" in graph["uploader.cli"]
    assert emulator_modules(graph)


def emulator_leaks(graph, root: Path = ROOT) -> list[str]:
    leaks = []
    for name in emulator_modules(graph):
        outside = {m for m in graph[name] if m != EMULATOR and not m.startswith(EMULATOR + ".")}
        source = modules(root)[name].read_text(encoding="utf-8")
        if outside or "import uploader" in source or "from uploader" in source:
            leaks.append(f"{name} imports {sorted(outside) or 'uploader'}")
    return leaks


def front_end_imports(graph) -> list[str]:
    return [
        f"{name} imports a front end: {sorted(imported & FRONT_ENDS)}"
        for name, imported in graph.items()
        if name not in FRONT_ENDS and imported & FRONT_ENDS
    ]


def offline_leaks(graph) -> list[str]:
    offline = [n for n in graph if n in OFFLINE_STAGES or n.startswith("uploader.schemas.")]
    return [
        f"{name} reaches {sorted(_reachable(graph, name) & HTTP_LAYER)}"
        for name in offline
        if _reachable(graph, name) & HTTP_LAYER
    ]


def cycles(graph) -> list[str]:
    found = []
    for name in graph:
        for imported in graph[name]:
            # a package importing its own modules (a registry) is not a cycle by itself;
            # one of them reaching back to the package's own names is
            if imported.startswith(name + "."):
                continue
            if name in _reachable(graph, imported):
                found.append(f"cycle: {name} -> {imported} -> ... -> {name}")
    return found


def test_the_emulator_imports_nothing_of_the_uploader(graph):
    # the package's version is not shared either
    assert emulator_leaks(graph) == []


def test_no_stage_imports_a_front_end(graph):
    assert front_end_imports(graph) == []
    assert set(modules()) & FRONT_ENDS == FRONT_ENDS  # every front end named here exists


def test_the_command_line_starts_without_the_web_framework_or_dlt():
    import subprocess
    import sys

    heavy = ("starlette", "uvicorn", "jinja2", "dlt", "sqlalchemy")
    # The Python API is loaded on first use only: `import uploader` costs nothing.
    for start, unwanted in (
        ("import uploader.cli", heavy + ("uploader.api",)),
        ("import uploader", heavy + ("uploader.api", "pandas")),
        ("from uploader import upload_rows", heavy),
    ):
        loaded = subprocess.run(
            [sys.executable, "-c", f"import sys; {start}; print(sorted(m for m in {unwanted!r} if m in sys.modules))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert loaded == "[]", f"{start} loads {loaded}"
    assert (
        "upload_rows"
        in subprocess.run(
            [sys.executable, "-c", "from uploader import upload_rows; print(upload_rows.__name__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def test_reading_and_validation_never_import_the_http_layer(graph):
    assert any(name.startswith("uploader.schemas.") for name in graph)  # schemas/ is read
    assert offline_leaks(graph) == []


def test_there_is_no_import_cycle():
    # A module may name another's class for the type checker only (the reader's CSV and workbook
    # chunkers name the TableReader they are given): that import never runs, so it closes no loop.
    graph = build_graph(lazy=True, runtime=True)
    assert "uploader.read.opener" in graph["uploader.read"]  # the reader's package is read
    assert cycles(graph) == []
    assert "uploader.read.opener" in build_graph(lazy=True)["uploader.read.csvfile"]  # typing imports are seen


# -- the rules can fail: each broken on purpose in a copy of the tree -----------------------------


def _copy_with(tmp_path: Path, path: str, old: str, new: str) -> Path:
    import shutil

    for top in SOURCES:
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / path
    text = target.read_text(encoding="utf-8")
    assert old in text, f"{path} no longer holds {old!r}: update this test"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return tmp_path


def test_a_schema_importing_the_sender_breaks_the_rules(tmp_path):
    root = _copy_with(
        tmp_path,
        "schemas/signals.py",
        "from uploader.fields import",
        "from uploader.sender import Sender  # noqa: F401\nfrom uploader.fields import",
    )
    assert offline_leaks(build_graph(root)) and any(
        "uploader.schemas.signals" in leak for leak in offline_leaks(build_graph(root))
    )
    assert offline_leaks(build_graph()) == []  # the same check on the real tree is clean


def test_the_version_through_the_front_door_is_a_loop(tmp_path):
    # http.py taking the version from the package's __init__, which re-exports the Python API
    # (which reaches http.py): the loop the version module removed.
    root = _copy_with(tmp_path, "uploader/http.py", "from ._version import __version__", "from . import __version__")
    assert any(
        c.startswith("cycle: uploader.http -> uploader ->") for c in cycles(build_graph(root, lazy=True, runtime=True))
    )


def test_the_emulator_importing_the_uploader_breaks_the_rules(tmp_path):
    root = _copy_with(
        tmp_path,
        "uploader/emulator/server.py",
        "from __future__ import annotations",
        "from __future__ import annotations\nfrom uploader._version import __version__",
    )
    assert any(leak.startswith("uploader.emulator.server") for leak in emulator_leaks(build_graph(root), root))


def _reachable(graph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for imported in graph[todo.pop()]:
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_errors_are_worded_in_one_place():
    # `error: message` + `hint: hint` is uploader/messages.py's (Told); a front end that words its own
    # drifts from the others. The emulator is not the uploader, and the second-signal line is written
    # from a signal handler, where nothing may be allocated through the library.
    import re

    worded = re.compile(r"""f?["']error: |hint: \{""")
    own = []
    for path in sorted((ROOT / "uploader").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ("uploader/messages.py",) or relative.startswith("uploader/emulator/"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if worded.search(line) and "os.write(2" not in line:
                own.append(f"{relative}:{number}: {line.strip()}")
    assert not own, "word errors with uploader.messages.told:\n" + "\n".join(own)
