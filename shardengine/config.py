"""`ModelConfig` and `load_model_config`: the Llama fields of an HF-style `config.json`."""

from __future__ import annotations

import json
import sys
from dataclasses import InitVar, dataclass
from pathlib import Path

from shardengine.errors import ConfigNotFoundError, InvalidConfigError, classify_oom

__all__ = ["ModelConfig", "load_model_config", "REQUIRED_FIELDS", "OPTIONAL_FIELDS"]

# Fields every config.json must hold.
REQUIRED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "rms_norm_eps",
    "max_position_embeddings",
)
# Fields with the defaults transformers' LlamaConfig gives them when they are absent.
OPTIONAL_FIELDS = ("num_key_value_heads", "rope_theta", "tie_word_embeddings", "head_dim")

_POSITIVE_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "head_dim",
)
_POSITIVE_FLOAT_FIELDS = ("rms_norm_eps", "rope_theta")

# Llama variants this engine does not implement: the field must be absent or hold this value.
_SUPPORTED_VALUES = (
    ("hidden_act", "silu"),
    ("rope_scaling", None),
    ("attention_bias", False),
    ("mlp_bias", False),
)


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a Llama-style decoder. Validated on construction (`InvalidConfigError`).

    `source` (not a field) is where the values come from, say the `config.json` path: when given,
    every error message starts with it, as `load_model_config`'s other errors do.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    rms_norm_eps: float
    max_position_embeddings: int
    num_key_value_heads: int | None = None
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    head_dim: int | None = None
    source: InitVar[str | None] = None

    def __post_init__(self, source: str | None) -> None:
        where = f"{source}: " if source else ""
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if name == "head_dim" and value is None:
                continue
            if type(value) is not int:
                raise InvalidConfigError(f"{where}{name} must be an int, got {value!r}")
            if value < 1:
                raise InvalidConfigError(f"{where}{name} must be >= 1, got {value}")
        for name in _POSITIVE_FLOAT_FIELDS:
            value = getattr(self, name)
            # the comparison also rejects NaN, infinities, and ints too large for a float
            if type(value) not in (int, float) or not 0 < value <= sys.float_info.max:
                raise InvalidConfigError(f"{where}{name} must be a finite number > 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if type(self.tie_word_embeddings) is not bool:
            raise InvalidConfigError(f"{where}tie_word_embeddings must be a bool, got {self.tie_word_embeddings!r}")
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads != 0:
                raise InvalidConfigError(
                    f"{where}hidden_size ({self.hidden_size}) must be divisible by "
                    f"num_attention_heads ({self.num_attention_heads})"
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise InvalidConfigError(
                f"{where}num_attention_heads ({self.num_attention_heads}) must be divisible by "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim % 2 != 0:
            raise InvalidConfigError(f"{where}head_dim must be even for rotary embeddings, got {self.head_dim}")


def load_model_config(path: str | Path) -> ModelConfig:
    """Read `config.json` (give the file or the model directory holding it) into a `ModelConfig`.

    Raises `ConfigNotFoundError` if there is no file, and `InvalidConfigError` when the JSON is
    invalid, a field is missing, or a field has a bad type or value; every message starts with
    the file's path and names the field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigNotFoundError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except Exception as exc:
        if classify_oom(exc) is not None:  # out of memory says nothing about the file: unchanged
            raise
        raise InvalidConfigError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidConfigError(f"{path}: must hold a JSON object, got {type(data).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise InvalidConfigError(f"{path}: missing field(s): {', '.join(missing)}")
    for name, supported in _SUPPORTED_VALUES:
        if name in data and (data[name] != supported or type(data[name]) is not type(supported)):
            raise InvalidConfigError(f"{path}: {name}={data[name]!r} is not supported (only {supported!r})")
    fields = {name: data[name] for name in REQUIRED_FIELDS + OPTIONAL_FIELDS if name in data}
    return ModelConfig(**fields, source=str(path))
