"""repflat: what a regularizer does to the hidden representations of a network.

The torch side (data, models, mixing, training, capture) lives in submodules that are
imported on use; importing `repflat` itself, or its torch-free modules (`config`,
`store`, `rundir`, `errors`), never imports torch, so the analysis side can share them.
"""
__version__ = "0.1.0"
