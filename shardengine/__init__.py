"""shardengine: a sharded PyTorch inference engine for Llama-style models.

The engine is `shardengine.engine.TorchDynamicShardInferenceEngine`; its errors are in
`shardengine.errors`. This file re-exports names, and gives the package's logger a `NullHandler`:
a library logs, the application decides where the records go (without one configured, Python's
last-resort handler would print every out-of-memory record to stderr).
"""

import logging

from shardengine.downloader import LocalShardDownloader, ShardDownloader
from shardengine.engine import TorchDynamicShardInferenceEngine
from shardengine.errors import ShardEngineError, classify_oom
from shardengine.shard import Shard
from shardengine.state import ShardInferenceState

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "TorchDynamicShardInferenceEngine",
    "Shard",
    "ShardInferenceState",
    "ShardDownloader",
    "LocalShardDownloader",
    "ShardEngineError",
    "classify_oom",
]
