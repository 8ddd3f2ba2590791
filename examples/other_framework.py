"""Features saved by another framework (JAX, TensorFlow, a .npy from a paper): no torch.

Write arrays and labels in the run-directory format with numpy alone, then analyse them
like any run; or skip the disk and hand the arrays to the analysis directly.
    python examples/other_framework.py OUT_DIR     # writes OUT_DIR/features and OUT_DIR/analysis
"""
import sys
from pathlib import Path

import numpy as np

import repflat
import repflat.analysis as ra
from repflat.rundir.features import FeatureWriter

out = Path(sys.argv[1] if len(sys.argv) > 1 else "other_framework_run")

# ---- stand-ins for features computed elsewhere: 3 classes on 4-dimensional planes in 32-D
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(3), 200)
basis = rng.normal(size=(3, 4, 32))
hidden = np.einsum("nk,nkd->nd", rng.normal(size=(600, 4)), basis[labels]) + 5 * basis[labels, 0]

# ---- in memory: arrays straight to the analysis
spectra = ra.class_spectra(hidden, labels)
print({k: np.round(s[:6], 2).tolist() for k, s in spectra.items()})  # 4 values per class, then ~0

# ---- on disk, in the documented format (README: "The run directory"), then `repflat analyze`
writer = FeatureWriter(out)
writer.add_labels("train", labels)
writer.add("train", 0, "encoder.block3", hidden.astype(np.float32))
writer.set_class_names(["cat", "dog", "fox"])
print(repflat.Features(out))

result = ra.analyze([out], out / "analysis")  # tables, figures, report.html
print(f"wrote {len(result)} files; open {out / 'analysis' / 'report.html'}")
