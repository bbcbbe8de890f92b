"""Tiny models on disk for tests, built lazily and cached across test processes.

`tiny_model_dir(**params)` builds a model with `shardengine.tiny.write_tiny_model(**params)` the
first time those parameters are asked for, in a cache folder under the system temp directory
keyed by the parameters and by the source of the builder (so a changed builder never serves a
stale model). A model is built in a private folder and renamed into place, so concurrent or
forked test processes never see half a model and reuse a finished one for free.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import shardengine.tiny as tiny


@lru_cache(maxsize=1)
def _builder_fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(Path(tiny.__file__).read_bytes())
    digest.update(tiny.corpus_text().encode("utf-8"))
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(tempfile.gettempdir()) / f"shardengine-test-models-{uid}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def tiny_model_dir(**params) -> Path:
    """The directory of a tiny model built with these `write_tiny_model` parameters (read-only use)."""
    key_source = json.dumps({"params": params, "builder": _builder_fingerprint()}, sort_keys=True)
    key = hashlib.sha256(key_source.encode("utf-8")).hexdigest()[:20]
    final = cache_root() / key
    if final.is_dir():
        return final
    building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root()))
    tiny.write_tiny_model(building, **params)
    try:
        os.rename(building, final)
    except OSError:
        # another process finished the same model first; use theirs
        shutil.rmtree(building, ignore_errors=True)
    return final


def copy_tiny_model(destination: Path, **params) -> Path:
    """A private, writable copy of a tiny model in `destination` (for tests that damage files)."""
    source = tiny_model_dir(**params)
    shutil.copytree(source, destination)
    return destination
