"""shardengine: a sharded PyTorch inference engine for Llama-style models.

The engine is `shardengine.engine.TorchDynamicShardInferenceEngine`; its errors are in
`shardengine.errors`. This file only re-exports names.
"""

from shardengine.downloader import LocalShardDownloader, ShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine
from shardengine.errors import ShardEngineError, classify_oom
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState

__all__ = [
    "TorchDynamicShardInferenceEngine",
    "Shard",
    "ShardInferenceState",
    "ShardDownloader",
    "LocalShardDownloader",
    "ShardEngineError",
    "classify_oom",
]
