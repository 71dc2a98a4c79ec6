"""Read a seed file as a stream: its tables, then their rows one at a time, with line/column positions.

YAML is read a row at a time, so memory does not grow with the file. The line reader takes the
shape nearly every seed file has (top-level table keys; block lists of `key: value` rows whose
values are plain, simply quoted or `!ref NAME`) a line at a time, and hands any other row to
libyaml on its own, with its positions moved to the row's place in the file. A file it cannot
split into rows safely (anchors, directives, several documents, unusual indentation, characters
libyaml counts as line breaks) is read by the event reader instead: libyaml's events composed into
nodes one row at a time. Either way, values, positions and syntax errors are libyaml's.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from yaml.composer import Composer
from yaml.events import MappingEndEvent, MappingStartEvent, SequenceEndEvent, SequenceStartEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from pydb.config import process_environ
from pydb.errors import SeedProblem
from pydb.seed.data import DATA_TAGS, data_table
from pydb.seed.rows import NODE, PLAIN, QUOTED, REF, TEXT, Cell, ReadAgain, SeedRow, SeedTable

__all__ = ["ENV_TAG", "REF_TAG", "FileFacts", "SeedStream", "parse_seed", "position", "scan_seed_file"]

REF_TAG = "!ref"
ENV_TAG = "!env"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_KEY = "<<"
_ENV_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Characters that make a plain value more than plain text when they start it.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
# Characters libyaml counts as line breaks and Python's line iteration does not.
_OTHER_BREAKS = ("\x85", "\u2028", "\u2029")

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PythonParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's own parser, where libyaml is not installed."""

    def __init__(self, stream: IO[str]) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


_BaseParser: type
try:
    import yaml.cyaml

    _BaseParser = getattr(yaml.cyaml, "CParser")  # noqa: B009 - not in the stubs' exports
except (ImportError, AttributeError):  # pragma: no cover - PyYAML built without libyaml
    _BaseParser = _PythonParser


def _resolve(kind: type, value: object, implicit: object) -> str:
    """The default tag of an untagged node: a column's type, not YAML 1.1, decides what a scalar means."""
    if kind is ScalarNode:
        return _STR_TAG
    return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader without YAML 1.1's implicit typing: a column's type decides what a scalar means
    (so `01234` stays text in a varchar column and `yes` is not a boolean)."""

    yaml_implicit_resolvers: dict[str, list[object]] = {}  # noqa: RUF012

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        """The default tag of an untagged node (called once per node, so kept trivial)."""
        return _resolve(kind, value, implicit)


class _EventReader(_BaseParser, Composer, BaseResolver):  # type: ignore[misc]
    """libyaml's parser with PyYAML's composer on top, so a document can be composed one row at a time."""

    yaml_implicit_resolvers: dict[str, list[object]] = {}  # noqa: RUF012

    def __init__(self, stream: IO[str]) -> None:
        parser: Any = _BaseParser
        parser.__init__(self, stream)
        Composer.__init__(self)
        BaseResolver.__init__(self)

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        """The default tag of an untagged node."""
        return _resolve(kind, value, implicit)

    def node(self) -> Node:
        """Compose the next node (with its children) from the events."""
        composed: Node = self.compose_node(None, None)  # type: ignore[arg-type,assignment]
        return composed


def position(node: Node) -> tuple[int, int]:
    """Return the 1-based (line, column) where a YAML node starts."""
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


# -- the file before it is read ----------------------------------------------------------------------


@dataclass(slots=True)
class FileFacts:
    """What one quick pass over a seed file's bytes tells before it is parsed."""

    digest: str  # sha256 of its bytes
    anchors: bool  # it may use YAML anchors: read it with the event reader
    tables: frozenset[str] | None  # the names of its top-level keys, when every line at column 1 is one
    rows: int  # an estimate of its number of rows, for progress
    problem: SeedProblem | None = None  # it cannot be read (or is not UTF-8)


_CHUNK = 1 << 20
_COLUMN_ONE = re.compile(rb"\n([^ \t\r\n#-][^\r\n]*)")
_TOP_KEY = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*):(?:[ \t][^\r\n]*)?")


