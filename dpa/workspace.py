"""One dpa installation: its settings, database and master key; `init` creates it.

`Workspace.open` refuses a database `dpa init` has not set up (or one whose schema is behind
this version of dpa, or whose records still carry source keys of an older identity rule:
`init` re-keys them, see `dpa.ingest.rekey`), then loads the master key (the key file must be 0600) and checks its
fingerprint before it returns: no command can read or write data under a missing, malformed,
exposed or wrong key, because no command gets a workspace without a good one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dpa import db, ledger
from dpa import register as register_mod
from dpa.blobs import BlobStore
from dpa.config import Settings
from dpa.crypto import FieldCipher, MasterKey, create_key_file, load_master_key
from dpa.errors import InputError, MasterKeyMissing, NotInitialised
from dpa.identity_state import identity_pending
from dpa.keyring import FINGERPRINT, SINCE, VERSION, Keyring
from dpa.models import Meta

if TYPE_CHECKING:
    from dpa.ingest import RekeyReport

__all__ = ["InitReport", "Workspace", "init"]


class Workspace:
    """An opened installation: hands out sessions and the (checked) master key."""

    def __init__(self, settings: Settings, engine: Engine, keyring: Keyring) -> None:
        self.settings = settings
        self.engine = engine
        self._keyring = keyring

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        """Open an installation made by `dpa init`; refuse (KeyProblem) a bad master key."""
        if settings.is_sqlite and not _sqlite_file_exists(settings):
            raise NotInitialised(f"no dpa database in {settings.home}: run `dpa init` first")
        engine = _engine(settings)
        try:
            revision = db.current_revision(engine)
        except sa.exc.OperationalError as exc:
            engine.dispose()
            raise NotInitialised(
                f"cannot reach the database {settings.database_label}: {exc.orig}"
            ) from None
        if revision is None:
            engine.dispose()
            raise NotInitialised(f"{settings.database_label} is empty: run `dpa init` first")
        if revision != db.head_revision():
            engine.dispose()
            raise NotInitialised(
                f"the database schema is at {revision}, this dpa needs {db.head_revision()}: "
                "run `dpa init` to upgrade it"
            )
        with db.session_scope(engine, read_only=True) as session:
            fingerprint = session.get(Meta, FINGERPRINT)
            version = session.get(Meta, VERSION)
            pending = fingerprint is not None and identity_pending(session)
        if fingerprint is None or version is None:
            engine.dispose()
            raise NotInitialised("the database has no master key fingerprint: run `dpa init`")
        try:
            key = load_master_key(settings)
            key.check(fingerprint.value)
        except BaseException:
            engine.dispose()
            raise
        if pending:  # after the key: a key problem is exit 4 whatever else is wrong
            engine.dispose()
            raise NotInitialised(
                "the database holds records keyed by an older identity rule (uniqueid, msg_id): "
                "run `dpa init` to upgrade it (it re-keys them; the master key is needed)"
            )
        return cls(settings, engine, Keyring(key, int(version.value)))

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A transaction: committed at the end of the block, rolled back on error."""
        with db.session_scope(self.engine, read_only=read_only) as session:
            yield session

    @property
    def keyring(self) -> Keyring:
        """Keys under the master key (checked against the database when the workspace opened)."""
        return self._keyring

    @property
    def key_fingerprint(self) -> str:
        """The fingerprint of the master key in use."""
        return self._keyring.master.fingerprint

    @property
    def key_version(self) -> int:
        """The version of the master key in use (one more after each rotation)."""
        return self._keyring.master_version

    def stored_fingerprint(self) -> str | None:
        """The master key fingerprint the database expects now (read afresh)."""
        with self.session(read_only=True) as session:
            row = session.get(Meta, FINGERPRINT)
        return None if row is None else row.value

    def fields(self, session: Session) -> FieldCipher:
        """The cipher for customers' names and contacts."""
        return FieldCipher(self.keyring.system_key(session, "customer-fields"))

    def checkpoint_key(self, session: Session) -> bytes:
        """The key that signs ledger checkpoints."""
        return self.keyring.system_key(session, "ledger-checkpoint")

    @property
    def blobs(self) -> BlobStore:
        """The encrypted blob files under DPA_HOME/blobs."""
        return BlobStore(self.settings.home / "blobs")

    @property
    def exports(self) -> Path:
        """The folder of encrypted export packages: DPA_HOME/exports."""
        return self.settings.home / "exports"

    def register(self, session: Session) -> register_mod.Register:
        """The register in force."""
        return register_mod.current(session).register


