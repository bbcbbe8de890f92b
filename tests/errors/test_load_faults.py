"""Real load faults: damaged files on disk, each raising its typed error and leaving the engine unloaded.

Every test first loads a good shard, so it also shows that the failed load released it, and then
loads the good shard again, so the engine is still usable afterwards.
"""

from __future__ import annotations

import json
import unittest
from json import JSONDecodeError
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from shardengine.config import ModelConfig, load_model_config
from shardengine.downloader import LocalShardDownloader, default_hub_cache
from shardengine.errors import (
    ConfigNotFoundError,
    CorruptWeightsError,
    InvalidConfigError,
    InvalidShardError,
    MissingTensorError,
    ModelNotFoundError,
    ShardLoadError,
    TensorDtypeError,
    TensorShapeError,
    TokenizerLoadError,
    TokenizerNotFoundError,
    WeightsNotFoundError,
)
from shardengine.model import ShardedGeneralModel
from shardengine.shard import Shard
from shardengine.weights import load_shard_weights
from tests.support.engines import PROMPT, EngineTestCase, full_shard
from tests.support.models import tiny_model_dir
from tests.support.oom import CacheEmptyingSpies, ModuleWith, out_of_memory_errors


def rewrite_weights(model_dir: Path, change) -> Path:
    """Load model.safetensors, let `change(tensors)` edit the dict, write it back."""
    path = model_dir / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))
    return path


def rewrite_config(model_dir: Path, change) -> Path:
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    return path


def reads_that(fail):
    """A stand-in for `safe_open` whose handles call `fail(name)` before reading each tensor
    (`get_tensor`): the only way to make a read fail after the file opened and validated."""

    class Handle:
        def __init__(self, *args, **kwargs):
            self.opened = safe_open(*args, **kwargs)

        def __enter__(self):
            self.inner = self.opened.__enter__()
            return self

        def __exit__(self, *exc_info):
            return self.opened.__exit__(*exc_info)

        def keys(self):
            return self.inner.keys()

        def get_slice(self, name):
            return self.inner.get_slice(name)

        def get_tensor(self, name):
            fail(name)
            return self.inner.get_tensor(name)

    return Handle


class LoadFaultTestCase(EngineTestCase):
    async def assertLoadFails(
        self,
        model_dir: Path,
        error: type[BaseException],
        message: str,
        cause: type[BaseException] | None = None,
        shard: Shard | None = None,
    ) -> BaseException:
        engine, good = await self.loaded_engine()
        shard = shard or full_shard(model_dir)
        with self.assertRaises(error) as raised:
            await engine.ensure_shard(shard)
        exc = raised.exception
        self.assertIs(type(exc), error)
        self.assertEqual(str(exc), message)
        if cause is None:
            self.assertIsNone(exc.__cause__)
        else:
            self.assertIsInstance(exc.__cause__, cause)
        self.assertUnloaded(engine)
        self.assertEqual(engine.out_of_memory_count, 0)
        out, _ = await engine.infer_tensor("after", good, PROMPT)
        self.assertEqual(out.shape, (1, 3, 320))
        self.assertLoaded(engine, good)
        return exc


