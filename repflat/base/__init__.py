"""The torch floor that capture and training both stand on, knowing neither.

- layers: the addressing scheme (module names, `name:N` calls, `input`) and the hooks
  that read or replace a named layer's output (`evaluating`, `recording`, `replacing`);
- graph: operations that are not modules (FX function nodes), read from a traced copy;
- naming: the names a model has, and a request checked against them;
- data: data sets by config, as torch Datasets, and their batches;
- distributed: which rank this is under `torchrun`, and the device it uses.

repflat.mixing (your own loop's manifold mixup), training's mixers and capture's engine
all address layers through these modules, so a name means the same tensor everywhere.
"""
