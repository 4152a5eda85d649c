"""``make bench``: the stock write-path benchmark (``bench/stock.py``), arguments passed on.

A module import, not ``runpy``: the client processes are spawned and must find the worker
function as ``bench.stock.worker``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stock import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
