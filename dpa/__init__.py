"""dpa: a telephony provider's GDPR promises, kept mechanically.

The core package: configuration, database, processing register, customers and contract
lifecycle, master key, ledger and the Art. 30 record. The engines (`retention`, `exports`)
build on it; `dpa.cli` wires all of them into the `dpa` command.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
