"""The CI gate for migrations: Atlas's migration lint plus squawk's lock-risk rules, in one report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydb.config import Settings, load_settings, process_environ
from pydb.errors import ConfigError, LintError
from pydb.urls import mask_password

if TYPE_CHECKING:
    from pydb.atlas import LintSummary

__all__ = [
    "DEFAULT_SQUAWK_EXCLUDES",
    "Finding",
    "LintReport",
    "find_squawk",
    "format_report",
    "lint_migrations",
    "run_squawk",
]

# squawk rules that fire on every migration Atlas writes, so they would bury the real findings:
# timeouts (Atlas's `migrate apply` has no per-statement timeout; set them on the role instead),
# IF [NOT] EXISTS (Atlas records progress per statement, and IF NOT EXISTS would hide drift),
# and type preferences this project decided otherwise (varchar(n), integer, uuid keys, enum order).
DEFAULT_SQUAWK_EXCLUDES = (
    "require-statement-timeout",
    "require-lock-timeout",
    "prefer-robust-stmts",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-text-field",
    "require-enum-value-ordering",
)
# squawk rules reported as warnings: worth a look in review, not worth a red build.
SQUAWK_WARNINGS = frozenset({"ban-drop-not-null", "prefer-timestamp-tz", "ban-char-field"})

_TXMODE_NONE = re.compile(r"^--\s*atlas:txmode\s+none\s*$", re.MULTILINE)

# Why each Atlas code is dangerous, and what to do instead.
_ATLAS_ADVICE: dict[str, tuple[str, str]] = {
    "DS101": ("dropping a schema deletes every table and row in it, and running code still uses them",
              "stop using the schema in a deploy first; drop it in a later migration with `-- atlas:nolint DS101`"),
    "DS102": ("dropping a table deletes its rows for good, and running code may still query it",
              "ship code that no longer reads the table, back it up, then drop it in a later migration "
              "with `-- atlas:nolint DS102` above the statement"),
    "DS103": ("dropping a column deletes its data, and running code that still selects it fails",
              "stop reading and writing the column in a deploy first; drop it later with "
              "`-- atlas:nolint DS103` above the statement"),
    "MF101": ("a unique index fails to build if the column already holds duplicates, and blocks writes while it builds",
              "remove duplicates first, then build it with CREATE UNIQUE INDEX CONCURRENTLY in a "
              "`-- atlas:txmode none` file"),
    "MF102": ("making an index unique fails if the data already holds duplicates",
              "remove duplicates first; build a new unique index CONCURRENTLY, then drop the old one"),
    "MF103": ("adding a NOT NULL column without a default fails on any table that has rows",
              "add the column nullable or with a DEFAULT, backfill it, then set NOT NULL in a later migration"),
    "MF104": ("SET NOT NULL fails if any row holds NULL, and scans the table under an ACCESS EXCLUSIVE lock",
              "backfill the NULLs first; add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL"),
    "CD101": ("the foreign key is dropped while its columns stay, so the database no longer guards them",
              "make sure the relation is really gone, or drop the columns too"),
    "BC101": ("renaming a table breaks every running client that still uses the old name",
              "create the new table (or a view with the old name) and move clients over before renaming"),
    "BC102": ("renaming a column breaks every running client that still uses the old name",
              "add the new column, write both, move readers, then drop the old one"),
    "PG101": ("CREATE INDEX without CONCURRENTLY blocks writes to the table while the index builds",
              "use CREATE INDEX CONCURRENTLY in a file that starts with `-- atlas:txmode none`"),
    "PG102": ("DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table",
              "use DROP INDEX CONCURRENTLY in a file that starts with `-- atlas:txmode none`"),
    "PG103": ("CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction, and Atlas wraps each file in one",
              "put `-- atlas:txmode none` and a blank line at the top of the file, then `atlas migrate hash`"),
}
# What to do instead, for the squawk rules that matter most (squawk's own help text is added when it has one).
_SQUAWK_ADVICE: dict[str, str] = {
    "changing-column-type": "add a new column of the new type, backfill it, move readers and writers, drop the old "
                            "one later; check first that every value fits a narrower type",
    "ban-drop-column": "stop using the column in a deploy first, then drop it in a later migration",
    "ban-drop-table": "stop using the table in a deploy first, then drop it in a later migration",
    "adding-required-field": "add the column nullable or with a constant DEFAULT; backfill; SET NOT NULL later",
    "adding-not-nullable-field": "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    "require-concurrent-index-creation": "CREATE INDEX CONCURRENTLY in a file that starts with `-- atlas:txmode none`",
    "require-concurrent-index-deletion": "DROP INDEX CONCURRENTLY in a file that starts with `-- atlas:txmode none`",
    "ban-concurrent-index-creation-in-transaction": "put `-- atlas:txmode none` and a blank line at the top of the "
                                                    "file, then run `atlas migrate hash`",
    "constraint-missing-not-valid": "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration",
    "adding-foreign-key-constraint": "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT later",
    "disallowed-unique-constraint": "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX",
    "renaming-column": "add the new column, write both, move readers, then drop the old one",
    "renaming-table": "create the new table or a view with the old name; move clients before renaming",
    "adding-field-with-default": "use a constant DEFAULT (volatile defaults rewrite the table), or backfill in batches",
    "adding-serial-primary-key-field": "build a unique index CONCURRENTLY, then ADD PRIMARY KEY USING INDEX",
    "ban-drop-database": "never drop a database from a migration",
}
# Atlas reports these as warnings, but the file fails on deploy every time: pydb makes them errors.
_ATLAS_ALWAYS_ERRORS = frozenset({"PG103"})
_SUM_ADVICE = (
    "migrations/ does not match atlas.sum: a migration was edited after it was hashed, or two branches "
    "added migrations and were merged",
    "never edit a migration that may have run somewhere: revert the edit and write a new migration; after a "
    "merge, rename your new file to a later version (`atlas migrate diff` again) and run `atlas migrate hash`",
)
_REPLAY_ADVICE = (
    "the migrations do not replay on an empty database, so they would fail on deploy too",
    "fix the failing statement (Atlas's message names it), then run `atlas migrate hash`",
)


@dataclass(frozen=True)
class Finding:
    """One problem in one migration file: where, which rule, why it is dangerous, and what to do."""

    file: str
    line: int
    statement: str
    tool: str  # "atlas" or "squawk"
    rule: str  # Atlas code (DS103, MF101, ...) or squawk rule name
    message: str
    why: str
    fix: str
    severity: str  # "error" or "warning"


@dataclass(frozen=True)
class LintReport:
    """What `pydb lint` found in the new migration files."""

    files: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """The findings that fail the gate."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """Tell whether the gate passes (no error-level finding)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for `--format json`."""
        return {
            "ok": self.ok,
            "files": list(self.files),
            "errors": len(self.errors),
            "warnings": len(self.findings) - len(self.errors),
            "findings": [asdict(f) for f in self.findings],
        }


def lint_migrations(
    project: Path | None = None,
    *,
    latest: int | None = None,
    git_base: str | None = None,
    env: str = "ci",
    environ: dict[str, str] | None = None,
    squawk: bool = True,
    settings: Settings | None = None,
) -> LintReport:
    """Lint the new migration files (the last N, or those added since a git base) with Atlas and squawk."""
    from pydb.atlas import Atlas

    if (latest is None) == (git_base is None):
        raise ConfigError("give exactly one of --latest N or --git-base BRANCH")
    if latest is not None and latest < 1:
        raise ConfigError(f"--latest must be 1 or more, not {latest}")
    settings = settings or load_settings(project)
    root = (project or settings.root).resolve()
    if not (root / "atlas.hcl").is_file():
        raise ConfigError(f"no atlas.hcl in {root}: run pydb lint in the repository")
    summary = Atlas(cwd=root, environ=environ, settings=settings).migrate_lint(
        env=env, latest=latest, git_base=git_base)
    migrations = root / summary.directory.removeprefix("file://")
    files, findings = _atlas_findings(summary, migrations)
    if summary.exit_code != 0 and not any(f.severity == "error" for f in findings):
        findings.append(Finding(
            file="", line=0, statement="", tool="atlas", rule="atlas", severity="error",
            message=mask_password(summary.message), why=_REPLAY_ADVICE[0], fix=_REPLAY_ADVICE[1],
        ))
    if squawk and files:
        findings += run_squawk([migrations / name for name in files], root=root)
    return LintReport(files=files, findings=findings)


def _atlas_findings(summary: LintSummary, migrations: Path) -> tuple[list[str], list[Finding]]:
    files: list[str] = []
    findings: list[Finding] = []
    for report in summary.files:
        failed = {part.strip() for part in report.error.split(";") if part.strip()}
        if report.name == "atlas.sum":
            findings.append(Finding(
                file=report.name, line=0, statement="", tool="atlas", rule="atlas.sum", severity="error",
                message=report.error or "checksum mismatch", why=_SUM_ADVICE[0], fix=_SUM_ADVICE[1],
            ))
            continue
        files.append(report.name)
        text = report.text
        if not text and (migrations / report.name).is_file():
            text = (migrations / report.name).read_text()
        for group in report.reports:
            severity = "error" if group.text in failed else "warning"
            for diag in group.diagnostics:
                level = "error" if diag.code in _ATLAS_ALWAYS_ERRORS else severity
                why, fix = _ATLAS_ADVICE.get(diag.code, (group.text, "see https://atlasgo.io/lint/analyzers"))
                findings.append(Finding(
                    file=report.name, line=_line_of(text, diag.pos), statement=_statement_at(text, diag.pos),
                    tool="atlas", rule=diag.code or "atlas", message=diag.text, why=why, fix=fix, severity=level,
                ))
        if failed and not report.reports:
            findings.append(Finding(
                file=report.name, line=0, statement="", tool="atlas", rule="replay", severity="error",
                message=mask_password(report.error), why=_REPLAY_ADVICE[0], fix=_REPLAY_ADVICE[1],
            ))
    for step in summary.steps:
        if step.error and not findings:
            findings.append(Finding(
                file="", line=0, statement="", tool="atlas", rule="replay", severity="error",
                message=mask_password(f"{step.name}: {step.error}"), why=_REPLAY_ADVICE[0], fix=_REPLAY_ADVICE[1],
            ))
    return files, findings


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, max(pos, 0)) + 1


def _statement_at(text: str, pos: int) -> str:
    """The statement starting at byte offset pos (Atlas reports statement starts), comments skipped."""
    data = text.encode()
    rest = data[pos:].decode(errors="replace")
    lines = [line for line in rest.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    body = " ".join(line.strip() for line in lines)
    end = body.find(";")
    return body[: end + 1] if end >= 0 else body


def find_squawk() -> Path:
    """Return the squawk binary of the squawk-cli package (next to this Python first, then PATH)."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("squawk")
    if found:
        return Path(found)
    raise ConfigError("squawk is not installed: pip install squawk-cli (a dependency of pydb)")


