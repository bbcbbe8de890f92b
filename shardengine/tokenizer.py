"""Loading a model's `tokenizer.json` with the `tokenizers` library."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from shardengine.errors import TokenizerLoadError, TokenizerNotFoundError, classify_oom

__all__ = ["_resolve_tokenizer"]


def _resolve_tokenizer(model_dir: str | Path) -> Tokenizer:
    """Load `model_dir/tokenizer.json`.

    Raises `TokenizerNotFoundError` if the file is missing and `TokenizerLoadError` (with the
    library's error as `__cause__`) if `tokenizers` cannot load it; an out-of-memory error
    propagates unchanged.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        raise TokenizerNotFoundError(f"{path}: file not found")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:
        if classify_oom(exc) is not None:  # out of memory says nothing about the file: unchanged
            raise
        raise TokenizerLoadError(f"{path}: invalid tokenizer.json: {exc}") from exc
