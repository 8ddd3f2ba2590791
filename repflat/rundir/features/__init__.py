"""Saved features: the part of the run directory both sides of repflat meet at.

Layout (format 1; the README documents it for people writing from other tools)::

    RUN/
      config.yaml             resolved run config (a valid `repflat train` input)
      run.json                {"format", "status": "running"|"complete", name, strategy, seed, ...}
      metrics.csv             one row per epoch: epoch, train_loss, test_accuracy, test_nll, seconds
      checkpoint.pt           final weights (torch; loaded with weights_only=True)
      features/
        manifest.json         {"format", "entries": [...], "labels": {split: path},
                               "labels_sha256": {split: hex}, "splits": {split: info},
                               "class_names": [name of label 0, ...] (optional)}
        <split>/labels.npy    integer class of each row
        <split>/epoch<E>/<layer>.npy   float array, shape (n_samples, n_features)

Every file is written to a temporary name and moved into place with `os.replace`, and
an array joins the manifest only after it is complete and hashed, so a reader never sees
a partial array under a listed name. Reading needs numpy alone; arrays are loaded with
`allow_pickle=False`, paths are confined to the run directory, checksums are verified.

- `FeatureSet` (featureset): what every set of features offers, documented once;
- `Features` (reader): a run directory's, read from its manifest;
- `MemoryFeatures` (memory): arrays held in memory (`repflat.extract(..., out=None)`);
- `FeatureWriter` (writer): arrays to disk, then into the manifest;
- `Entry`, `Discriminative`, `parse_manifest` (entries): what a manifest lists, checked.
"""
from repflat.rundir.features.entries import Discriminative, Entry, parse_manifest
from repflat.rundir.features.featureset import FINAL, FeatureSet
from repflat.rundir.features.memory import MemoryFeatures
from repflat.rundir.features.reader import Features
from repflat.rundir.features.writer import FeatureWriter

__all__ = ["FINAL", "Discriminative", "Entry", "FeatureSet", "FeatureWriter", "Features",
           "MemoryFeatures", "parse_manifest"]
