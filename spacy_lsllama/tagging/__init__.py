"""What ``lsllama tag`` does, independent of the engine that runs the pipeline.

lines (read and check input lines), records (Doc -> output line), resume (run header and
checkpoints), files (which files a run reads and writes), report (what the user sees), run
(the driver loop every engine shares), job (one run from start to end), engine (the
interface an engine implements), local (the engine that runs spaCy in this process),
ray_engine (the same contract on a Ray cluster's actors) and ray_data (Ray Data datasets
annotated by actors, for users who live in Ray).
Modules that need spaCy or torch are imported only by whoever uses them.
"""