def scan_seed_file(path: str | Path, shown: str) -> FileFacts:
    """Read a seed file's bytes once, in chunks: its digest, its top-level keys, a row estimate, anchors."""
    digest = hashlib.sha256()
    anchors = False
    trusted = True
    keys: set[str] = set()
    rows = 0
    previous = b"\n"
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                chunk += handle.readline()  # whole lines only
                digest.update(chunk)
                chunk.decode("utf-8")
                anchors = anchors or _has_anchor(chunk)
                rows += chunk.count(b"\n  - ") + chunk.count(b"\n- ") + (previous == b"\n" and chunk[:2] == b"- ")
                lines = _COLUMN_ONE.findall(chunk)
                if previous.endswith(b"\n") and chunk[:1] not in b" \t\r\n#-":
                    lines.append(chunk.split(b"\n", 1)[0])
                for line in lines:
                    match = _TOP_KEY.fullmatch(line.rstrip(b"\r"))
                    if match is None:
                        trusted = False
                    else:
                        keys.add(match.group(1).decode())
                previous = chunk
    except (OSError, UnicodeDecodeError) as err:
        problem = SeedProblem(shown, 1, 1, f"cannot read the seed file: {err}")
        return FileFacts("", False, None, 0, problem)
    return FileFacts(digest.hexdigest(), anchors, frozenset(keys) if trusted else None, rows)


def _has_anchor(chunk: bytes) -> bool:
    """Tell whether an `&name` anchor may start in this chunk (an `&` after a space or a flow indicator)."""
    at = chunk.find(b"&")
    while at >= 0:
        if (at == 0 or chunk[at - 1:at] in b" \t\n[{,") and chunk[at + 1:at + 2] not in b" \t\r\n,[]{}":
            return True
        at = chunk.find(b"&", at + 1)
    return False


# -- the stream ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class SeedStream:
    """A seed file's tables in file order, each read as it is iterated.

    Parse problems collect in `problems`, in file order. A YAML syntax error ends the stream and is
    then its only problem (`fatal`). The line reader raises ReadAgain from the iteration when the
    file needs the event reader.
    """

    source: Path | IO[str]
    path: str
    environ: Mapping[str, str]
    events: bool = False
    problems: list[SeedProblem] = field(default_factory=list)
    fatal: bool = False
    data_files: dict[str, str] = field(default_factory=dict)  # data file read -> sha256 of its bytes

    def __iter__(self) -> Iterator[SeedTable]:
        try:
            with self._open() as handle:
                if self.events:
                    yield from _EventTables(self, handle).tables()
                else:
                    yield from _LineTables(self, handle).tables()
        except (OSError, UnicodeDecodeError) as err:
            self.problems[:] = [SeedProblem(self.path, 1, 1, f"cannot read the seed file: {err}")]
            self.fatal = True

    def _open(self) -> contextlib.AbstractContextManager[IO[str]]:
        if isinstance(self.source, Path):
            return open(self.source, encoding="utf-8")
        return contextlib.nullcontext(self.source)

    def problem(self, path: str, line: int, column: int, message: str) -> None:
        """Record a parse problem."""
        self.problems.append(SeedProblem(path, line, column, message))

    def syntax_error(self, err: yaml.YAMLError) -> None:
        """Record a YAML syntax error as the stream's only problem."""
        if isinstance(err, yaml.MarkedYAMLError):
            mark = err.problem_mark or err.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            what = err.problem or err.context or "invalid YAML"
            if err.context and err.problem:
                what = f"{err.context}: {err.problem}"
        else:
            line, col, what = 1, 1, str(err)
        self.problems[:] = [SeedProblem(self.path, line, col, f"YAML syntax error: {what}")]
        self.fatal = True

    def data(self, name: str, key: tuple[int, int], at: tuple[int, int], tag: str, target: str) -> SeedTable:
        """The table whose rows are in a data file (`!csv` / `!jsonl` at `at`), its path relative to the seed file."""
        folder = self.source.parent if isinstance(self.source, Path) else Path(self.path).parent
        shown = target if Path(target).is_absolute() else str(Path(self.path).parent / target)
        opened = data_table(DATA_TAGS[tag], name, folder / target, shown, self.problem, self.data_files)
        if isinstance(opened, str):
            self.problem(self.path, at[0], at[1], f"{name}: cannot read {shown}: {opened}")
            return SeedTable(name, key[0], key[1], self.path, iter(()))
        rows, header, lines = opened
        return SeedTable(name, key[0], key[1], shown, rows, header, lines)


