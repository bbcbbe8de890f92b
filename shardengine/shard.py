"""`Shard`: which contiguous range of a model's layers one engine runs."""

from __future__ import annotations

from dataclasses import dataclass

from shardengine.errors import InvalidShardError

__all__ = ["Shard"]


@dataclass(frozen=True)
class Shard:
    """Layers `start_layer..end_layer` (both included) of a model with `n_layers` layers.

    Equality is by value. A bad spec raises `InvalidShardError` naming the field.
    """

    model_id: str
    start_layer: int
    end_layer: int
    n_layers: int

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str) or not self.model_id:
            raise InvalidShardError(f"model_id must be a non-empty str, got {self.model_id!r}")
        for name in ("start_layer", "end_layer", "n_layers"):
            value = getattr(self, name)
            if type(value) is not int:
                raise InvalidShardError(f"{name} must be an int, got {value!r}")
        if self.n_layers < 1:
            raise InvalidShardError(f"n_layers must be >= 1, got {self.n_layers}")
        if self.start_layer < 0:
            raise InvalidShardError(f"start_layer must be >= 0, got {self.start_layer}")
        if self.end_layer < self.start_layer:
            raise InvalidShardError(
                f"end_layer must be >= start_layer ({self.start_layer}), got {self.end_layer}"
            )
        if self.end_layer >= self.n_layers:
            raise InvalidShardError(f"end_layer must be < n_layers ({self.n_layers}), got {self.end_layer}")

    def is_first_layer(self) -> bool:
        return self.start_layer == 0

    def is_last_layer(self) -> bool:
        return self.end_layer == self.n_layers - 1

    def get_layer_count(self) -> int:
        return self.end_layer - self.start_layer + 1
