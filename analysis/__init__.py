"""repflat's analysis side: everything computed from saved features, with numpy.

It never imports torch: it reads run directories (repflat.rundir.features's documented format)
so features saved by any framework can be analysed. Entry points:

- `repflat.analysis.spectra`: per-class singular value spectra;
- `repflat.analysis.metrics`: flattening metrics, pure functions of a spectrum, and NC1;
- `repflat.analysis.moments`, `repflat.analysis.gram`: mergeable float64 class moments and the
  chunked path for features larger than memory;
- `repflat.analysis.tidy`: tidy spectra/flattening frames from run directories;
- `repflat.analysis.report.plotting.boundary`, `repflat.analysis.report.plotting.plots`, `repflat.analysis.report.figures`, `repflat.analysis.embeddings`,
  `repflat.analysis.report.toy`: figures;
- `repflat.analysis.report.build.build_report`: the report every command leaves;
- `repflat.analysis.pipeline.analyze`, `repflat.analysis.pipeline.report`: what `repflat analyze` and
  `repflat report` run.
"""
