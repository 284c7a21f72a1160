"""`dpa ingest capture`: SIP/RTP captures (pcap, pcapng) as signalling and audio records.

Registers on `dpa ingest`'s app (imported by `dpa.cli`); the parsing is
`dpa.parsers.captures.parse_captures`, the storage `dpa.ingest` through `run_ingest`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpa.cli._common import JSON_OPTION
from dpa.cli.ingest import CustomerOpt, RegionOpt, app, run_ingest
from dpa.parsers.captures import parse_captures

__all__ = ["capture"]


@app.command("capture")
def capture(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, help="Capture files (pcap, pcapng) or folders of them."),
    ],
    customer: CustomerOpt,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """SIP and RTP captures as tcpdump, sngrep or a HEP collector write them (pcap or
    pcapng; a folder is searched for *.pcap, *.pcapng and *.cap): one record per capture
    file, kept whole and encrypted, under the signalling activity. The SIP calls in it
    (over UDP or TCP, any port, also inside HEP3) give its people: the From, To and
    P-Asserted-Identity numbers and the IP addresses of signalling and media, so `dpa
    subject find` reaches the capture. A capture of RTP only is kept too (it names no one).
    Refused, with nothing stored: a file that is neither pcap nor pcapng, a capture cut
    short (named by its folder, position and packet number), one without any packet.
    Packet times are UTC."""
    label = f"{len(files)} capture path(s)"  # tools put phone numbers in capture names
    run_ingest(ctx, label, "pcap", customer, lambda r: parse_captures(files), as_json, region)
