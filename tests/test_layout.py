"""The house rules, tested rather than promised: who may import whom.

- The emulator checks the uploader, so it must not share its mistakes: it
  imports nothing of the uploader's.
- No stage imports a front end (the CLI, the web page, the Python API, the dlt destination).
- The CLI's start-up does not pay for the web page's framework, nor for dlt.
- Reading and validation never import the HTTP layer (the sender).
- The package has no import cycle.

The imports are read from the source (every ``import`` and ``from`` statement,
including those inside functions), not from what happens to be loaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "uploader"
FRONT_ENDS = {"uploader.cli", "uploader.__main__", "uploader.web", "uploader.web.app", "uploader.web.server",
              "uploader.web.workspace", "uploader.api", "uploader.dlt_destination"}
# The package re-exports the Python API, `from uploader import upload_rows`, through a module
# __getattr__: loaded on first use, never by `import uploader` (nor by `from . import x` in a stage).
LAZY = {"uploader": {"uploader.api", "uploader.run"}}
EMULATOR = "uploader.emulator"
# The stages that turn a file into checked rows: they run with no network.
OFFLINE_STAGES = {"uploader.read", "uploader.validate", "uploader.timestamps", "uploader.problems",
                  "uploader.fields", "uploader.matcher"}
HTTP_LAYER = {"uploader.sender", "uploader.http", "uploader.pacing", "uploader.live_calls", "uploader.auth",
              "uploader.engage_calls"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that one module imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # "from . import x" and "from .targets import signals" may name modules too
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # the module itself, or the nearest package of the package's that holds it
            while target and target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) - LAZY.get(name, set()) for name, path in found.items()}


def emulator_modules(graph) -> list[str]:
    return [name for name in graph if name == EMULATOR or name.startswith(EMULATOR + ".")]


def test_the_graph_is_read(graph):
    # A guard for the tests below: the reader sees real edges.
    assert "uploader.outcome" in graph["uploader.journal"]
    assert "uploader.targets" in graph["uploader.cli"]
    assert emulator_modules(graph)


def test_the_emulator_imports_nothing_of_the_uploader(graph):
    for name in emulator_modules(graph):
        outside = {m for m in graph[name] if m != EMULATOR and not m.startswith(EMULATOR + ".")}
        # the package's __init__ holds only the version string; even that is not shared
        assert not outside, f"{name} imports {sorted(outside)}"
        source = modules()[name].read_text(encoding="utf-8")
        assert "import uploader" not in source and "from uploader" not in source, name


def test_no_stage_imports_a_front_end(graph):
    for name, imported in graph.items():
        if name in FRONT_ENDS:
            continue
        assert not imported & FRONT_ENDS, f"{name} imports a front end: {sorted(imported & FRONT_ENDS)}"
    assert set(modules()) & FRONT_ENDS == FRONT_ENDS  # every front end named here exists


def test_the_command_line_starts_without_the_web_framework_or_dlt():
    import subprocess
    import sys

    heavy = ("starlette", "uvicorn", "jinja2", "dlt", "sqlalchemy")
    # The Python API is loaded on first use only: `import uploader` costs nothing.
    for start, unwanted in (("import uploader.cli", heavy + ("uploader.api",)),
                            ("import uploader", heavy + ("uploader.api", "pandas")),
                            ("from uploader import upload_rows", heavy)):
        loaded = subprocess.run([sys.executable, "-c", f"import sys; {start}; "
                                 f"print(sorted(m for m in {unwanted!r} if m in sys.modules))"],
                                capture_output=True, text=True, check=True).stdout.strip()
        assert loaded == "[]", f"{start} loads {loaded}"
    assert "upload_rows" in subprocess.run([sys.executable, "-c", "from uploader import upload_rows; "
                                            "print(upload_rows.__name__)"],
                                           capture_output=True, text=True, check=True).stdout


def test_reading_and_validation_never_import_the_http_layer(graph):
    for name in OFFLINE_STAGES:
        reachable = _reachable(graph, name)
        assert not reachable & HTTP_LAYER, f"{name} reaches {sorted(reachable & HTTP_LAYER)}"


def test_there_is_no_import_cycle(graph):
    for name in graph:
        for imported in graph[name]:
            # a package importing its own modules (registry) is not a cycle
            if imported.startswith(name + "."):
                continue
            back = _reachable(graph, imported)
            assert name not in back or name.startswith(imported + "."), f"cycle: {name} -> {imported} -> ... -> {name}"


def _reachable(graph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for imported in graph[todo.pop()]:
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen
