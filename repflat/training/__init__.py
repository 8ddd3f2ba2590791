"""Training runs: a RunConfig into a complete run directory, and experiments of them.

loop (`setup`, `train`, `fit`: the loop you read top to bottom), mixing (the mixers the
loop calls once per batch), losses, evaluate and premise (what each epoch measures),
checkpoint (resuming bit for bit), snapshot (what a run captures at its chosen epochs,
through repflat.capture), claim (whether a directory may take a run), models, sweep
(`repflat run`: arms × seeds) and launch (each run as a cluster job). Training captures
through capture; capture never imports training.
"""
