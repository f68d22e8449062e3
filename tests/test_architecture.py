"""The house keeps its shape: every import in ppvad_jax/ and launch/ runs down the layers of
ARCHITECTURE.md, never up, and privacy/ never reaches into models/."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

# What each package may import from the project (itself always). A middle-layer peer is listed
# only in one direction, so no two packages can import each other.
BOTTOM = {"data": set(), "models": {"data"}, "privacy": {"data"}}
MIDDLE = {
    "evaluation": {"data", "models", "privacy"},
    "training": {"data", "models", "privacy", "evaluation"},
    "serving": {"data", "models", "privacy", "evaluation"},
}
ALLOWED = {
    **BOTTOM,
    **MIDDLE,
    "pipelines": {*BOTTOM, *MIDDLE},
    "launch": {*BOTTOM, *MIDDLE, "pipelines", "configs"},
}


def _package(path):
    """The layer a source file sits in: ``launch`` or the ppvad_jax subpackage."""
    rel = path.relative_to(ROOT).parts
    return rel[0] if rel[0] == "launch" else rel[1]


def _imported_packages(path):
    """(line, package) of every project import in the file, lazy ones inside functions included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "ppvad_jax" and len(parts) > 1:
                yield node.lineno, parts[1]
            elif parts[0] in ("launch", "configs"):
                yield node.lineno, parts[0]


def _sources():
    files = sorted((ROOT / "ppvad_jax").rglob("*.py")) + sorted((ROOT / "launch").glob("*.py"))
    return [f for f in files if f.parent != ROOT / "ppvad_jax" or f.name != "__init__.py"]


def test_every_import_runs_down_the_layers():
    wrong = []
    for path in _sources():
        package = _package(path)
        assert package in ALLOWED, f"{path}: package {package!r} is not in ARCHITECTURE.md's layers"
        for line, target in _imported_packages(path):
            if target != package and target not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({package} may not)")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_import(tmp_path, monkeypatch):
    """The rule above could pass by reading nothing: a planted upward import must be caught."""
    bad = tmp_path / "ppvad_jax" / "privacy" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from ppvad_jax.models import autoencoder\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert _package(bad) == "privacy" and list(_imported_packages(bad)) == [(2, "models")]


def test_architecture_md_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if p.name != "__init__.py" and p.parts[-2] != "launch" and f"`{p.stem}`" not in text
    ]
    assert not missing, f"ARCHITECTURE.md does not describe: {missing}"
