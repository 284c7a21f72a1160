"""`dpa.db` reads the schema's revision without alembic: it must agree with alembic."""

from __future__ import annotations

import ast
import subprocess
import sys

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dpa import db
from dpa.config import Settings
from dpa.workspace import Workspace


def _alembic_head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _alembic_current(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_head_is_alembics_head() -> None:
    assert db.head_revision() == _alembic_head()


def test_every_migration_is_named_after_its_revision_and_revises_the_one_before() -> None:
    files = sorted((db.MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert len(files) >= 11
    previous = None
    for path in files:
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                name = target.id if isinstance(target, ast.Name) else ""
                if name in ("revision", "down_revision") and node.value is not None:
                    values[name] = ast.literal_eval(node.value)
        assert values == {"revision": path.name[:4], "down_revision": previous}, path.name
        previous = path.name[:4]
    # No other file could hold a migration alembic would find and the name scan would not.
    others = [
        p.name
        for p in (db.MIGRATIONS / "versions").glob("*.py")
        if p not in files and p.name != "__init__.py"
    ]
    assert others == []


def test_current_revision_agrees_with_alembic_before_and_after_init(
    settings: Settings, ws: Workspace
) -> None:
    assert db.current_revision(ws.engine) == _alembic_current(ws.engine) == db.head_revision()
    empty = db.make_engine(f"sqlite:///{settings.home / 'empty.db'}")
    try:
        assert db.current_revision(empty) is None
        assert _alembic_current(empty) is None
    finally:
        empty.dispose()


def test_opening_a_workspace_imports_no_alembic(settings: Settings, ws: Workspace) -> None:
    code = (
        "import sys\n"
        "from dpa.config import Settings\n"
        "from dpa.workspace import Workspace\n"
        "Workspace.open(Settings.from_env()).close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