def parse_seed(
    source: str | Path | IO[str], path: str | Path = "seed.yaml", *, environ: Mapping[str, str] | None = None,
    events: bool = False,
) -> SeedStream:
    """A seed file (a path, or an open text stream) as a stream of tables and rows, resolving `!env`."""
    shown = str(path)
    env = process_environ() if environ is None else environ
    return SeedStream(Path(source) if isinstance(source, str | Path) else source, shown, env, events)


# -- the line reader ----------------------------------------------------------------------------------


class _LineTables:
    """The line reader: one pass over the lines, one row's lines kept at a time."""

    def __init__(self, stream: SeedStream, handle: IO[str]) -> None:
        self.stream = stream
        self.lines = iter(handle)
        self.number = 0
        self.pending: str | None = None  # a line read by a table's rows that starts the next table

    def tables(self) -> Iterator[SeedTable]:
        stream = self.stream
        seen: dict[str, int] = {}
        while True:
            raw = self.pending
            self.pending = None
            if raw is None:
                raw = next(self.lines, None)
                if raw is None:
                    return
                self.number += 1
            body = raw.rstrip(" \n")
            content = body.lstrip(" ")
            if not content:
                continue
            if content[0] == "#":
                if not content.isprintable():
                    raise ReadAgain
                continue
            key, colon, rest = body.partition(":")
            if body[0] == " " or not colon or not key.isidentifier() or rest[:1] not in ("", " "):
                raise ReadAgain
            value = rest.strip(" ")
            if value[:1] == "#" and value.isprintable():
                value = ""
            line = self.number
            if key in seen:
                stream.problem(stream.path, line, 1, f"table {key!r} appears twice (first at "
                                                     f"{stream.path}:{seen[key]}:1); put all its rows under one key")
                if value == "":
                    for _row in self._rows(key, keep=False):
                        pass
                continue
            seen[key] = line
            if value == "":
                rows = self._rows(key, keep=True)
                yield SeedTable(key, line, 1, stream.path, rows)
                for _row in rows:  # a reader that stopped early: the lines must still be consumed
                    pass
            elif value in ("~", "null"):
                yield SeedTable(key, line, 1, stream.path, iter(()))
            else:
                tag, _space, target = value.partition(" ")
                target = target.strip(" ")
                if tag not in DATA_TAGS or not _plain_text(target):
                    raise ReadAgain
                yield stream.data(key, (line, 1), (line, len(body) - len(rest.lstrip(" ")) + 1), tag, target)

    def _rows(self, table: str, keep: bool) -> Iterator[SeedRow]:
        seq = -1  # where the table's `- ` items start (0-based)
        width = -1  # where the current row's column names start (0-based)
        lines: list[str] = []  # the current row's lines
        pairs: list[tuple[str, Cell]] = []  # its cells, while all its lines are simple
        start = 0
        simple = False
        in_row = False
        number = self.number
        self.pending = None
        for raw in self.lines:
            number += 1
            body = raw.rstrip(" \n")
            content = body.lstrip(" ")
            indent = len(body) - len(content)
            if indent == width:  # a line at the row's column names: the usual case
                lines.append(raw)
                if simple:
                    key, sep, rest = content.partition(": ")
                    if sep and key.isidentifier():
                        first = rest[:1]
                        if (first and first not in _INDICATORS and first != " " and ": " not in rest
                                and " #" not in rest and rest[-1] != ":" and rest.isprintable()):
                            # plain text, the usual value (what _value would say, without the call)
                            pairs.append((key, (PLAIN, rest, number, indent + len(key) + 3, number, indent + 1)))
                            continue
                        if first == "!" and rest[:5] == "!ref " and rest[5:].isidentifier() and rest.isascii():
                            # `!ref NAME` with a name of letters, digits and _ (which _value would accept too)
                            pairs.append((key, (REF, rest[5:], number, indent + len(key) + 3, number, indent + 1)))
                            continue
                        cell = _value(rest, number, indent + len(key) + 3, indent + 1)
                        if cell is not None:
                            pairs.append((key, cell))
                            continue
                    if content[:1] == "#" and content.isprintable():
                        continue
                    simple = False
                continue
            if not content:
                if in_row:
                    lines.append(raw)
                continue
            if content[0] == "#":
                if not content.isprintable():
                    raise ReadAgain
                if in_row:
                    lines.append(raw)
                continue
            if content[0] == "-" and content[1:2] in ("", " ") and (indent == seq or seq < 0):
                if in_row:
                    row = self._row(table, keep, start, width, lines, pairs, simple)
                    if row is not None:
                        yield row
                seq = indent
                in_row = True
                start = number
                lines = [raw]
                pairs = []
                rest = content[1:].lstrip(" ")
                width = indent + len(content) - len(rest)
                key, sep, value = rest.partition(": ")
                cell = _value(value, number, width + len(key) + 3, width + 1) if sep and key.isidentifier() else None
                simple = cell is not None
                if cell is not None:
                    pairs.append((key, cell))
                continue
            if in_row and indent > seq:
                lines.append(raw)
                simple = False
                continue
            if indent == 0:  # the next top-level key
                self.pending = raw
                break
            raise ReadAgain
        self.number = number
        if in_row:
            row = self._row(table, keep, start, width, lines, pairs, simple)
            if row is not None:
                yield row

    def _row(self, table: str, keep: bool, start: int, width: int, lines: list[str],
             pairs: list[tuple[str, Cell]], simple: bool) -> SeedRow | None:
        if not keep:
            if not simple:
                _snippet(lines)
            return None
        stream = self.stream
        if simple:
            return _simple_row(stream, table, start, width + 1, pairs)
        return _node_row(stream, table, _snippet(lines), start - 1)


