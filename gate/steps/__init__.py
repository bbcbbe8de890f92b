"""The steps of a run, each a module with one job, in the order `gate.run.run_gate` takes them:

1. `snapshot`: copy the project into the cache folder; every later step reads the copy.
2. `regions`: find the error-handling regions of the guarded files.
3. `scope`: for `--changed`, the regions a change touches and the tests its measurement needs.
4. `measurement` (with `measurement_plugin` in the suite's processes, `coverage_html` beside):
   the suite under coverage; beside it, `generation` resolves the caught types
   (`exception_types`), has mutmut make the mutants, and starts the fork server of step 6 early
   when the measurement really runs.
5. `selection`: each in-region mutant with the policy's word and the tests that run its lines;
   `plan`: what is known without a run (the result `cache`, skips, untested) and the jobs.
6. `mutants`: the jobs through mutmut's fork server, each outcome checked and cached as it lands;
   then `explain`: for each survivor, the check its tests lack.
7. `judgement`: the rules (`gate.rules`) applied to what was checked: the `GateResult`.
"""
