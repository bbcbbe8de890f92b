"""Fixtures of the engine's own tests: tiny models, engines, and running coroutines."""

from __future__ import annotations

import asyncio

import pytest

from shardengine.downloader import LocalShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine


@pytest.fixture
def run():
    """Run coroutines in one event loop for the whole test (engines bind their lock to it)."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture
def make_engine(tmp_path, monkeypatch):
    # on the CPU whatever the machine has, so results compare with CPU references; a test that
    # means the GPU sets SHARDENGINE_DEVICE itself, after this
    monkeypatch.setenv("SHARDENGINE_DEVICE", "cpu")
    engines = []

    def make() -> TorchDynamicShardInferenceEngine:
        engine = TorchDynamicShardInferenceEngine(LocalShardDownloader(tmp_path))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown()