class WeightFaultTests(LoadFaultTestCase):
    async def test_truncated_safetensors(self) -> None:
        model_dir = self.model_copy()
        path = model_dir / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        exc = await self.assertLoadFails(
            model_dir, CorruptWeightsError,
            f"{path}: not a valid safetensors file: "
            "Error while deserializing header: incomplete metadata, file not fully covered",
            SafetensorError,
        )
        self.assertEqual(str(exc.__cause__), "Error while deserializing header: incomplete metadata, file not fully covered")

    async def test_corrupt_safetensors_header(self) -> None:
        model_dir = self.model_copy()
        path = model_dir / "model.safetensors"
        header = b'{"model.embed_tokens.weight": 7}'
        path.write_bytes(len(header).to_bytes(8, "little") + header)
        with self.assertRaises(CorruptWeightsError) as raised:
            await self.make_engine().ensure_shard(full_shard(model_dir))
        cause = raised.exception.__cause__
        self.assertTrue(str(cause).startswith("Error while deserializing header"), str(cause))
        await self.assertLoadFails(
            model_dir, CorruptWeightsError, f"{path}: not a valid safetensors file: {cause}", SafetensorError
        )

    async def test_tensor_of_the_wrong_shape(self) -> None:
        model_dir = self.model_copy()
        name = "model.layers.1.mlp.up_proj.weight"

        def transpose(tensors):
            tensors[name] = tensors[name].t().contiguous()

        path = rewrite_weights(model_dir, transpose)
        await self.assertLoadFails(
            model_dir, TensorShapeError, f"{path}: tensor '{name}' has shape [32, 64], expected [64, 32]"
        )

    async def test_tensor_of_the_wrong_dtype(self) -> None:
        model_dir = self.model_copy()
        name = "model.norm.weight"

        def to_int(tensors):
            tensors[name] = tensors[name].to(torch.int32)

        path = rewrite_weights(model_dir, to_int)
        await self.assertLoadFails(
            model_dir, TensorDtypeError, f"{path}: tensor '{name}' has dtype I32, expected one of F16, BF16, F32, F64"
        )

    async def test_half_precision_weights_load(self) -> None:
        model_dir = self.model_copy()

        def to_bf16(tensors):
            for key in tensors:
                tensors[key] = tensors[key].to(torch.bfloat16)

        rewrite_weights(model_dir, to_bf16)
        engine = self.make_engine()
        out, _ = await engine.infer_tensor("r", full_shard(model_dir), PROMPT)
        self.assertEqual(out.shape, (1, 3, 320))
        self.assertEqual(engine.model_instance.embed_tokens.weight.dtype, torch.float32)

    async def test_missing_tensor(self) -> None:
        model_dir = self.model_copy()
        name = "model.layers.1.mlp.down_proj.weight"
        path = rewrite_weights(model_dir, lambda tensors: tensors.pop(name))
        await self.assertLoadFails(model_dir, MissingTensorError, f"{path}: tensor '{name}' not found")

    async def test_missing_weights_file(self) -> None:
        model_dir = self.model_copy()
        (model_dir / "model.safetensors").unlink()
        exc = await self.assertLoadFails(
            model_dir, WeightsNotFoundError, f"{model_dir / 'model.safetensors'}: file not found"
        )
        self.assertIsInstance(exc, FileNotFoundError)

    async def test_a_shard_reads_only_its_own_tensors(self) -> None:
        """Layer 1's tensors are broken; a shard of layer 0 does not read them and loads."""
        model_dir = self.model_copy()
        rewrite_weights(model_dir, lambda t: t.update({"model.layers.1.mlp.up_proj.weight": torch.zeros(1, dtype=torch.int8)}))
        engine = self.make_engine()
        first = Shard(str(model_dir), 0, 0, 2)
        hidden, state = await engine.infer_tensor("r", first, PROMPT)
        self.assertEqual(hidden.shape, (1, 3, 32))
        self.assertLoaded(engine, first)


