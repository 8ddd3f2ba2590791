"""The hidden features of any model, in memory or streamed into a run directory.

extract (`repflat.extract`), inputs (what it takes as data: a Dataset, a DataLoader read
as a loop reads it, (X, y), a dict of splits, a data config), engine (the one capture
loop both destinations share, resumable and split between ranks under torchrun),
catalog (`repflat.layers`: every name, with its shape), discriminative (the Jacobian
summaries Corollary 1's measures need), probes2d and boundary (what 2-D decision
boundaries are drawn from). Layers are named as repflat.base.layers says.
"""
