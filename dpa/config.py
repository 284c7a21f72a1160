"""Where dpa keeps its things, read once from the environment.

`DPA_HOME` (default `./.dpa`) holds the SQLite database, the master key file and, later,
encrypted blobs and export packages. `DPA_DATABASE_URL` points at another database
(PostgreSQL, `postgresql+psycopg://...`) when one machine is not enough. `DPA_MASTER_KEY`
(base64 of 32 bytes) replaces the key file, for deployments that keep keys in a secret store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]

KEY_FILE_NAME = "master.key"
DATABASE_FILE_NAME = "dpa.sqlite3"


@dataclass(frozen=True, slots=True)
class Settings:
    """The paths and URLs one dpa installation uses."""

    home: Path
    database_url: str
    master_key_b64: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read DPA_HOME, DPA_DATABASE_URL and DPA_MASTER_KEY (defaults: ./.dpa, SQLite there)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("DPA_HOME") or ".dpa").absolute()
        url = env.get("DPA_DATABASE_URL") or f"sqlite:///{home / DATABASE_FILE_NAME}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            # A relative SQLite path is relative to where dpa runs: pin it now, so every
            # command finds the same file.
            relative = url.removeprefix("sqlite:///")
            if relative and not relative.startswith(":memory:"):
                url = f"sqlite:///{Path(relative).absolute()}"
        return cls(home=home, database_url=url, master_key_b64=env.get("DPA_MASTER_KEY") or None)

    @property
    def key_file(self) -> Path:
        """The master key file made by `dpa init` when DPA_MASTER_KEY is not set."""
        return self.home / KEY_FILE_NAME

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite default (or another SQLite file)."""
        return self.database_url.startswith("sqlite")

    @property
    def database_label(self) -> str:
        """The database URL with any password removed, safe to print."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "(not a database URL)"