def _sqlite_file_exists(settings: Settings) -> bool:
    try:
        database = sa.engine.make_url(settings.database_url).database
    except sa.exc.ArgumentError:
        raise InputError(
            f"DPA_DATABASE_URL is not a database URL: {settings.database_url}"
        ) from None
    return database is not None and (database == ":memory:" or Path(database).exists())


@dataclass(frozen=True, slots=True)
class InitReport:
    """What `init` did; `changed` is False when the installation was already complete."""

    home: str
    database: str
    key_fingerprint: str
    register_version: int
    done: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Whether anything was created or upgraded."""
        return bool(self.done)


def _engine(settings: Settings) -> Engine:
    try:
        return db.make_engine(settings.database_url)
    except (sa.exc.ArgumentError, ValueError):
        raise InputError(
            f"DPA_DATABASE_URL is not a database URL: {settings.database_label}"
        ) from None


def _bound_fingerprint(engine: Engine) -> str | None:
    """The master key fingerprint the database was set up with, if it was."""
    if db.current_revision(engine) is None:
        return None
    with db.session_scope(engine) as session:
        stored = session.get(Meta, FINGERPRINT)
    return None if stored is None else stored.value


def _rekey_summary(report: RekeyReport) -> str:
    kept = report.kept_anonymised + report.kept_no_media + report.kept_shared
    text = (
        f"re-keyed {report.rekeyed} of {report.records} records by their content "
        f"({report.unchanged} already were)"
    )
    if kept:
        text += (
            f"; {kept} keep their first key ({report.kept_anonymised} anonymised, "
            f"{report.kept_no_media} recordings without readable audio, "
            f"{report.kept_shared} with the same content as another record, kept both)"
        )
    return text


def init(settings: Settings, *, actor: str, now: datetime) -> InitReport:
    """Create home, key file, schema and default register; leave whatever exists as it is."""
    done: list[str] = []
    engine = _engine(settings)
    try:
        if not settings.home.exists():
            settings.home.mkdir(parents=True, mode=0o700)
            done.append(f"created {settings.home}")
        try:
            bound = _bound_fingerprint(engine)
        except sa.exc.OperationalError as exc:
            raise NotInitialised(
                f"cannot reach the database {settings.database_label}: {exc.orig}"
            ) from None
        if settings.master_key_b64 is None and not settings.key_file.exists():
            if bound is not None:
                # A new key would only lock the data away: refuse rather than guess.
                raise MasterKeyMissing(
                    f"the database is bound to master key {bound} but {settings.key_file} is "
                    "missing: restore the key file (or set DPA_MASTER_KEY); nothing was changed"
                )
            create_key_file(settings.key_file, MasterKey.generate())
            done.append(f"created master key file {settings.key_file} (mode 0600)")
        key = load_master_key(settings)
        if bound is not None:
            key.check(bound)  # a wrong key must change nothing
        before, after = db.migrate(engine)
        if before != after:
            done.append(f"database schema {before or 'empty'} -> {after}")
        with db.session_scope(engine) as session:
            if session.get(Meta, FINGERPRINT) is None:
                session.add(Meta(key=FINGERPRINT, value=key.fingerprint))
                session.add(Meta(key=VERSION, value="1"))
                session.add(Meta(key=SINCE, value=now.isoformat()))
                ledger.append(
                    session,
                    action="init",
                    actor=actor,
                    now=now,
                    details={"key_fingerprint": key.fingerprint, "schema": after},
                )
                done.append(f"master key {key.fingerprint} bound to the database")
            version_row = session.get(Meta, VERSION)
            assert version_row is not None
            created = Keyring(key, int(version_row.value)).ensure_system_keys(session)
            if created:
                done.append(f"created system keys: {', '.join(created)}")
            try:
                stored = register_mod.current(session)
                version, zone = stored.version, stored.register.settings.timezone.key
            except NotInitialised:
                default = register_mod.default_register()
                version, _ = register_mod.install(
                    session, default, "default register", actor=actor, now=now
                )
                zone = default.settings.timezone.key
                done.append(f"installed the default register as version {version}")
            keyring = Keyring(key, int(version_row.value))
        # Records keyed by an older identity rule get their content key (batches, resumable).
        from dpa.ingest import rekey  # the ingest engine, for `dpa init` only

        rekeyed = rekey(
            engine, keyring, BlobStore(settings.home / "blobs"), zone=zone, actor=actor, now=now
        )
        if rekeyed is not None:
            done.append(_rekey_summary(rekeyed))
    finally:
        engine.dispose()
    return InitReport(
        home=str(settings.home),
        database=settings.database_label,
        key_fingerprint=key.fingerprint,
        register_version=version,
        done=tuple(done),
    )
