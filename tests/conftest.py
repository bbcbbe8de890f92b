"""Shared pytest setup: tests marked `cuda` skip on machines without a CUDA GPU, and what the
collection imported is frozen out of the garbage collector."""

import gc

import pytest


def pytest_collection_modifyitems(config, items):
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not cuda_items:
        return
    import torch  # only when a cuda test was collected

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in cuda_items:
        item.add_marker(skip)


def pytest_collection_finish(session):
    # torch, the engine and the test modules stay for the whole session: without this, every
    # gc.collect() of the engine's out-of-memory recovery and of the leak checks walks all of them
    # again (the gate's baseline and mutmut's fork server freeze them the same way)
    gc.collect()
    gc.freeze()
