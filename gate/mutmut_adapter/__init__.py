"""The only part of the gate that knows mutmut (the import walls in pyproject.toml check it).

- `client`: the gate's side; generates and runs mutants through a driver process. Imports no mutmut.
- `naming`: mutmut's file and name conventions, without importing mutmut (what the two
  processes say to each other is `gate.wire.driver`'s).
- `driver`: the process that imports mutmut; `mutate` (the generate phase) and `runner` with
  `run_state` and `kept_session` (the run phase) run in it.
- `internals`: every mutmut name and convention the driver relies on, checked by one test.
"""
