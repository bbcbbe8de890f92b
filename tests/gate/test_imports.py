"""Where a guarded file is imported from, and under which name: what every child puts first on its path."""

from __future__ import annotations

import pytest

from gate.imports import import_root, import_roots, module_name, outside


@pytest.fixture
def tree(tmp_path):
    for rel in ["src/vault/__init__.py", "src/vault/store.py", "flat/__init__.py", "flat/store.py",
                "pkg/__init__.py", "pkg/ns/logging.py", "src/single.py", "lib/pkg/__init__.py", "lib/pkg/m.py",
                "tool.py"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    return tmp_path


@pytest.mark.parametrize("rel, root, name", [
    ("src/vault/store.py", "src", "vault.store"),
    ("src/vault/__init__.py", "src", "vault"),
    ("flat/store.py", ".", "flat.store"),
    # a namespace package inside a package: never its own root (it would shadow the stdlib's logging)
    ("pkg/ns/logging.py", ".", "pkg.ns.logging"),
    ("src/single.py", "src", "single"),
    ("lib/pkg/m.py", "lib", "pkg.m"),
    ("tool.py", ".", "tool"),
])
def test_a_guarded_file_is_imported_from_the_parent_of_its_outermost_package(tree, rel, root, name):
    assert (import_root(tree, rel), module_name(tree, rel)) == (root, name)


def test_the_deepest_roots_come_first(tree):
    assert import_roots(tree, ["flat/store.py", "src/vault/store.py", "lib/pkg/m.py"]) == ["lib", "src", "."]


def test_a_module_from_another_tree_is_found(tree, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("user") / "vault" / "__init__.py"
    imported = {"vault.store": str(tree / "src/vault/store.py"), "vault": str(elsewhere), "gone": None}
    assert outside(tree, imported) == ("vault", str(elsewhere))
    assert outside(tree, {"vault.store": str(tree / "src/vault/store.py")}) is None
