"""Parsers for the files a telephony provider holds personal data in.

One module per format, each a generator of `ParsedRecord`:

* `asterisk_cdr`: Asterisk cdr_csv `Master.csv` call detail records;
* `freeswitch`: FreeSWITCH mod_cdr_csv files and mod_json_cdr documents;
* `voicemail`: an Asterisk app_voicemail spool (`msgNNNN.txt` plus audio);
* `recordings`: call recordings named the FreePBX/MixMonitor way, or with a JSON sidecar;
* `contacts`: a customer's contact list as a headered CSV.
"""

from __future__ import annotations

from dpa.parsers.asterisk_cdr import parse_cdr_csv
from dpa.parsers.base import ParsedRecord
from dpa.parsers.contacts import parse_contacts_csv
from dpa.parsers.freeswitch import (
    json_cdr_files,
    parse_freeswitch_csv,
    parse_freeswitch_json,
    read_freeswitch_json,
)
from dpa.parsers.recordings import parse_recordings
from dpa.parsers.voicemail import parse_voicemail_spool

__all__ = [
    "ParsedRecord",
    "json_cdr_files",
    "parse_cdr_csv",
    "parse_contacts_csv",
    "parse_freeswitch_csv",
    "parse_freeswitch_json",
    "parse_recordings",
    "parse_voicemail_spool",
    "read_freeswitch_json",
]