def _value(text: str, line: int, column: int, key_column: int) -> Cell | None:
    """The cell of a value written on one line, when it is plain text, simply quoted or `!ref NAME`; else None."""
    value = text.lstrip(" ")
    column += len(text) - len(value)
    first = value[:1]
    if first in _INDICATORS:
        if first == "!":
            if value[:5] == "!ref ":
                name = value[5:].lstrip(" ")
                if _NAME_RE.match(name):
                    return REF, name, line, column, line, key_column
            return None
        if first == '"':
            inner = value[1:-1]
            if len(value) > 1 and value[-1] == '"' and '"' not in inner and "\\" not in inner and inner.isprintable():
                return QUOTED, inner, line, column, line, key_column
            return None
        if first == "'":
            inner = value[1:-1]
            if len(value) > 1 and value[-1] == "'" and "'" not in inner.replace("''", "") and inner.isprintable():
                return QUOTED, inner.replace("''", "'"), line, column, line, key_column
            return None
        if first != "-" or value[1:2] in ("", " "):
            return None
    if not _plain_text(value):
        return None
    return PLAIN, value, line, column, line, key_column


def _plain_text(value: str) -> bool:
    """Tell whether text on one line reads as itself as a YAML plain scalar (after its first character)."""
    return (value != "" and ": " not in value and " #" not in value and value[-1] != ":"
            and value.isprintable())


def _simple_row(stream: SeedStream, table: str, line: int, column: int, pairs: list[tuple[str, Cell]]) -> SeedRow:
    """A row read by the line reader, with the parse checks of a row read as nodes."""
    cells = dict(pairs)
    if len(cells) == len(pairs):  # no column given twice: the usual case
        named = cells.pop("_id", None)
        if named is None:
            return SeedRow(table, line, column, None, 0, 0, cells)
        if named[0] != REF and named[1] and _NAME_RE.match(named[1]):
            return SeedRow(table, line, column, named[1], named[2], named[3], cells)
    row = SeedRow(table, line, column, None, 0, 0, {})
    cells = row.cells
    for name, cell in pairs:
        if name in cells or (name == "_id" and row.name is not None):
            where = f" (first at line {cells[name][4]})" if name in cells else ""
            stream.problem(stream.path, cell[4], cell[5], f"{table}.{name}: column given twice in one row{where}")
            continue
        if name == "_id":
            if cell[0] == REF or not cell[1] or not _NAME_RE.match(cell[1]):
                stream.problem(stream.path, cell[2], cell[3],
                               f"{table}: _id must be a name of letters, digits, '_', '-' or '.'")
                continue
            row.name, row.name_line, row.name_column = cell[1], cell[2], cell[3]
            continue
        cells[name] = cell
    return row