class IndexFaultTests(LoadFaultTestCase):
    def sharded_copy(self) -> tuple[Path, Path, dict]:
        model_dir = self.model_copy(files=2)
        index_path = model_dir / "model.safetensors.index.json"
        return model_dir, index_path, json.loads(index_path.read_text())

    async def test_sharded_checkpoint_loads(self) -> None:
        model_dir, _, _ = self.sharded_copy()
        engine = self.make_engine()
        out, _ = await engine.infer_tensor("r", full_shard(model_dir), PROMPT)
        reference, shard = await self.loaded_engine()
        expected, _ = await reference.infer_tensor("r", shard, PROMPT)
        np.testing.assert_array_equal(out, expected)

    async def test_index_not_json(self) -> None:
        for content, cause_type in (("{oops", JSONDecodeError), ("[" * 100_000, RecursionError)):
            with self.subTest(cause=cause_type):
                model_dir, index_path, _ = self.sharded_copy()
                index_path.write_text(content)
                with self.assertRaises(CorruptWeightsError) as raised:
                    await self.make_engine().ensure_shard(full_shard(model_dir))
                cause = raised.exception.__cause__
                self.assertIs(type(cause), cause_type)
                await self.assertLoadFails(
                    model_dir, CorruptWeightsError, f"{index_path}: not valid JSON: {cause}", cause_type
                )

    async def test_index_without_weight_map(self) -> None:
        for content in ({"metadata": {}}, [1, 2], {"weight_map": ["a"]}):
            with self.subTest(content=content):
                model_dir, index_path, _ = self.sharded_copy()
                index_path.write_text(json.dumps(content))
                await self.assertLoadFails(model_dir, CorruptWeightsError, f"{index_path}: has no 'weight_map' object")

    async def test_index_without_a_tensor(self) -> None:
        model_dir, index_path, index = self.sharded_copy()
        del index["weight_map"]["model.embed_tokens.weight"]
        index_path.write_text(json.dumps(index))
        await self.assertLoadFails(
            model_dir, MissingTensorError, f"{index_path}: tensor 'model.embed_tokens.weight' is not in the weight_map"
        )

    async def test_index_entry_that_is_not_a_file_name(self) -> None:
        model_dir, index_path, index = self.sharded_copy()
        index["weight_map"]["model.norm.weight"] = 5
        index_path.write_text(json.dumps(index))
        await self.assertLoadFails(
            model_dir, CorruptWeightsError, f"{index_path}: the weight_map entry of 'model.norm.weight' is not a file name"
        )

    async def test_index_names_a_missing_file(self) -> None:
        model_dir, _, _ = self.sharded_copy()
        missing = model_dir / "model-00002-of-00002.safetensors"
        missing.unlink()
        await self.assertLoadFails(model_dir, WeightsNotFoundError, f"{missing}: file not found")


