"""repflat's analysis side: everything computed from saved features, with numpy.

It never imports torch: it reads run directories (repflat.store's documented format)
so features saved by any framework can be analysed. Entry points:

- `analysis.spectra`: per-class singular value spectra;
- `analysis.metrics`: flattening metrics, pure functions of a spectrum, and NC1;
- `analysis.moments`, `analysis.streaming`: mergeable float64 class moments and the
  chunked path for features larger than memory;
- `analysis.flattening`: tidy spectra/flattening frames from run directories;
- `analysis.boundary`, `analysis.plots`, `analysis.figures`, `analysis.embeddings`,
  `analysis.toy`: figures;
- `analysis.document.build_report`: the report every command leaves;
- `analysis.pipeline.analyze`, `analysis.pipeline.report`: what `repflat analyze` and
  `repflat report` run.
"""
