"""The layout is a contract: layers only look down, and no import hides in a function to dodge a
cycle.

recsys (library) <- training (jobs, tracking, reports, MLflow model) <- experiments (sweeps,
comparisons, simulation); recsys <- serving; the cli package on top, imported by nothing. The
contracts live in pyproject.toml ([tool.importlinter]); a function-level import is allowed for
third-party libraries that are heavy or optional (mlflow, matplotlib, pyspark, fastapi, faiss,
...), never for the project's own packages.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("recsys", "training", "experiments", "serving", "cli")
#: First-party imports that stay inside a function, and why (none of them dodges a cycle).
ALLOWED = {
    # the HTTP app needs FastAPI, the optional `serve` extra: `recsys train` must work without it
    ("cli/serve.py", "serving.app"),
}


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    got = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert got.returncode == 0, got.stdout + got.stderr
    assert "0 broken" in got.stdout


def _function_level_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    yield from ((inner.lineno, alias.name) for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                    yield inner.lineno, inner.module


def test_no_first_party_import_inside_a_function():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for package in OURS
        for path in sorted((ROOT / package).rglob("*.py"))
        # MLflow runs the pyfunc file as code: its imports happen when MLflow loads the model
        if path.name != "pyfunc_model.py"
        for line, name in _function_level_imports(path)
        if name.split(".")[0] in OURS and (str(path.relative_to(ROOT)), name) not in ALLOWED
    ]
    assert not found, "\n".join(found)


def test_nothing_imports_the_command_line():
    found = [
        f"{path.relative_to(ROOT)}: {name}"
        for package in OURS[:-1]
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        if name.split(".")[0] == "cli"
    ]
    assert not found, "\n".join(found)
