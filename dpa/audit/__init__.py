"""The DPO's audit: findings across register, store, retention and ledger, and the report."""

from dpa.audit.findings import Finding, Thresholds
from dpa.audit.report import Report, as_json, as_text, build

__all__ = ["Finding", "Report", "Thresholds", "as_json", "as_text", "build"]