def _snippet(lines: list[str]) -> Node:
    """One row's lines composed by libyaml on their own (positions relative to its first line)."""
    text = "".join(lines)
    if any(mark in text for mark in _OTHER_BREAKS) or ("&" in text and _has_anchor(text.encode())):
        raise ReadAgain  # anchors belong to the whole document
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        raise ReadAgain from None
    if not isinstance(root, SequenceNode) or len(root.value) != 1:
        raise ReadAgain
    node: Node = root.value[0]
    return node


# -- rows read as nodes (the event reader, and the line reader's other rows) ---------------------------


_Report = Callable[[Node | None, str], None]


def _node_row(stream: SeedStream, table: str, node: Node, offset: int) -> SeedRow | None:
    """A row composed by libyaml; offset: lines before the text it was composed from."""

    def problem(where: Node | None, message: str) -> None:
        line, col = position(where) if where is not None else (1 - offset, 1)
        stream.problem(stream.path, line + offset, col, message)

    if not isinstance(node, MappingNode):
        problem(node, f"{table}: a row is a mapping of column names to values")
        return None
    line, col = position(node)
    row = SeedRow(table, line + offset, col, None, 0, 0, {})
    for key, value in _merged(node, problem):
        if not isinstance(key, ScalarNode) or key.tag not in (_STR_TAG,) or not key.value:
            problem(key, f"{table}: a column name must be a plain string")
            continue
        name = key.value
        if name in row.cells or (name == "_id" and row.name is not None):
            where = f" (first at line {row.cells[name][4]})" if name in row.cells else ""
            problem(key, f"{table}.{name}: column given twice in one row{where}")
            continue
        key_line, key_col = position(key)
        line, col = position(value)
        if name == "_id":
            if not isinstance(value, ScalarNode) or value.tag not in (_STR_TAG,) or not value.value \
                    or not _NAME_RE.match(value.value):
                problem(value, f"{table}: _id must be a name of letters, digits, '_', '-' or '.'")
                continue
            row.name, row.name_line, row.name_column = value.value, line + offset, col
            continue
        kind: int
        text: Any
        if value.tag == ENV_TAG:
            resolved = _env(table, name, value, stream.environ, problem)
            if resolved is None:
                continue
            kind, text = TEXT, resolved
        elif value.tag == REF_TAG:
            if not isinstance(value, ScalarNode) or not value.value:
                problem(value, f"{table}.{name}: !ref takes the _id of a row, e.g. `!ref admin`")
                continue
            kind, text = REF, str(value.value).strip()
        elif isinstance(value, ScalarNode) and value.tag == _STR_TAG:
            kind, text = (QUOTED if value.style else PLAIN), value.value
        else:
            kind, text = NODE, value
        row.cells[name] = (kind, text, line + offset, col, key_line + offset, key_col)
    return row


def _merged(node: MappingNode, problem: _Report) -> list[tuple[Node, Node]]:
    """The pairs of a mapping with YAML merge keys (`<<: *defaults`) applied; explicit keys win."""
    if not any(isinstance(k, ScalarNode) and k.value == _MERGE_KEY and not k.style for k, _ in node.value):
        return list(node.value)
    explicit: list[tuple[Node, Node]] = []
    inherited: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == _MERGE_KEY and not key.style:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if isinstance(source, MappingNode):
                    inherited.extend(_merged(source, problem))
                else:
                    problem(source, "a merge key (<<) takes a mapping or a list of mappings")
        else:
            explicit.append((key, value))
    names = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
    taken: set[str] = set()
    merged = list(explicit)
    for key, value in inherited:
        name = key.value if isinstance(key, ScalarNode) else None
        if name in names or name in taken:
            continue
        if isinstance(name, str):
            taken.add(name)
        merged.append((key, value))
    return merged


def _env(table: str, column: str, node: Node, env: Mapping[str, str], problem: _Report) -> str | None:
    if not isinstance(node, ScalarNode) or not (match := _ENV_RE.match(node.value.strip())):
        problem(node, f"{table}.{column}: !env takes a variable name, e.g. `!env SEED_ADMIN_HASH` "
                      f"or `!env SEED_ADMIN_HASH:-default`")
        return None
    var, default = match.group(1), match.group(2)
    value = env.get(var)
    if not value and default is not None:
        value = default
    if value is None:
        problem(node, f"{table}.{column}: environment variable {var} is not set "
                      f"(set it, or give a default: `!env {var}:-VALUE`)")
        return None
    return str(value)


