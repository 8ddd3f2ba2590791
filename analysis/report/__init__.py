"""Presentation: what an analysis says, as tables, figures and one report page.

The computation (repflat.analysis) never imports this package; it imports the
computation. outputs writes `repflat analyze` and `repflat report` into a directory (a
claimed one, swapped in whole); build assembles report.md and report.html from an
Analysis; interpret writes "What this shows" from the numbers; tables, figures, toy,
datasets and sweep draw their parts; markup holds Markdown and the Jinja2 HTML (names
from files are escaped); plotting/ has the axes-level functions any notebook can use.
"""
