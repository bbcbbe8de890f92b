"""Everything that crosses between the gate's processes, as typed, versioned values.

The gate starts five kinds of child process, and each boundary has one module here that owns
its messages (frozen dataclasses) and their format number, with the format's history:

- `driver`: the mutmut driver (`gate.mutmut_adapter.driver`): its specs, the jobs, its events and
  results, and the result file each mutant worker writes;
- `probe`: the survivors' probe (`gate.mutmut_adapter.probe`): its spec and what it observed;
- `measurement`: the suite's unmutated run under coverage (its pytest plugin's report of what
  the suite imported and read, and the durations its split uses);
- `types`: the exception-type child (`gate.steps.exception_types`);
- `coverage_html`: the child that writes coverage.py's HTML report.

`codec` reads and writes them all, strictly: a missing or unknown field is a `WireError` that
names the field, the message and the format, never a default."""