# -- the event reader --------------------------------------------------------------------------------


class _EventTables:
    """The event reader: any YAML, composed into nodes one row at a time."""

    def __init__(self, stream: SeedStream, handle: IO[str]) -> None:
        self.stream = stream
        self.reader: Any = _EventReader(handle)

    def _problem(self, node: Node | None, message: str) -> None:
        line, col = position(node) if node is not None else (1, 1)
        self.stream.problem(self.stream.path, line, col, message)

    def tables(self) -> Iterator[SeedTable]:
        stream, reader = self.stream, self.reader
        try:
            reader.get_event()  # stream start
            if reader.check_event(StreamEndEvent):
                return
            reader.get_event()  # document start
            if not reader.check_event(MappingStartEvent):
                root = reader.node()
                self._problem(root, "a seed file is a mapping of table names to lists of rows")
            else:
                yield from self._mapping()
                if stream.fatal:
                    return
            reader.get_event()  # document end
            if not reader.check_event(StreamEndEvent):
                event = reader.get_event()
                raise yaml.composer.ComposerError("expected a single document in the stream", None,
                                                  "but found another document", event.start_mark)
        except yaml.YAMLError as err:
            stream.syntax_error(err)

    def _mapping(self) -> Iterator[SeedTable]:
        stream, reader = self.stream, self.reader
        start = reader.get_event()
        if start.anchor is not None:
            raise yaml.composer.ComposerError(None, None, "an anchor on the whole seed file is not supported",
                                              start.start_mark)
        seen: dict[str, tuple[int, int]] = {}
        while not reader.check_event(MappingEndEvent):
            key = reader.node()
            name = key.value if isinstance(key, ScalarNode) and key.value else None
            first = seen.get(name) if name is not None else None
            if name is None:
                self._problem(key, "a table name must be a plain string")
            elif first is not None:
                self._problem(key, f"table {name!r} appears twice (first at {stream.path}:{first[0]}:{first[1]}); "
                                   f"put all its rows under one key")
            else:
                seen[name] = position(key)
            keep = name is not None and first is None
            if keep and reader.check_event(SequenceStartEvent) and reader.peek_event().anchor is None:
                reader.get_event()
                assert name is not None
                line, col = position(key)
                rows = self._rows(name)
                yield SeedTable(name, line, col, stream.path, rows)
                for _row in rows:
                    pass
                if stream.fatal:
                    return
                continue
            value = reader.node()
            if keep:
                assert name is not None
                yield from self._table(name, key, value)
        reader.get_event()  # the mapping's end

    def _rows(self, table: str) -> Iterator[SeedRow]:
        reader = self.reader
        try:
            while not reader.check_event(SequenceEndEvent):
                row = _node_row(self.stream, table, reader.node(), 0)
                if row is not None:
                    yield row
            reader.get_event()
        except yaml.YAMLError as err:
            self.stream.syntax_error(err)

    def _table(self, name: str, key: Node, value: Node) -> Iterator[SeedTable]:
        stream = self.stream
        line, col = position(key)
        if isinstance(value, ScalarNode) and value.tag in DATA_TAGS:
            target = value.value.strip()
            if target:
                yield stream.data(name, (line, col), position(value), value.tag, target)
            else:
                self._problem(value, f"{name}: {value.tag} takes the path of a data file, e.g. "
                                     f"`{value.tag} data/{name}.{value.tag[1:]}`")
            return
        if isinstance(value, ScalarNode) and value.tag != REF_TAG and value.value in ("", "~", "null") \
                and not value.style:
            yield SeedTable(name, line, col, stream.path, iter(()))  # `table:` with no rows
            return
        if not isinstance(value, SequenceNode):
            self._problem(value, f"{name}: expected a list of rows (`- column: value`)")
            return
        rows = (row for item in value.value if (row := _node_row(stream, name, item, 0)) is not None)
        yield SeedTable(name, line, col, stream.path, rows)
