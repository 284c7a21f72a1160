"""`dpa ingest id-document`: identity documents checked for a subscriber, stored encrypted.

Reads document images or PDFs (JPEG, PNG, TIFF, PDF, HEIC/HEIF) each with a sidecar: dpa's
own JSON or YAML (holder, phone/e-mail, document type and number, issuing country, outcome,
verified_at) or Veriff's decision webhook payload. The parser is `dpa.parsers.iddocs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dpa.cli._common import JSON_OPTION
from dpa.cli.ingest import CustomerOpt, RegionOpt, app, run_ingest, zone_option
from dpa.parsers.iddocs import parse_id_documents

__all__ = ["id_document"]


@app.command("id-document")
def id_document(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            help="Document files (.jpg, .jpeg, .png, .tif, .tiff, .pdf, .heic, .heif) or folders.",
        ),
    ],
    customer: CustomerOpt,
    tz: Annotated[
        str | None,
        typer.Option(help="Timezone of sidecar times without an offset (default: the register's)."),
    ] = None,
    vendor_data: Annotated[
        str | None,
        typer.Option(
            "--vendor-data",
            help="email or phone: what a Veriff decision's vendorData holds (the subscriber's "
            "e-mail address or phone number, as the provider sent it to Veriff). Without it a "
            "Veriff decision is refused: it would name nobody dpa can find.",
        ),
    ] = None,
    region: RegionOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Identity documents (register activity identity_check): a scan or photo of a passport,
    ID card, residence permit or driving licence, each with a sidecar of the same name
    (.json, .yaml or .yml). The sidecar gives the holder, the subscriber's phone and/or
    e-mail, document_type, document_number (optional), issuing_country, outcome (verified,
    rejected, expired, pending), verified_at (a date, or a date and time; without an offset
    in --tz) and verified_by; a pending verification gives uploaded_at instead. A Veriff
    decision webhook payload is accepted as the sidecar (see --vendor-data). The record is
    dated by the verification (the upload for a pending one): the register keeps the image
    30 days from there. Refused, storing nothing: a file that is not what its extension
    says (by its first bytes), a document without a sidecar, a sidecar without a document,
    a malformed sidecar. Errors name a document by its folder and position, never its name."""
    if vendor_data is not None and vendor_data not in ("email", "phone"):
        raise typer.BadParameter("email or phone", param_hint="--vendor-data")
    held: Literal["email", "phone"] | None = (
        "email" if vendor_data == "email" else "phone" if vendor_data == "phone" else None
    )
    label = f"{len(files)} identity document path(s)"  # names may carry the holder's name
    run_ingest(
        ctx,
        label,
        "id-document",
        customer,
        lambda r: parse_id_documents(files, zone_option(tz, r), vendor_data=held),
        as_json,
        region,
    )
