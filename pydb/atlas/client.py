"""The Atlas client: one typed method per Atlas subcommand pydb uses.

Every command runs through `Atlas.run` (argv built here, stdin closed, the child environment of
atlas.hcl), and every `--format '{{ json . }}'` answer is decoded by `Atlas._json` under one rule:
a non-zero exit is an AtlasError carrying stderr and the exit code, except for reports (lint),
whose findings are data; output that is not the JSON asked for is an AtlasError too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydb.atlas.environ import atlas_environ, env_name, find_atlas
from pydb.config import Settings
from pydb.errors import AtlasError
from pydb.urls import mask_password

__all__ = [
    "Atlas",
    "AtlasResult",
    "LintDiagnostic",
    "LintFile",
    "LintReportGroup",
    "LintSummary",
    "MigrateApply",
    "MigrateFile",
    "MigrateStatus",
    "Revision",
    "SchemaApply",
    "first_error",
]

JSON_FORMAT = "{{ json . }}"
SYNCED = "Schemas are synced, no changes to be made."


@dataclass(frozen=True)
class AtlasResult:
    """What one Atlas command printed, and its exit code."""

    args: tuple[str, ...]  # the arguments after the binary
    stdout: str
    stderr: str
    exit_code: int


@dataclass(frozen=True)
class SchemaApply:
    """`atlas schema apply`: statements applied, statements pending (a dry run), the failing one."""

    applied: list[str]
    pending: list[str]
    error_statement: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class MigrateFile:
    """One file of a migration directory."""

    name: str
    version: str
    description: str = ""


@dataclass(frozen=True)
class Revision:
    """One row of the revisions table: a migration applied (fully or partly) to a database."""

    version: str
    description: str
    applied: int
    total: int
    error: str | None = None


@dataclass(frozen=True)
class MigrateStatus:
    """`atlas migrate status`: the files of the directory and what the database has applied."""

    available: list[MigrateFile]
    pending: list[MigrateFile]
    applied: list[Revision]
    current: str
    next: str
    status: str  # "OK" or "PENDING"
    error: str | None = None


@dataclass(frozen=True)
class MigrateApply:
    """`atlas migrate apply`: the versions applied, from which to which."""

    applied: list[MigrateFile]
    pending: list[MigrateFile]
    current: str
    target: str
    error: str | None = None


@dataclass(frozen=True)
class LintDiagnostic:
    """One finding of an analyzer: byte offset of the statement in its file, text and code (DS103…)."""

    pos: int
    text: str
    code: str


@dataclass(frozen=True)
class LintReportGroup:
    """The findings of one analyzer in one file."""

    text: str
    diagnostics: list[LintDiagnostic]


@dataclass(frozen=True)
class LintFile:
    """One linted file (or atlas.sum), with its reports and the analyzers whose findings are errors."""

    name: str
    text: str
    error: str
    reports: list[LintReportGroup]


@dataclass(frozen=True)
class LintStep:
    """A step of the lint run (replaying the directory, ...) and its error, if any."""

    name: str
    error: str


@dataclass(frozen=True)
class LintSummary:
    """`atlas migrate lint`: the files linted, their findings, and whether Atlas failed the run."""

    directory: str
    files: list[LintFile]
    steps: list[LintStep] = field(default_factory=list)
    exit_code: int = 0
    message: str = ""  # Atlas's own error line when it failed the run


class Atlas:
    """Runs Atlas commands for one project folder."""

    def __init__(
        self, *, cwd: Path | None = None, environ: Mapping[str, str] | None = None,
        settings: Settings | None = None, binary: Path | None = None,
    ) -> None:
        self.cwd = cwd
        self._environ = dict(environ) if environ is not None else None
        self._settings = settings
        self._binary = binary

    # -- schema ------------------------------------------------------------------------------

    def schema_apply(
        self, *, env: str | None = None, url: str | None = None, to: Sequence[str] = (), dev_url: str | None = None,
        dry_run: bool = False, variables: Mapping[str, str] | None = None, extra: Sequence[str] = (),
    ) -> SchemaApply:
        """Plan (dry_run) or apply the desired schema to a database, without a prompt.

        `extra` passes a user's own `schema apply` flags through unchanged (the `atlas` launcher).
        """
        args = ["schema", "apply", *_opt("--env", env), *_opt("-u", url), *_each("--to", to),
                *_opt("--dev-url", dev_url), *_vars(variables), *extra, "--dry-run" if dry_run else "--auto-approve"]
        data = self._json(args, env=env)
        changes = _object(data.get("Changes"))
        error = _object(changes.get("Error"))
        return SchemaApply(
            applied=_strings(changes.get("Applied")), pending=_strings(changes.get("Pending")),
            error_statement=_text(error.get("Stmt")) or None,
            error=_text(error.get("Text")) or _text(data.get("Error")) or None,
        )

    def schema_diff(self, source: str, target: str, *, dev_url: str) -> str:
        """Return the SQL that turns source into target ("" when they are the same)."""
        result = self.run("schema", "diff", "--from", source, "--to", target, "--dev-url", dev_url)
        text = result.stdout.strip()
        return "" if text == SYNCED else text

    def schema_inspect(self, url: str, *, dev_url: str | None = None) -> dict[str, Any]:
        """Return Atlas's JSON description of a database or a schema file."""
        return self._json(["schema", "inspect", "-u", url, *_opt("--dev-url", dev_url)])

    # -- migrations --------------------------------------------------------------------------

    def migrate_diff(self, name: str, *, env: str | None = None, directory: str | None = None,
                     to: Sequence[str] = (), dev_url: str | None = None) -> None:
        """Write a new migration file from the difference between the directory and the desired schema."""
        self.run("migrate", "diff", name, *_opt("--env", env), *_opt("--dir", directory), *_each("--to", to),
                 *_opt("--dev-url", dev_url), env=env)

    def migrate_new(self, name: str, *, env: str | None = None, directory: str | None = None) -> None:
        """Create an empty migration file."""
        self.run("migrate", "new", name, *_opt("--env", env), *_opt("--dir", directory), env=env)

    def migrate_hash(self, *, env: str | None = None, directory: str | None = None) -> None:
        """Write atlas.sum again for the directory's files."""
        self.run("migrate", "hash", *_opt("--env", env), *_opt("--dir", directory), env=env)

    def migrate_validate(self, *, env: str | None = None, directory: str | None = None,
                         dev_url: str | None = None) -> None:
        """Check atlas.sum and that the files replay on the dev database; AtlasError if not."""
        self.run("migrate", "validate", *_opt("--env", env), *_opt("--dir", directory),
                 *_opt("--dev-url", dev_url), env=env)

    def migrate_lint(self, *, env: str, latest: int | None = None, git_base: str | None = None) -> LintSummary:
        """Lint the new migration files (the last N, or those added since a git base); findings are data."""
        args = ["migrate", "lint", "--env", env]
        args += ["--latest", str(latest)] if latest is not None else ["--git-base", str(git_base)]
        data, result = self._report(args, env=env)
        return LintSummary(
            directory=_text(_object(data.get("Env")).get("Dir")) or "migrations",
            files=[_lint_file(_object(f)) for f in _list(data.get("Files"))],
            steps=[LintStep(_text(_object(s).get("Name")), _text(_object(s).get("Error")))
                   for s in _list(data.get("Steps"))],
            exit_code=result.exit_code,
            message=first_error(result.stderr, result.stdout) if result.exit_code else "",
        )

    def migrate_apply(self, *, env: str | None = None, url: str | None = None, directory: str | None = None,
                      revisions_schema: str | None = None, dry_run: bool = False) -> MigrateApply:
        """Apply the pending migration files to a database."""
        args = ["migrate", "apply", *_opt("--env", env), *_opt("--url", url), *_opt("--dir", directory),
                *_opt("--revisions-schema", revisions_schema), *(["--dry-run"] if dry_run else [])]
        data = self._json(args, env=env)
        return MigrateApply(
            applied=[_file(_object(f)) for f in _list(data.get("Applied"))],
            pending=[_file(_object(f)) for f in _list(data.get("Pending"))],
            current=_text(data.get("Current")), target=_text(data.get("Target")),
            error=_text(data.get("Error")) or None,
        )

    def migrate_status(self, *, env: str | None = None, url: str | None = None, directory: str | None = None,
                       revisions_schema: str | None = None) -> MigrateStatus:
        """Compare a database's revisions table with the migration directory."""
        args = ["migrate", "status", *_opt("--env", env), *_opt("--url", url), *_opt("--dir", directory),
                *_opt("--revisions-schema", revisions_schema)]
        data = self._json(args, env=env)
        return MigrateStatus(
            available=[_file(_object(f)) for f in _list(data.get("Available"))],
            pending=[_file(_object(f)) for f in _list(data.get("Pending"))],
            applied=[_revision(_object(r)) for r in _list(data.get("Applied"))],
            current=_text(data.get("Current")), next=_text(data.get("Next")), status=_text(data.get("Status")),
            error=_text(data.get("Error")) or None,
        )

    # -- running -----------------------------------------------------------------------------

    def environ(self, env: str | None) -> dict[str, str]:
        """The child environment for a command of env (the one given to the client, else atlas.hcl's URLs)."""
        if self._environ is not None:
            return self._environ
        return atlas_environ(env, self._settings)

    def run(self, *args: str, env: str | None = None, check: bool = True) -> AtlasResult:
        """Run one Atlas command with stdin closed; raise AtlasError on a non-zero exit when check."""
        argv = list(args)
        binary = self._binary or find_atlas(self._settings)
        proc = subprocess.run(
            [str(binary), *argv], cwd=self.cwd, env=self.environ(env if env is not None else env_name(argv)),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )
        result = AtlasResult(tuple(argv), proc.stdout, proc.stderr, proc.returncode)
        if check and result.exit_code != 0:
            raise _failure(result)
        return result

    def _json(self, args: list[str], *, env: str | None = None) -> dict[str, Any]:
        result = self.run(*args, "--format", JSON_FORMAT, env=env)
        data = _decode(result.stdout)
        if data is None:
            raise AtlasError(
                f"atlas {' '.join(args[:2])} printed no JSON: {mask_password(result.stdout.strip()[:200])!r}",
                stderr=mask_password(result.stderr), exit_code=result.exit_code,
            )
        return data

    def _report(self, args: list[str], *, env: str | None = None) -> tuple[dict[str, Any], AtlasResult]:
        result = self.run(*args, "--format", JSON_FORMAT, env=env, check=False)
        data = _decode(result.stdout)
        if data is None:
            raise _failure(result)
        return data, result


