"""mutmut's copy of the project (`mutants/`) follows the snapshot: mutmut itself only ever adds
files to it, so a test module or conftest.py deleted from the project would still be loaded."""

from __future__ import annotations

from gate.mutmut_adapter.mutate import _prune_stale_mutants
from gate.wire.driver import GenerateSpec, MutmutSetup, OperatorSpec


def test_a_file_deleted_from_the_project_is_deleted_from_mutmuts_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the driver works in the snapshot, beside mutmut's `mutants/`
    for rel in ("tests/test_a.py", "mutants/tests/test_a.py", "mutants/tests/conftest.py",
                "mutants/tests/helpers/old.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    setup = MutmutSetup(source_paths=(), files=(), also_copy=("tests",), max_workers=1, tests=(), pytest_args=(),
                        import_roots=())
    _prune_stale_mutants(GenerateSpec(setup=setup, regions={}, operators=OperatorSpec(enabled=(), exceptions={})))
    kept = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "mutants").rglob("*.py"))
    assert kept == ["mutants/tests/test_a.py"]
