"""Typed access: mypy --strict --disallow-any-expr on a sample application, on what it infers, on mistakes.

tests/typing/ holds three modules written against `from pydb import db, users, ...` as typed by the
committed pydb/schema.py: app.py (clean, and run here on a real database), reveal.py (reveal_type
lines, each asserted exactly) and mistakes.py (each mistake must be an error).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import REPO

FLAGS = ["--strict", "--disallow-any-expr", "--follow-imports=silent"]
FILES = ["tests/typing/app.py", "tests/typing/reveal.py", "tests/typing/mistakes.py"]

USER_COLUMNS = (
    "'id': uuid.UUID, 'email': str, 'name': str, 'password_hash': str | None, "
    "'role': Literal['user'] | Literal['admin'] | None, 'email_verified': bool | None, "
    "'created_at': datetime.datetime, 'updated_at': datetime.datetime"
)
PROJECT_COLUMNS = (
    "'id': uuid.UUID, 'owner_id': uuid.UUID, 'name': str, 'description': str | None, 'status': str | None, "
    "'created_at': datetime.datetime, 'updated_at': datetime.datetime"
)
USAGE_ROW = (
    "TypedDict(pydb.schema.AiUsageLogRow, {'id': uuid.UUID, 'user_id': uuid.UUID, 'model': str, "
    "'tokens_used': int, 'estimated_cost': decimal.Decimal | None, 'endpoint': str | None, "
    "'created_at': datetime.datetime, 'user'?: ...})"
)
USER_ROW = (
    f"TypedDict(pydb.schema.UsersRow, {{{USER_COLUMNS}, 'ai_usage_log'?: list[{USAGE_ROW}], "
    f"'projects'?: list[TypedDict(pydb.schema.ProjectsRow, {{{PROJECT_COLUMNS}, 'owner'?: ...}})]}})"
)
PROJECT_WITH_OWNER = (
    f"TypedDict(pydb.schema.ProjectsRow, {{{PROJECT_COLUMNS}, 'owner'?: TypedDict(pydb.schema.UsersRow, "
    f"{{{USER_COLUMNS}, 'ai_usage_log'?: list[{USAGE_ROW}], 'projects'?: list[...]}})}})"
)

REVEALED = [
    f'tests/typing/reveal.py:16: note: Revealed type is "{USER_ROW} | None"',
    f'tests/typing/reveal.py:18: note: Revealed type is "{PROJECT_WITH_OWNER}"',
    'tests/typing/reveal.py:19: note: Revealed type is "str"',
    "tests/typing/reveal.py:20: note: Revealed type is \"Literal['user'] | Literal['admin'] | None\"",
    'tests/typing/reveal.py:21: note: Revealed type is "sqlalchemy.sql.selectable.Select[str, datetime.datetime]"',
    'tests/typing/reveal.py:22: note: Revealed type is "sqlalchemy.sql.schema.Column[str | None]"',
    f'tests/typing/reveal.py:23: note: Revealed type is "list[{USER_ROW}]"',
    f'tests/typing/reveal.py:30: note: Revealed type is "{USER_ROW} | None"',
    f'tests/typing/reveal.py:31: note: Revealed type is "{USER_ROW} | None"',
]

MISTAKES = [
    'tests/typing/mistakes.py:14: error: Expression has type "Any"  [misc]',
    'tests/typing/mistakes.py:14: error: TypedDict "UsersRow" has no key "emial"  [typeddict-item]',
    'tests/typing/mistakes.py:14: note: Did you mean "email"?',
    'tests/typing/mistakes.py:15: error: Incompatible types in assignment (expression has type "str", '
    'variable has type "int")  [assignment]',
    'tests/typing/mistakes.py:16: error: Incompatible types in assignment (expression has type "str | None", '
    'variable has type "str")  [assignment]',
    'tests/typing/mistakes.py:17: error: "UsersColumns" has no attribute "emial"; maybe "email"?  [attr-defined]',
    'tests/typing/mistakes.py:17: error: Expression has type "Any"  [misc]',
    'tests/typing/mistakes.py:18: error: Incompatible types (expression has type "int", TypedDict item "name" '
    'has type "str")  [typeddict-item]',
    'tests/typing/mistakes.py:19: error: Extra key "projets" for TypedDict "UsersWith"  [typeddict-unknown-key]',
    'tests/typing/mistakes.py:20: error: Incompatible types (expression has type "dict[str, dict[str, bool]]", '
    'TypedDict item "projects" has type "Literal[True] | ProjectsFind")  [typeddict-item]',
]


@pytest.fixture(scope="module")
def mypy_lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy's output on the three modules (one run), by file."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *FLAGS, "--cache-dir", str(cache), "--no-error-summary", *FILES],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.stderr == ""
    by_file: dict[str, list[str]] = defaultdict(list)
    for line in result.stdout.splitlines():
        by_file[line.split(":", 1)[0]].append(line)
    return by_file


def test_the_sample_application_has_no_any_and_no_error(mypy_lines: dict[str, list[str]]) -> None:
    assert mypy_lines["tests/typing/app.py"] == []


def test_what_mypy_infers_for_rows_relations_and_selects(mypy_lines: dict[str, list[str]]) -> None:
    assert mypy_lines["tests/typing/reveal.py"] == REVEALED


def test_each_mistake_is_a_type_error(mypy_lines: dict[str, list[str]]) -> None:
    assert mypy_lines["tests/typing/mistakes.py"] == MISTAKES
    source = (REPO / "tests/typing/mistakes.py").read_text().splitlines()
    flagged = {int(line.split(":")[1]) for line in MISTAKES if ": error: " in line}
    commented = {number for number, text in enumerate(source, 1) if "  # " in text}
    assert flagged == commented  # each line with a mistake (and its comment) is an error, and only those


def test_the_sample_application_runs(pydb_database: str) -> None:
    env = dict(os.environ, DATABASE_URL=pydb_database, PYDB_REFLECT_CACHE="0", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", "from tests.typing.app import main; main()"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "owners": [["Analytical engine", "ada@example.com"], ["Notes", "ada@example.com"]],
        "cost": "0.000125",
        "found": ["Ada L.", "admin", "True"],
        "usage": 2,
        "updated_at": True,
        "signups": ["ada@example.com", "bob@example.com"],
        "async owners": [["Analytical engine", "ada@example.com"], ["Notes", "ada@example.com"]],
        "async renamed": ["Robert"],
    }


def test_the_typed_module_is_not_imported_with_pydb() -> None:
    script = "import sys, pydb; print('pydb.schema' in sys.modules, 'sqlalchemy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(REPO), capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False"]