def first_error(stderr: str, stdout: str = "") -> str:
    """Return Atlas's own error line ("Error: ...") without the prefix, else the last line printed."""
    for line in stderr.splitlines():
        if line.startswith("Error: "):
            return line.removeprefix("Error: ").strip()
    lines = [line for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _failure(result: AtlasResult) -> AtlasError:
    command = " ".join(a for a in result.args[:2] if not a.startswith("-"))
    return AtlasError(
        f"atlas {command} failed: {mask_password(first_error(result.stderr, result.stdout))}",
        stderr=mask_password(result.stderr), exit_code=result.exit_code,
    )


def _decode(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _opt(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value is not None else []


def _each(flag: str, values: Sequence[str]) -> list[str]:
    return [part for value in values for part in (flag, value)]


def _vars(variables: Mapping[str, str] | None) -> list[str]:
    return [part for key, value in (variables or {}).items() for part in ("--var", f"{key}={value}")]


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _strings(value: Any) -> list[str]:
    return [str(item) for item in _list(value)]


def _file(data: dict[str, Any]) -> MigrateFile:
    return MigrateFile(_text(data.get("Name")), _text(data.get("Version")), _text(data.get("Description")))


def _revision(data: dict[str, Any]) -> Revision:
    return Revision(
        version=_text(data.get("Version")), description=_text(data.get("Description")),
        applied=int(data.get("Applied") or 0), total=int(data.get("Total") or 0),
        error=_text(data.get("Error")) or None,
    )


def _lint_file(data: dict[str, Any]) -> LintFile:
    reports = [
        LintReportGroup(
            text=_text(_object(r).get("Text")),
            diagnostics=[
                LintDiagnostic(int(_object(d).get("Pos") or 0), _text(_object(d).get("Text")),
                               _text(_object(d).get("Code")))
                for d in _list(_object(r).get("Diagnostics"))
            ],
        )
        for r in _list(data.get("Reports"))
    ]
    return LintFile(_text(data.get("Name")), _text(data.get("Text")), _text(data.get("Error")), reports)
