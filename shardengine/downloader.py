"""Where a shard's files come from: the `ShardDownloader` interface and a local, offline implementation."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

from shardengine.errors import ModelNotFoundError
from shardengine.shard import Shard

__all__ = ["ShardDownloader", "LocalShardDownloader", "default_hub_cache"]


class ShardDownloader(ABC):
    """Makes a shard's model files available on disk and says where."""

    @abstractmethod
    async def ensure_shard(self, shard: Shard, engine_name: str) -> Path:
        """Return the directory holding `config.json`, `tokenizer.json` and the safetensors weights."""


def default_hub_cache() -> Path:
    """The Hugging Face hub cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


class LocalShardDownloader(ShardDownloader):
    """Resolves a model on disk; there is no network.

    A `model_id` that is an absolute path names the model directory itself. Any other `model_id`
    is looked up under `root` (default: the HF hub cache): first as `root/<model_id>`, then as an
    HF-hub-style offline cache `root/models--<org>--<name>/snapshots/<revision>/`, where the
    revision is the one `refs/main` names, or the only snapshot there is.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_hub_cache()

    async def ensure_shard(self, shard: Shard, engine_name: str) -> Path:
        return self.resolve(shard.model_id)

    def resolve(self, model_id: str) -> Path:
        direct = Path(model_id)
        if direct.is_absolute():
            if not direct.is_dir():
                raise ModelNotFoundError(f"model directory {direct} does not exist")
            return direct
        plain = self.root / model_id
        if plain.is_dir():
            return plain
        cache = self.root / ("models--" + model_id.replace("/", "--"))
        if not (cache / "snapshots").is_dir():
            raise ModelNotFoundError(f"model {model_id!r} not found under {self.root}")
        return _snapshot(cache)


def _snapshot(cache: Path) -> Path:
    ref = cache / "refs" / "main"
    if ref.is_file():
        revision = ref.read_text(encoding="utf-8").strip()
        snapshot = cache / "snapshots" / revision
        if not revision or not snapshot.is_dir():
            raise ModelNotFoundError(f"{ref} names revision {revision!r}, which is not in {cache / 'snapshots'}")
        return snapshot
    snapshots = sorted(p for p in (cache / "snapshots").iterdir() if p.is_dir())
    if len(snapshots) != 1:
        raise ModelNotFoundError(
            f"{cache} has no refs/main and {len(snapshots)} snapshots; cannot choose a revision"
        )
    return snapshots[0]