class ConfigFaultTests(LoadFaultTestCase):
    async def test_missing_config_field(self) -> None:
        model_dir = self.model_copy()
        path = rewrite_config(model_dir, lambda c: c.pop("hidden_size"))
        await self.assertLoadFails(model_dir, InvalidConfigError, f"{path}: missing field(s): hidden_size")

    async def test_two_missing_config_fields(self) -> None:
        model_dir = self.model_copy()
        path = rewrite_config(model_dir, lambda c: (c.pop("rms_norm_eps"), c.pop("vocab_size")))
        await self.assertLoadFails(model_dir, InvalidConfigError, f"{path}: missing field(s): vocab_size, rms_norm_eps")

    async def test_config_field_of_the_wrong_type_or_range(self) -> None:
        cases = [
            ({"hidden_size": "32"}, "hidden_size must be an int, got '32'"),
            ({"max_position_embeddings": 0}, "max_position_embeddings must be >= 1, got 0"),
            ({"rope_theta": -1}, "rope_theta must be a finite number > 0, got -1"),
            ({"num_key_value_heads": 3}, "num_attention_heads (4) must be divisible by num_key_value_heads (3)"),
        ]
        for change, message in cases:
            with self.subTest(change=change):
                model_dir = self.model_copy()
                path = rewrite_config(model_dir, lambda c: c.update(change))
                await self.assertLoadFails(model_dir, InvalidConfigError, f"{path}: {message}")

    async def test_config_not_json(self) -> None:
        cases = (
            (b"{nope", JSONDecodeError),
            (b"\xff\xfe\xfa", UnicodeDecodeError),
            (b"[" * 100_000, RecursionError),  # not a ValueError: json gives up on the nesting
        )
        for raw, cause in cases:
            with self.subTest(raw=raw):
                model_dir = self.model_copy()
                path = model_dir / "config.json"
                path.write_bytes(raw)
                with self.assertRaises(InvalidConfigError) as raised:
                    load_model_config(model_dir)
                self.assertIs(type(raised.exception.__cause__), cause)
                message = f"{path}: not valid JSON: {raised.exception.__cause__}"
                await self.assertLoadFails(model_dir, InvalidConfigError, message, cause)

    async def test_config_not_an_object(self) -> None:
        model_dir = self.model_copy()
        path = model_dir / "config.json"
        path.write_text("[1, 2]")
        await self.assertLoadFails(model_dir, InvalidConfigError, f"{path}: must hold a JSON object, got list")

    async def test_unsupported_llama_variants(self) -> None:
        cases = [
            ("rope_scaling", {"type": "linear", "factor": 2.0},
             "rope_scaling={'type': 'linear', 'factor': 2.0} is not supported (only None)"),
            ("hidden_act", "gelu", "hidden_act='gelu' is not supported (only 'silu')"),
            ("attention_bias", True, "attention_bias=True is not supported (only False)"),
            ("mlp_bias", 0, "mlp_bias=0 is not supported (only False)"),
        ]
        for field, value, message in cases:
            with self.subTest(field=field):
                model_dir = self.model_copy()
                path = rewrite_config(model_dir, lambda c: c.update({field: value}))
                await self.assertLoadFails(model_dir, InvalidConfigError, f"{path}: {message}")

    async def test_missing_config_file(self) -> None:
        model_dir = self.model_copy()
        (model_dir / "config.json").unlink()
        exc = await self.assertLoadFails(model_dir, ConfigNotFoundError, f"{model_dir / 'config.json'}: file not found")
        self.assertIsInstance(exc, FileNotFoundError)
        self.assertIsInstance(exc, InvalidConfigError)

    async def test_shard_that_does_not_fit_the_model(self) -> None:
        model_dir = tiny_model_dir()
        shard = Shard(str(model_dir), 0, 2, 3)
        await self.assertLoadFails(
            model_dir, InvalidShardError, f"shard of {str(model_dir)!r} has n_layers=3, but the model has 2 layers",
            shard=shard,
        )


class TokenizerFaultTests(LoadFaultTestCase):
    async def test_invalid_tokenizer_json(self) -> None:
        for content in ("{not json", '{"version": "1.0", "model": {"type": "BPE"}}'):
            with self.subTest(content=content):
                model_dir = self.model_copy()
                path = model_dir / "tokenizer.json"
                path.write_text(content)
                engine = self.make_engine()
                with self.assertRaises(TokenizerLoadError) as raised:
                    await engine.ensure_shard(full_shard(model_dir))
                cause = raised.exception.__cause__
                self.assertIs(type(cause), Exception)
                await self.assertLoadFails(
                    model_dir, TokenizerLoadError, f"{path}: invalid tokenizer.json: {cause}", Exception
                )

    async def test_missing_tokenizer_json(self) -> None:
        model_dir = self.model_copy()
        (model_dir / "tokenizer.json").unlink()
        exc = await self.assertLoadFails(
            model_dir, TokenizerNotFoundError, f"{model_dir / 'tokenizer.json'}: file not found"
        )
        self.assertIsInstance(exc, FileNotFoundError)


