"""The retention engine: due dates, plans, sweeps, holds, scheduling (see DESIGN.md).

Empty until the retention issue lands; it may import `dpa`, never the other way round.
"""

__all__: list[str] = []
