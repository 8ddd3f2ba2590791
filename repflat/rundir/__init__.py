"""The run directory: THE contract between the torch side (writers) and the numpy side
(readers), and with other tools that write features for repflat to analyse.

Torch-free and plain: `.npy` arrays (never pickles), JSON, YAML and CSV text, atomic
writes, a manifest listing only complete arrays with their sha256, a `format` number.
names owns every name of the format (files, splits, metrics.csv columns, run.json keys,
`run_dirname`); features reads and writes features/; run reads a run directory once
(`read_run`) and writes its other files (`RunWriter`); experiment is an experiment
directory; lock says which directories repflat may write into, one writer at a time.
"""
