"""The exception facts are resolved again whenever the hierarchy they come from may have changed,
wherever in the project it is defined, and a failed resolution is never reused."""

from __future__ import annotations

import json

import pytest

from gate.steps.exception_types import _type_key, resolve

HANDLERS = "from pkg.errors import LoadError\n\ndef load():\n    try:\n        pass\n    except LoadError:\n        raise\n"


def project(tmp_path, errors: str):
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "errors.py").write_text(errors)
    (tmp_path / "pkg" / "engine.py").write_text(HANDLERS)
    return tmp_path


MODULES = ["pkg/__init__.py", "pkg/engine.py", "pkg/errors.py"]


def test_a_hierarchy_change_in_a_module_without_handlers_changes_the_key(tmp_path):
    work = project(tmp_path, "class LoadError(OSError):\n    pass\n")
    before = _type_key(work, ["pkg/engine.py"], MODULES, "env")
    (work / "pkg" / "errors.py").write_text("class LoadError(ValueError):\n    pass\n")
    assert _type_key(work, ["pkg/engine.py"], MODULES, "env") != before
    (work / "pkg" / "errors.py").write_text("class LoadError(ValueError):\n    pass\nAlias = LoadError\n")
    assert _type_key(work, ["pkg/engine.py"], MODULES, "env") != before


def test_a_change_inside_a_function_body_keeps_the_key(tmp_path):
    work = project(tmp_path, "class LoadError(OSError):\n    pass\n")
    before = _type_key(work, ["pkg/engine.py"], MODULES, "env")
    (work / "pkg" / "engine.py").write_text(HANDLERS.replace("        pass", "        return 1"))
    assert _type_key(work, ["pkg/engine.py"], MODULES, "env") == before


def test_resolution_reads_the_real_hierarchy_and_a_failure_is_not_cached(tmp_path):
    work = project(tmp_path, "class LoadError(OSError):\n    pass\n")
    cache = tmp_path / "types.json"
    resolved, failed = resolve(work, ["pkg/engine.py"], cache, key="env", modules=MODULES, import_roots=["."])
    assert failed == {}
    assert "builtins.OSError" in json.dumps(resolved)
    assert json.loads(cache.read_text())["report"]["resolved"] == resolved
    cache.unlink()
    (work / "pkg" / "errors.py").write_text("raise ImportError('broken on purpose')\n")
    resolved, failed = resolve(work, ["pkg/engine.py"], cache, key="env", modules=MODULES, import_roots=["."])
    assert "pkg/engine.py" in failed
    assert not cache.exists()


def test_a_report_line_with_a_renamed_field_fails_the_gate_naming_it(tmp_path, monkeypatch):
    # the child's side renames `unresolved`: the gate's reader names it, never reads "nothing unresolved"
    from gate.steps import exception_types
    from gate.wire import codec
    from gate.wire.codec import WireError
    from gate.wire.types import ModuleTypes, TypesReport

    work = project(tmp_path, "class LoadError(OSError):\n    pass\n")
    line = codec.dumps(TypesReport({"pkg/engine.py": ModuleTypes({}, {}, {}, (), {})}, {}), 1)
    renamed = line.replace('"unresolved"', '"unresolvable"')
    monkeypatch.setattr(exception_types, "run_python", lambda *a, **k: type(
        "Completed", (), {"returncode": 0, "output": "@@gate-types " + renamed})())
    with pytest.raises(WireError, match=r"TypesReport \(format 1\)\.resolved\['pkg/engine.py'\]: unknown field 'unresolvable'"):
        exception_types.resolve(work, ["pkg/engine.py"], tmp_path / "types.json", key="env", modules=MODULES,
                                import_roots=["."])