class DownloaderFaultTests(LoadFaultTestCase):
    async def test_absolute_model_directory_missing(self) -> None:
        missing = self.temp_dir() / "gone"
        await self.assertLoadFails(missing, ModelNotFoundError, f"model directory {missing} does not exist")

    async def test_model_id_not_under_the_root(self) -> None:
        engine = self.make_engine()
        root = engine.shard_downloader.root
        with self.assertRaises(ModelNotFoundError) as raised:
            await engine.ensure_shard(Shard("org/none", 0, 1, 2))
        self.assertEqual(str(raised.exception), f"model 'org/none' not found under {root}")
        self.assertUnloaded(engine)

    def hub_cache(self, snapshots: list[str], ref: str | None) -> tuple[Path, Path]:
        root = self.temp_dir()
        cache = root / "models--org--tiny"
        for revision in snapshots:
            (cache / "snapshots" / revision).mkdir(parents=True)
        if ref is not None:
            (cache / "refs").mkdir(parents=True)
            (cache / "refs" / "main").write_text(ref + "\n")
        return root, cache

    def test_hub_cache_faults(self) -> None:
        cases = [
            (["abc"], "def", "{cache}/refs/main names revision 'def', which is not in {cache}/snapshots"),
            (["abc"], "", "{cache}/refs/main names revision '', which is not in {cache}/snapshots"),
            (["abc", "def"], None, "{cache} has no refs/main and 2 snapshots; cannot choose a revision"),
            ([], None, "{cache} has no refs/main and 0 snapshots; cannot choose a revision"),
        ]
        for snapshots, ref, message in cases:
            with self.subTest(message=message):
                root, cache = self.hub_cache(snapshots, ref)
                if not snapshots:
                    (cache / "snapshots").mkdir(parents=True)
                with self.assertRaises(ModelNotFoundError) as raised:
                    LocalShardDownloader(root).resolve("org/tiny")
                self.assertEqual(str(raised.exception), message.format(cache=cache))

    def test_hub_cache_resolution(self) -> None:
        root, cache = self.hub_cache(["abc", "def"], "def")
        self.assertEqual(LocalShardDownloader(root).resolve("org/tiny"), cache / "snapshots" / "def")
        root, cache = self.hub_cache(["abc"], None)
        self.assertEqual(LocalShardDownloader(root).resolve("org/tiny"), cache / "snapshots" / "abc")
        (root / "plain").mkdir()
        self.assertEqual(LocalShardDownloader(root).resolve("plain"), root / "plain")

    def test_default_hub_cache(self) -> None:
        from unittest import mock

        with mock.patch.dict("os.environ", {"HF_HUB_CACHE": "/a/hub", "HF_HOME": "/b"}):
            self.assertEqual(default_hub_cache(), Path("/a/hub"))
        with mock.patch.dict("os.environ", {"HF_HUB_CACHE": "", "HF_HOME": "/b"}):
            self.assertEqual(default_hub_cache(), Path("/b/hub"))
        with mock.patch.dict("os.environ", {"HF_HUB_CACHE": "", "HF_HOME": ""}):
            self.assertEqual(default_hub_cache(), Path.home() / ".cache" / "huggingface" / "hub")
            self.assertEqual(LocalShardDownloader().root, Path.home() / ".cache" / "huggingface" / "hub")


