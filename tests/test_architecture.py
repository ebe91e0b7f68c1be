"""The package's shape: no import cycles (imports inside functions included),
and ``import toolkit`` stays light."""
import ast
import pathlib
import subprocess
import sys

import toolkit

ROOT = pathlib.Path(toolkit.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the toolkit modules it imports, anywhere in its body [names]."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node)
                # "from . import x" names a submodule when x is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("toolkit") and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            # a package's __init__ re-exporting its submodules is not a cycle
            if dep == "toolkit" or node.startswith(dep + ".") or dep.startswith(node + "."):
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walker_sees_a_cycle():
    assert _cycle({"toolkit.a": {"toolkit.b"}, "toolkit.b": {"toolkit.a"}}) is not None
    assert _cycle({"toolkit.a": {"toolkit.b"}, "toolkit.b": set()}) is None


def test_import_toolkit_loads_neither_pyplot_nor_ipywidgets():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import toolkit"],
                         capture_output=True, text=True, check=True).stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in out.splitlines() if "|" in line}
    assert "matplotlib.pyplot" not in loaded and "ipywidgets" not in loaded
    import toolkit as tk
    assert tk.plot.__name__ == "toolkit.plot" and callable(tk.explore)


def test_no_public_function_shadows_a_submodule():
    # tk.rescue once was both the function and (after "import toolkit.rescue")
    # the module, depending on import order: the modules behind functions are private
    import importlib
    import inspect
    import pkgutil

    packages = ["toolkit"] + [m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit.")
                              if m.ispkg]
    lazy = {name for name, (_, attr) in toolkit._LAZY.items() if attr is not None}
    for name in packages:
        package = importlib.import_module(name)
        submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
        public = {n for n in dir(package) if not n.startswith("_")} & submodules
        own_lazy = lazy if package is toolkit else set()
        shadowing = sorted(n for n in public
                           if n in own_lazy or not inspect.ismodule(getattr(package, n)))
        assert not shadowing, f"{name}.X is not the module {name}.X: {shadowing}"
        for sub in public - own_lazy:                 # e.g. toolkit.plot: the module itself
            assert getattr(package, sub) is importlib.import_module(f"{name}.{sub}")


def test_the_constants_of_private_modules_have_a_public_home():
    from toolkit import _advise, _rescue, _sweep

    assert toolkit.rescue is _rescue.rescue and toolkit.sweep is _sweep.sweep
    assert toolkit.RESCUE_CLASSES is _rescue.CLASSES
    assert toolkit.RESCUE_CLASS_HELP is _rescue.CLASS_HELP
    assert toolkit.SWEEP_MAX_POINTS == _sweep.MAX_POINTS and toolkit.plan is _sweep.plan
    assert toolkit.ADVISE_LAYERS is _advise.LAYERS
    assert set(toolkit.RESCUE_CLASS_HELP) == set(toolkit.RESCUE_CLASSES)
