"""Reading the analysis side's text tables from directories someone else may have made.

Every CSV goes through `read_csv` (repflat.files, where the run directory's own
metrics.csv is read the same way): a regular file inside the directory (never a link, a
FIFO or a device), UTF-8, parsed by pandas, and refused in one line naming the file when
it is not a table.
"""
from repflat.files import numeric_columns, read_csv

__all__ = ["numeric_columns", "read_csv"]
