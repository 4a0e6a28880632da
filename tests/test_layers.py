"""The package's layers: every import, at the top of a module or inside a function, runs down (STYLE.md)."""

import ast
import graphlib
from pathlib import Path

import gradsel_cli

PACKAGE = Path(gradsel_cli.__file__).parent

# Each wing (a folder, or a module at the top) and its layer: a module may import only from lower layers, or from
# its own wing. The network core is below the sources, the sources below the configuration (their options are its
# fields), and all three below the training.
LAYERS = {
    **dict.fromkeys(("kernels", "choices", "fields", "seeding", "text", "interrupts", "papers"), 0),
    **dict.fromkeys(("core", "data"), 1),
    "sources": 2,
    "config": 3,
    **dict.fromkeys(("numerics", "lab", "sources_study"), 4),
    **dict.fromkeys(("runs", "render"), 5),
    "analysis": 6,
    "cli": 7,
    "__main__": 8,
}


def _module(path: Path) -> tuple[str, ...]:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(path: Path) -> set[tuple[str, ...]]:
    """Every module of the package that `path` imports, anywhere in it (inside functions too), as parts below the
    package: ("core", "network"), ("config",)."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else ()))
            elif node.module and node.module.split(".")[0] == "gradsel_cli":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            for alias in node.names:  # `from . import network`: the module itself, where it is one
                sub = (*target, alias.name)
                is_module = (PACKAGE.joinpath(*sub).with_suffix(".py")).exists() or PACKAGE.joinpath(*sub).is_dir()
                found.add(sub if is_module else target)
        elif isinstance(node, ast.Import):
            found |= {tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "gradsel_cli"}
    return {t for t in found if t}


def _graph() -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    return {_module(p): imports(p) for p in sorted(PACKAGE.rglob("*.py")) if p != PACKAGE / "__init__.py"}


def test_every_wing_has_a_layer():
    wings = {m[0] for m in _graph() if m}
    assert wings == set(LAYERS)


def test_every_import_runs_down_a_layer_or_stays_in_its_wing():
    up = []
    for module, targets in _graph().items():
        for target in targets:
            if target[0] != module[0] and LAYERS[target[0]] >= LAYERS[module[0]]:
                up.append(f"{'/'.join(module)} imports {'.'.join(target)}")
    assert up == []


def test_no_modules_import_each_other_in_a_circle_not_even_inside_functions():
    graph = _graph()
    known = set(graph)
    # a module's import of a package is one of its __init__.py
    graphlib.TopologicalSorter(
        {m: {t for t in targets if t in known and t != m} for m, targets in graph.items()}
    ).prepare()


def test_the_checks_see_an_import_inside_a_function():
    assert ("core", "network") in imports(PACKAGE / "sources" / "analytic.py")  # inside gradient()
    assert ("sources",) in imports(PACKAGE / "config.py")
    assert not any(t[0] in {"numerics", "config", "sources"} for t in imports(PACKAGE / "core" / "network.py"))