class OutOfMemoryWhileLoadingTests(LoadFaultTestCase):
    """An out-of-memory error inside a loader is no damaged file: every loader's broad handler lets
    it through as the same object, never a typed load error, and nothing counts it, logs it at
    ERROR or empties a cache (a load has no recovery). Each kind of OOM is injected at the library
    call the handler guards: a real one there (parsing a small JSON file, `tokenizers` aborting
    the process rather than raising) cannot be made safely. The model step's real CPU OOM is in
    `tests/errors/test_dependency_failures.py`."""

    def setUp(self) -> None:
        super().setUp()
        self.spies = CacheEmptyingSpies(self)

    async def assertOutOfMemoryPropagates(self, model_dir: Path, patch) -> None:
        for injected in out_of_memory_errors():
            with self.subTest(type(injected).__name__):
                engine, good = await self.loaded_engine()
                with patch(injected), self.assertNoLogs("shardengine", level="ERROR"):
                    with self.assertRaises(BaseException) as raised:
                        await engine.ensure_shard(full_shard(model_dir))
                self.assertIs(raised.exception, injected)
                self.assertIsNone(raised.exception.__cause__)
                self.assertUnloaded(engine)
                self.assertEqual(engine.out_of_memory_count, 0)
                self.spies.assertEmptied(cuda=0, mps=0, cpu=0)
                out, _ = await engine.infer_tensor("after", good, PROMPT)  # and it loads again
                self.assertEqual(out.shape, (1, 3, 320))

    async def test_parsing_the_config(self) -> None:
        await self.assertOutOfMemoryPropagates(self.model_copy(), lambda injected: mock.patch(
            "shardengine.config.json", ModuleWith(json, loads=mock.Mock(side_effect=injected))))

    async def test_loading_the_tokenizer(self) -> None:
        def patch(injected):
            tokenizer = mock.Mock(name="Tokenizer")
            tokenizer.from_file.side_effect = injected
            return mock.patch("shardengine.tokenizer.Tokenizer", tokenizer)

        await self.assertOutOfMemoryPropagates(self.model_copy(), patch)

    async def test_parsing_the_weights_index(self) -> None:
        await self.assertOutOfMemoryPropagates(self.model_copy(files=2), lambda injected: mock.patch(
            "shardengine.weights.json", ModuleWith(json, loads=mock.Mock(side_effect=injected))))

    async def test_opening_a_weights_file(self) -> None:
        await self.assertOutOfMemoryPropagates(self.model_copy(), lambda injected: mock.patch(
            "shardengine.weights.safe_open", side_effect=injected))

    async def test_reading_a_tensor(self) -> None:
        def patch(injected):
            def fail(name: str) -> None:
                if name == "model.layers.1.mlp.down_proj.weight":
                    raise injected

            return mock.patch("shardengine.weights.safe_open", reads_that(fail))

        await self.assertOutOfMemoryPropagates(self.model_copy(), patch)


class LoadShardWeightsTests(EngineTestCase):
    def test_model_built_for_another_shard_or_config(self) -> None:
        model_dir = tiny_model_dir()
        config = load_model_config(model_dir)
        shard = Shard(str(model_dir), 0, 1, 2)
        model = ShardedGeneralModel(config, shard)
        other_shard = Shard(str(model_dir), 0, 0, 2)
        other_config = ModelConfig(**{**config.__dict__, "rope_theta": 500000.0})
        cases = [
            ((other_shard, config), f"the model was built for {shard}, not for the shard given, {other_shard}"),
            ((shard, other_config), f"the model of {str(model_dir)!r} was built for another config than the one given"),
        ]
        for args, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(ShardLoadError) as raised:
                    load_shard_weights(model, model_dir, *args)
                self.assertIs(type(raised.exception), ShardLoadError)
                self.assertEqual(str(raised.exception), message)

    async def test_a_tensor_that_cannot_be_read_after_validation(self) -> None:
        """A read that fails once every tensor was validated (the file changed, the disk failed:
        made here by a handle whose `get_tensor` raises an OSError for one tensor) raises a
        `CorruptWeightsError` naming the tensor and the file, and copies nothing."""
        engine, shard = await self.loaded_engine()
        before = {name: p.detach().clone() for name, p in engine.model_instance.hf_parameters()}
        checkpoint = self.temp_dir() / "new.safetensors"
        save_file({name: torch.full_like(p, 0.5) for name, p in before.items()}, str(checkpoint))
        name = "model.layers.1.self_attn.v_proj.weight"
        injected = OSError(5, "Input/output error")

        def fail(tensor_name: str) -> None:
            if tensor_name == name:
                raise injected

        with mock.patch("shardengine.weights.safe_open", reads_that(fail)):
            with self.assertRaises(CorruptWeightsError) as raised:
                await engine.load_checkpoint(shard, checkpoint)
        self.assertEqual(str(raised.exception), f"{checkpoint}: cannot read tensor {name!r}: {injected}")
        self.assertIs(raised.exception.__cause__, injected)
        for param_name, param in engine.model_instance.hf_parameters():
            self.assertTrue(torch.equal(param, before[param_name]), param_name)
        self.assertLoaded(engine, shard)
        self.assertEqual(engine.out_of_memory_count, 0)


if __name__ == "__main__":
    unittest.main()
