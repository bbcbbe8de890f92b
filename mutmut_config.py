"""This repository's mutation policy (read by `python -m gate`; see README, "Settings").

The gate guards the engine's error handling: every except handler, finally body and raise in
`shardengine/`, and the functions named below, which release state and must be tested as such.
"""

guarded_paths = ["shardengine"]

# whole functions whose every statement is error-handling code: releasing the model after an OOM
cleanup_functions = ["clear_model", "_recover_from_oom", "clear_cache", "shutdown"]
