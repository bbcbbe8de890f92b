"""The measurement split across processes (`gate.steps.measurement`, `gate.steps.measurement_plugin`): how many,
and that the combined data says exactly what one process says."""

from __future__ import annotations

import pytest

from gate.steps import measurement as measurement_step
from gate.steps.regions import find_regions, iter_python_files
from tests.gate.conftest import copy_fixture


@pytest.mark.parametrize("workers, tests, start, cores, processes", [
    (2, 60.0, 3.0, 2, 1),     # 2 cores: the work beside the measurement keeps them busy
    (4, 60.0, 3.0, 4, 2),
    (16, 600.0, 3.0, 16, 8),  # never more than MAX_PROCESSES
    (16, 11.0, 7.8, 16, 1),   # the bundled engine on a 16-core GPU machine: its start outweighs its tests
    (16, 30.0, 5.0, 16, 6),   # each share's tests outweigh a process's start
    (16, 3.0, 0.5, 16, 1),    # and at least MIN_PROCESS_SECONDS of tests
    (1, 600.0, 3.0, 16, 1),   # never more than the workers
    (16, None, None, 16, 1),  # no earlier measurement to go by
])
def test_the_number_of_processes(workers, tests, start, cores, processes):
    assert measurement_step.process_count(workers, tests, start, cores=cores) == processes


def measured(project, data_dir, monkeypatch, processes):
    monkeypatch.setattr(measurement_step, "process_count", lambda *args, **kwargs: processes)
    files = list(iter_python_files(project, ["vault"]))
    regions = find_regions(project, files, ["close"])
    return measurement_step.measure(project, data_dir, tests=["tests"], pytest_args=[], guarded_files=files,
                                    regions=regions, report_dir=None, key=f"split-{processes}")


@pytest.mark.slow  # a real gate run: the slow tier (.ci/run runs it)
def test_a_split_measurement_measures_what_one_process_measures(tmp_path, monkeypatch):
    project = copy_fixture("strong", tmp_path)
    # a second test module, so that each of two processes has a module to run
    (project / "tests" / "test_more.py").write_text(
        "from test_store import Backend, Handle\nfrom vault.store import Store\n\n\n"
        "def test_load_twice():\n    store = Store(Backend(Handle(data='v')))\n"
        "    assert [store.load('a'), store.load('b')] == ['v', 'v']\n")
    one = measured(project, tmp_path / "one", monkeypatch, 1)
    two = measured(project, tmp_path / "two", monkeypatch, 2)
    assert two.measurement.processes == 2 and one.measurement.processes == 1
    assert set(two.measurement.durations) == set(one.measurement.durations)
    assert two.tests_by_line == one.tests_by_line
    assert [(r.region.id, r.entered, r.tests, r.missing_branches, r.branches_taken) for r in two.regions] == \
        [(r.region.id, r.entered, r.tests, r.missing_branches, r.branches_taken) for r in one.regions]
    # each shard ran its own share, whole modules or classes
    shares = [set(line.split('"nodeid": "')[1].split('"')[0] for line in (tmp_path / "two" / f"measurement-{k}.jsonl")
                  .read_text().splitlines() if '"$report_type": "TestReport"' in line) for k in (1, 2)]
    assert shares[0] and shares[1] and not shares[0] & shares[1]
