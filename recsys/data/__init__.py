"""Load and validate the input layout into one in-memory :class:`Network`.

A data directory holds the tables ``members``, ``interests`` and ``connections`` (and optionally
``introductions``), each as ``NAME.csv``, ``NAME.csv.gz`` or ``NAME.parquet``. Loading turns the
member ids into contiguous rows once, builds the member x member and member x interest CSR
matrices, and checks the input on the way: every problem is a :class:`DataValidationError`
naming the file, the line (or Parquet row) and the problem.

Modules:

- ``_network``: the :class:`Network` dataclass and its accessors (``rows_of``,
  ``bool_attribute``, ``numeric_attribute``, ``with_connections``), and the canonical edge list
  and adjacency matrix it rebuilds.
- ``_validation``: :class:`DataValidationError`, the table source that numbers lines for
  messages, the checks, and parsing cell values (strings, numbers, times, NA tokens).
- ``_build``: :func:`network_from_frames`, validated tables to member rows and CSR matrices.
- ``_tables``: :func:`read_table`, finding the tables in a directory, :func:`load_network` and
  :func:`write_tables`.
"""

from recsys.data._build import network_from_frames
from recsys.data._network import Network
from recsys.data._tables import load_network, read_table, write_tables
from recsys.data._validation import NA_TOKENS, UNDISCLOSED, DataValidationError

__all__ = [
    "NA_TOKENS",
    "UNDISCLOSED",
    "DataValidationError",
    "Network",
    "load_network",
    "network_from_frames",
    "read_table",
    "write_tables",
]
