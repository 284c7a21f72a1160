"""Parsers for the files a telephony provider holds personal data in.

One module per format, each a generator of `ParsedRecord`:

* `asterisk_cdr`: Asterisk cdr_csv `Master.csv` call detail records;
* `freeswitch`: FreeSWITCH mod_cdr_csv files and mod_json_cdr documents;
* `voicemail`: an Asterisk app_voicemail spool (`msgNNNN.txt` plus audio);
* `recordings`: call recordings named the FreePBX/MixMonitor way, or with a JSON sidecar;
* `contacts`: a customer's contact list: a headered CSV, Google or Outlook CSV, vCard;
* `fax`: received faxes: Asterisk/FreePBX TIFFs and mailed PDFs with sidecars, HylaFAX
  xferfaxlog `RECV` lines with their recvq files;
* `iddocs`: identity documents (image or PDF) with a dpa or Veriff sidecar;
* `iplogs`: Asterisk security events, PJSIP/chan_sip registrations, Common/Combined access
  logs: one `ip_address` record per event;
* `captures`: SIP/RTP captures (pcap, pcapng; SIP over UDP, TCP, HEP3), one record per file;
* `callbacks`: the call-back (to-react) list as CSV, and entries derived from stored CDRs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpa.parsers.asterisk_cdr import parse_cdr_csv
    from dpa.parsers.base import ParsedRecord
    from dpa.parsers.callbacks import missed_calls, parse_callback_csv
    from dpa.parsers.captures import parse_captures
    from dpa.parsers.contacts import parse_contacts_csv
    from dpa.parsers.fax import HylafaxScan, parse_fax_files, parse_hylafax
    from dpa.parsers.freeswitch import (
        json_cdr_files,
        parse_freeswitch_csv,
        parse_freeswitch_json,
        read_freeswitch_json,
    )
    from dpa.parsers.iddocs import parse_id_documents
    from dpa.parsers.iplogs import detect_format, parse_ip_log
    from dpa.parsers.recordings import parse_recordings
    from dpa.parsers.voicemail import parse_voicemail_spool

# Each name's module, imported when the name is first used (PEP 562): importing one parser
# (`dpa.parsers.base` for dpa.ingest, `dpa.parsers.contacts` for an export) loads the package,
# and the package alone loads none of them, so no command pays for formats it does not read
# (the capture parser's dpkt, the vCard parser's vobject).
_MODULES = {
    "HylafaxScan": "fax",
    "ParsedRecord": "base",
    "detect_format": "iplogs",
    "json_cdr_files": "freeswitch",
    "missed_calls": "callbacks",
    "parse_callback_csv": "callbacks",
    "parse_captures": "captures",
    "parse_cdr_csv": "asterisk_cdr",
    "parse_contacts_csv": "contacts",
    "parse_fax_files": "fax",
    "parse_freeswitch_csv": "freeswitch",
    "parse_freeswitch_json": "freeswitch",
    "parse_hylafax": "fax",
    "parse_id_documents": "iddocs",
    "parse_ip_log": "iplogs",
    "parse_recordings": "recordings",
    "parse_voicemail_spool": "voicemail",
    "read_freeswitch_json": "freeswitch",
}


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next use is a plain attribute
    return value


__all__ = [
    "HylafaxScan",
    "ParsedRecord",
    "detect_format",
    "json_cdr_files",
    "missed_calls",
    "parse_callback_csv",
    "parse_captures",
    "parse_cdr_csv",
    "parse_contacts_csv",
    "parse_fax_files",
    "parse_freeswitch_csv",
    "parse_freeswitch_json",
    "parse_hylafax",
    "parse_id_documents",
    "parse_ip_log",
    "parse_recordings",
    "parse_voicemail_spool",
    "read_freeswitch_json",
]
