"""What the progress line says as the measurement starts: a warm run whose measurement the cache
holds says it reuses it, not that it runs the suite (it runs no test there)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gate import run as gate_run
from gate.clock import Clock


class Stages:
    def __init__(self) -> None:
        self.said: list[str] = []

    def stage(self, text: str) -> None:
        self.said.append(text)


class Measured(Exception):
    """Raised where the measurement would start: the stage line is said by then."""


def stage_said(monkeypatch, tmp_path, cached: bool) -> list[str]:
    keys = []
    monkeypatch.setattr(gate_run.measurement, "is_cached",
                        lambda data_dir, key: keys.append((data_dir, key)) or cached)

    def measure(*args, **kwargs):
        raise Measured

    monkeypatch.setattr(gate_run.measurement, "measure", measure)
    # coverage only: no generation starts beside it
    settings = SimpleNamespace(cache_dir=tmp_path, only_coverage=True, pytest_args=(), pages_dir=None,
                               max_workers=1)
    progress = Stages()
    run = SimpleNamespace(settings=settings, progress=progress, clock=Clock())
    scoped = SimpleNamespace(snap=SimpleNamespace(work=tmp_path / "work", files=[]), files=[], regions=[],
                             tests=(), subset=None, environment="", run_key="the-key", change=None)
    with pytest.raises(Measured):
        gate_run._measurement_beside_generation(run, scoped)
    assert keys == [(tmp_path / "coverage", "the-key")]  # asked once, of this run's key
    return progress.said


def test_a_cached_measurement_is_said_to_be_reused(monkeypatch, tmp_path):
    assert stage_said(monkeypatch, tmp_path, cached=True) == [
        "reusing the cached measurement (the code, the tests and their settings are unchanged)"]


def test_a_measurement_that_runs_says_it_runs_the_suite(monkeypatch, tmp_path):
    assert stage_said(monkeypatch, tmp_path, cached=False) == ["running the suite under coverage (the measurement)"]
