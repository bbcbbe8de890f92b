"""The leak-check oracle `gate.testing.leaks.no_leaks`: each resource leaked for real fails the check with a
message that names it and its size; released resources, tolerances and async functions pass."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from gate.testing.leaks import LeakCheck, no_leaks


@pytest.fixture
def keep():
    """Holds what a test leaks on purpose, and releases it after the test: threads are stopped
    and joined, descriptors closed, tensors dropped."""
    held = {"threads": [], "fds": [], "files": [], "tensors": []}
    stop = threading.Event()
    held["stop"] = stop
    yield held
    stop.set()
    for thread in held["threads"]:
        thread.join()
    for fd in held["fds"]:
        os.close(fd)
    for handle in held["files"]:
        handle.close()
    held["tensors"].clear()


def start_thread(keep, name: str) -> threading.Thread:
    thread = threading.Thread(target=keep["stop"].wait, name=name, daemon=True)
    thread.start()
    keep["threads"].append(thread)
    return thread


def test_a_clean_function_passes():
    @no_leaks
    def clean():
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait, name="short-lived")
        thread.start()
        read, write = os.pipe()
        scratch = [torch.zeros(4, 4) for _ in range(3)]
        cycle = [torch.ones(2)]
        cycle.append(cycle)  # freed only by the garbage collector, which the check runs
        stop.set()
        thread.join()
        os.close(read)
        os.close(write)
        return len(scratch)

    assert clean() == 3
    assert clean.__name__ == "clean"


def test_a_leaked_thread_is_named(keep):
    @no_leaks
    def leaky():
        start_thread(keep, "worker-3")

    with pytest.raises(AssertionError) as raised:
        leaky()
    assert str(raised.value) == "test_a_leaked_thread_is_named.<locals>.leaky leaked 1 thread (worker-3)"


def test_leaked_file_descriptors_are_named(keep, tmp_path):
    path = tmp_path / "x"
    with pytest.raises(AssertionError) as raised:
        with no_leaks():
            keep["files"].append(open(path, "w"))
            keep["fds"].extend(os.pipe())
    message = str(raised.value)
    assert message.startswith(f"leaked 3 file descriptors ({path}, pipe:[")
    assert message.count("pipe:[") == 2


def test_leaked_tensors_are_counted_and_described(keep):
    with pytest.raises(AssertionError) as raised:
        with no_leaks():
            keep["tensors"].extend([torch.zeros(2, 8), torch.zeros(3, dtype=torch.int64), torch.ones(())])
    message = str(raised.value)
    assert message.startswith("leaked 3 tensors (")
    for described in ("float32[2, 8] on cpu", "int64[3] on cpu", "float32[] on cpu"):
        assert described in message


def test_many_leaked_tensors_are_shown_five_at_most(keep):
    with pytest.raises(AssertionError) as raised:
        with no_leaks():
            keep["tensors"].extend(torch.zeros(1) for _ in range(7))
    assert str(raised.value) == "leaked 7 tensors (" + ", ".join(["float32[1] on cpu"] * 5) + ", ...)"


def test_every_leaked_resource_is_in_one_message(keep, tmp_path):
    path = tmp_path / "log"

    @no_leaks
    def leaks_everything():
        start_thread(keep, "stuck")
        keep["files"].append(open(path, "w"))
        keep["tensors"].append(torch.zeros(5))

    with pytest.raises(AssertionError) as raised:
        leaks_everything()
    assert str(raised.value).endswith(
        f"leaks_everything leaked 1 thread (stuck), 1 file descriptor ({path}), 1 tensor (float32[5] on cpu)"
    )


def test_tolerance_per_resource(keep):
    with no_leaks(threads=1, tensors=2):
        start_thread(keep, "allowed")
        keep["tensors"].extend([torch.zeros(1), torch.zeros(1)])
    with pytest.raises(AssertionError) as raised:
        with no_leaks(threads=1):
            start_thread(keep, "one")
            start_thread(keep, "two")
    assert str(raised.value) == "leaked 2 threads (one, two)"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_a_bad_tolerance_is_refused(bad):
    with pytest.raises(ValueError, match=r"the tolerance fds must be an integer >= 0"):
        no_leaks(fds=bad)


def test_the_checked_codes_own_error_propagates_unchanged(keep):
    error = KeyError("the test's own failure")
    with pytest.raises(KeyError) as raised:
        with no_leaks():
            start_thread(keep, "not-reported")
            raise error
    assert raised.value is error


@pytest.mark.slow  # a gate run of seconds: .ci/run runs it
def test_async_functions_are_checked():
    async def main(keep):
        @no_leaks
        async def clean():
            await asyncio.sleep(0)
            return "ok"

        @no_leaks(fds=0)
        async def leaky():
            await asyncio.sleep(0)
            start_thread(keep, "async-worker")

        assert asyncio.iscoroutinefunction(leaky)
        assert await clean() == "ok"
        # concurrent calls of one decorated coroutine each keep their own starting counts
        assert await asyncio.gather(clean(), clean(), clean()) == ["ok"] * 3
        with pytest.raises(AssertionError, match=r"^test_async_functions_are_checked.<locals>.main.<locals>.leaky "
                                                 r"leaked 1 thread \(async-worker\)$"):
            await leaky()

    keep = {"threads": [], "stop": threading.Event()}
    try:
        asyncio.run(main(keep))
    finally:
        keep["stop"].set()
        for thread in keep["threads"]:
            thread.join()


def test_async_with_lets_the_loop_run_its_scheduled_callbacks_first():
    """A callback already scheduled on the loop holds a tensor until it runs: `async with` gives
    the loop that turn before looking, a plain `with` inside a coroutine does not."""

    async def main():
        loop = asyncio.get_running_loop()
        async with no_leaks():
            loop.call_soon(len, [torch.zeros(3)])
        with pytest.raises(AssertionError, match=r"^leaked 1 tensor \(float32\[3\] on cpu\)$"):
            with no_leaks():
                loop.call_soon(len, [torch.zeros(3)])
        await asyncio.sleep(0)

    asyncio.run(main())


def test_a_decorated_unittest_method(keep):
    import unittest

    class Case(unittest.IsolatedAsyncioTestCase):
        @no_leaks
        async def test_leaks(self):
            keep["tensors"].append(torch.zeros(2))

        @no_leaks
        async def test_clean(self):
            await asyncio.sleep(0)

    result = unittest.TestResult()
    unittest.TestSuite([Case("test_leaks"), Case("test_clean")]).run(result)
    assert result.errors == []
    assert [(case.id().rsplit(".", 1)[1], str(err).splitlines()[-1]) for case, err in result.failures] == [
        ("test_leaks", "AssertionError: test_a_decorated_unittest_method.<locals>.Case.test_leaks "
                       "leaked 1 tensor (float32[2] on cpu)")
    ]
    assert result.testsRun == 2


def test_the_check_object_can_be_reused(keep):
    check = LeakCheck()
    with check:
        pass
    with pytest.raises(AssertionError, match=r"^leaked 1 tensor"):
        with check:
            keep["tensors"].append(torch.zeros(1))


def test_the_gate_does_not_import_torch(tmp_path):
    """Without torch imported, threads and descriptors are still checked and no tensor is counted."""
    script = (
        "import os, sys\n"
        "from gate.testing.leaks import no_leaks, take_snapshot\n"
        "assert 'torch' not in sys.modules\n"
        "assert take_snapshot().tensors is None\n"
        "kept = []\n"
        "try:\n"
        "    with no_leaks():\n"
        f"        kept.append(open({str(tmp_path / 'f')!r}, 'w'))\n"
        "except AssertionError as exc:\n"
        "    print(exc)\n"
        "assert 'torch' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"leaked 1 file descriptor ({tmp_path / 'f'})\n"


@pytest.mark.cuda
def test_leaked_cuda_memory_is_counted(keep):
    torch.cuda.init()
    with pytest.raises(AssertionError) as raised:
        with no_leaks():
            keep["tensors"].append(torch.zeros(1024, device="cuda"))
    message = str(raised.value)
    assert message.startswith("leaked 1 tensor (float32[1024] on cuda:0), ")
    assert message.endswith(" bytes of CUDA memory")
    assert int(message.rsplit(", ", 1)[1].split()[0]) >= 4096
    with no_leaks(cuda_bytes=0):
        scratch = torch.ones(1024, device="cuda")
        del scratch
