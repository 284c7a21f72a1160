"""Portability exports: streamed, schema-checked, encrypted packages (see DESIGN.md).

Empty until the export issue lands; it may import `dpa`, never the other way round.
"""

__all__: list[str] = []