def run_squawk(files: list[Path], *, root: Path) -> list[Finding]:
    """Lint SQL files with squawk; files with `-- atlas:txmode none` are linted as running outside a transaction."""
    in_tx = [f for f in files if not _TXMODE_NONE.search(f.read_text())]
    no_tx = [f for f in files if f not in in_tx]
    findings: list[Finding] = []
    for group, assume_tx in ((in_tx, True), (no_tx, False)):
        if group:
            findings += _squawk_group(group, root=root, assume_in_transaction=assume_tx)
    return findings


def _squawk_group(files: list[Path], *, root: Path, assume_in_transaction: bool) -> list[Finding]:
    config = root / ".squawk.toml"
    args = [str(find_squawk()), "--reporter", "json"]
    if config.is_file():
        args += ["--config", str(config)]
    else:
        args += ["--exclude", ",".join(DEFAULT_SQUAWK_EXCLUDES)]
    args.append("--assume-in-transaction" if assume_in_transaction else "--no-assume-in-transaction")
    args += [str(f) for f in files]
    env = {**process_environ(), "NO_COLOR": "1"}
    proc = subprocess.run(args, cwd=root, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    try:
        items = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError as err:
        printed = (proc.stderr or proc.stdout).strip().splitlines()
        raise LintError(f"squawk failed (exit {proc.returncode}): {printed[0] if printed else 'no output'}") from err
    texts = {str(f): f.read_text() for f in files}
    findings = []
    for item in items:
        path = Path(str(item.get("file", "")))
        full = path if path.is_absolute() else root / path
        text = texts.get(str(full), "")
        first = int(item.get("line", 0))
        last = int(item.get("line_end", first))
        statement = " ".join(line.strip() for line in text.splitlines()[first:last + 1])
        rule = str(item.get("rule_name", "squawk"))
        message = str(item.get("message", ""))
        fix = _SQUAWK_ADVICE.get(rule) or str(item.get("help") or "see the rule's page")
        findings.append(Finding(
            file=full.name, line=first + 1, statement=statement, tool="squawk", rule=rule,
            message=message, why=message, fix=f"{fix} (https://squawkhq.com/docs/{rule})",
            severity="warning" if rule in SQUAWK_WARNINGS else "error",
        ))
    return findings


def format_report(report: LintReport) -> str:
    """Return the report as text for people: one block per finding, then a summary line."""
    out: list[str] = []
    for f in sorted(report.findings, key=lambda f: (f.file, f.line, f.tool, f.rule)):
        where = f"{f.file}:{f.line}" if f.line else (f.file or "migrations")
        out.append(f"{where}: {f.severity} {f.rule} ({f.tool}): {f.message}")
        if f.statement:
            out.append(f"    statement: {f.statement}")
        if f.why and f.why != f.message:
            out.append(f"    why:       {f.why}")
        out.append(f"    instead:   {f.fix}")
        out.append("")
    errors, warnings = len(report.errors), len(report.findings) - len(report.errors)
    checked = ", ".join(report.files) if report.files else "no new migration files"
    verdict = "FAILED" if errors else "passed"
    out.append(f"pydb lint {verdict}: {errors} error(s), {warnings} warning(s) in {checked}")
    return "\n".join(out)
