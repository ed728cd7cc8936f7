"""Tenant configuration from YAML: one file, or a folder of files, validated as a whole.

A folder holds one tenant per ``*.yaml``/``*.yml`` file, named after the tenant it holds
(``acme.yaml`` holds ``tenant: acme``), plus an optional ``_global.yaml`` with the platform's
``GlobalConfig``. Files starting with ``.`` are ignored (editor swap files); sub-folders are
not read. A single file may hold one tenant under any name (handy for checking a draft), or be
a ``_global.yaml``.

Every problem in every file is collected before anything fails, so one run of ``cc-core config
validate`` lists them all. Each is reported as ``FILE: at PATH: what is wrong (got VALUE)``
where PATH is the path inside the YAML document (``menus.main.options.7``), or as
``FILE: line L, column C: ...`` for YAML that does not parse.

Checks across files: a tenant id held by two files, a 400 number held by two tenants (both
files named), a file whose ``tenant:`` differs from its name, an empty folder.

A folder is *the whole* configuration (``LoadedConfig.complete``): applying it removes tenants
it does not hold. A single file is only that tenant (or only the global config).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cc_core.errors import ConfigError
from cc_core.tenants.model import WEEKDAYS, Destination, GlobalConfig, Tenant

GLOBAL_STEM = "_global"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedConfig:
    tenants: dict[str, Tenant]
    global_config: GlobalConfig
    sources: dict[str, Path]                 # tenant id -> the file it came from
    # True for a folder: it is the whole configuration, so applying it removes tenants it does
    # not hold. False for a single file: the tenants it holds are added or replaced, the others
    # (and the global config, unless the file is a _global.yaml) stay as they are.
    complete: bool = True
    global_source: Path | None = None        # None: no _global.yaml, the defaults apply
    files: tuple[Path, ...] = field(default=())


@dataclass
class _Problems:
    lines: list[str] = field(default_factory=list)

    def add(self, file: Path | str, where: str, what: str, got: Any = ...) -> None:
        text = f"{file}: at {where or '(top level)'}: {what}"
        if got is not ...:
            text += f" (got {_show(got)})"
        self.lines.append(text)

    def raw(self, line: str) -> None:
        self.lines.append(line)


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping: PyYAML would silently keep
    the last one, so a second ``"1":`` in a menu would quietly replace the first option."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"found the key {key!r} a second time (first on line {first}); "
                    "keep one of them", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _read_yaml(file: Path, problems: _Problems) -> tuple[Any, dict[tuple[str, ...], int]] | None:
    """The document in ``file`` and the line of each path in it; None after reporting why not."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        problems.raw(f"{file}: cannot read the file ({exc.strerror})")
        return None
    except UnicodeDecodeError as exc:
        problems.raw(f"{file}: not UTF-8 text (byte {exc.start}); save the file as UTF-8")
        return None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        problems.raw(f"{file}: {where}: not valid YAML: {what}")
        return None
    except yaml.YAMLError as exc:
        problems.raw(f"{file}: not valid YAML: {exc}")
        return None
    finally:
        loader.dispose()
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _index_lines(value_node, (*path, str(key_node.value)), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, str(i)), out)


# -- mapping pydantic's errors to YAML paths ------------------------------------------------

_LEADING_REPR = re.compile(r"""^('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+?)(?=[\s:;,])""")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Model validators (Tenant._references) join their findings as "where: what; where: what".
_JOINED = re.compile(r"; (?=[\w.\-*#]+: )")


def _locate(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if isinstance(data, dict):
            match = [v for k, v in data.items() if str(k) == str(part)]
            if not match:
                return None
            data = match[0]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _refine(data: Any, message: str) -> tuple[tuple[str, ...], Any]:
    """Where below ``data`` the value the message names sits, and that key or value.

    A validator that checks a whole mapping (``Menu.options``, ``Tenant.numbers``,
    ``Hours.weekly``) fails at the mapping, naming the bad key or value first in its message;
    the user needs the exact entry (``menus.main.options.7``), so find it."""
    # The value is named first ("'queue': queue needs a target", "4001 is not a 400 number"),
    # or quoted after a word or two ("option key '77' must be one DTMF key").
    tokens = [m.group(1) for m in [_LEADING_REPR.match(message)] if m]
    tokens += [m.group(0) for m in [_QUOTED.search(message)] if m]
    for token in tokens:
        found = _find(data, token)
        if found is not None:
            return found
    return (), ...


def _find(data: Any, token: str) -> tuple[tuple[str, ...], Any] | None:
    def named(value: Any) -> bool:
        return token in {repr(value), repr(str(value)), str(value)}

    def search(node: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], Any] | None:
        items: list[tuple[Any, Any]] = []
        if isinstance(node, dict):
            items = list(node.items())
            for key, _ in items:
                if named(key):
                    return (*path, str(key)), key
        elif isinstance(node, list):
            items = list(enumerate(node))
        for key, value in items:
            if not isinstance(value, dict | list) and named(value):
                return (*path, str(key)), value
        for key, value in items:
            if isinstance(value, dict | list):
                found = search(value, (*path, str(key)))
                if found is not None:
                    return found
        return None

    return search(data, ())


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation can hold (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _unwrap(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose fields sit at ``loc`` (for "unknown key; expected one of")."""
    model: type[BaseModel] = root
    i = 0
    while i < len(loc):
        info = model.model_fields.get(str(loc[i]))
        if info is None:
            return None
        annotation = info.annotation
        i += 1
        origin = typing.get_origin(annotation)
        if origin in (dict, list):
            annotation = typing.get_args(annotation)[-1]
            i += 1  # the dict key or list index
        models = _unwrap(annotation)
        if not models:
            return None
        model = models[0]
    return model if i == len(loc) else None


def _model_problems(exc: ValidationError, root: type[BaseModel], data: Any, file: Path,
                    lines: dict[tuple[str, ...], int], problems: _Problems) -> None:
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p != "[key]")
        msg = err["msg"].removeprefix("Value error, ")
        kind = err["type"]
        if kind == "value_error" and not loc:
            # A cross-reference finding already names its path: split and keep it readable.
            for piece in _JOINED.split(msg):
                where, sep, what = piece.partition(": ")
                if sep and where:
                    problems.add(file, where, what + _line(lines, tuple(where.split("."))))
                else:
                    problems.add(file, "", piece)
            continue
        path = tuple(str(p) for p in loc)
        got = err.get("input")
        if kind == "value_error":
            suffix, found = _refine(_locate(data, loc), msg)
            if suffix:
                path, got = path + suffix, found
        where = ".".join(path)
        if kind == "extra_forbidden":
            parent = _model_at(root, loc[:-1])
            known = sorted(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"unknown key {str(loc[-1])!r}{hint} (known keys: {', '.join(known)})" \
                if known else f"unknown key {str(loc[-1])!r}"
            problems.add(file, where, msg + _line(lines, path))
        elif kind == "missing":
            problems.add(file, where, "required key is missing; add it" + _line(lines, path[:-1]))
        else:
            problems.add(file, where, msg + _line(lines, path), got)


def _line(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> str:
    while path and path not in lines:
        path = path[:-1]
    return f" [line {lines[path]}]" if path in lines else ""


# -- files and folders ------------------------------------------------------------------------

def _files(path: Path, problems: _Problems) -> tuple[list[Path], bool]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir()
                       if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file())
        if not found:
            problems.raw(f"{path}: no tenant files (*.yaml, *.yml) in this folder")
        return found, True
    if path.is_file():
        return [path], False
    problems.raw(f"{path}: no such file or folder; give a tenant's YAML file or a folder of them")
    return [], False


def load_path(path: str | Path) -> LoadedConfig:
    """Read and validate every file at ``path``; raise ``ConfigError`` listing every problem."""
    root = Path(path)
    problems = _Problems()
    files, complete = _files(root, problems)
    tenants: dict[str, Tenant] = {}
    sources: dict[str, Path] = {}
    global_config = GlobalConfig()
    global_source: Path | None = None
    owners: dict[str, str] = {}  # 400 number -> tenant id

    for file in files:
        read = _read_yaml(file, problems)
        if read is None:
            continue
        data, lines = read
        if data is None:
            problems.raw(f"{file}: the file is empty; write the tenant's config "
                         "(see examples/tenants/acme.yaml)")
            continue
        if not isinstance(data, dict):
            problems.raw(f"{file}: the top level must be a mapping (key: value), "
                         f"got {type(data).__name__}")
            continue
        if file.stem == GLOBAL_STEM:
            if global_source is not None:
                problems.raw(f"{file}: a second global config (the first is {global_source}); "
                             "keep one _global file")
                continue
            try:
                global_config = GlobalConfig.model_validate(data)
                global_source = file
            except ValidationError as exc:
                _model_problems(exc, GlobalConfig, data, file, lines, problems)
            continue
        try:
            tenant = Tenant.model_validate(data)
        except ValidationError as exc:
            _model_problems(exc, Tenant, data, file, lines, problems)
            continue
        tid = tenant.tenant
        if complete and file.stem != tid:
            problems.add(file, "tenant", f"a tenant file in a folder is named after its tenant: "
                         f"rename the file to {tid}{file.suffix} or write tenant: {file.stem}"
                         + _line(lines, ("tenant",)), tid)
            continue
        if tid in tenants:
            problems.add(file, "tenant", f"tenant {tid!r} is also defined in {sources[tid]}; "
                         "keep one file per tenant" + _line(lines, ("tenant",)), tid)
            continue
        for number in tenant.numbers:
            other = owners.get(number)
            if other is not None:
                problems.add(file, f"numbers.{number}",
                             f"{number} also belongs to tenant {other!r} in {sources[other]}; "
                             "a 400 number routes to one tenant only: remove it from one file"
                             + _line(lines, ("numbers", number)), number)
            else:
                owners[number] = tid
        tenants[tid] = tenant
        sources[tid] = file

    if problems.lines:
        count = len(problems.lines)
        head = f"{count} problem{'s' if count > 1 else ''} in {root}; nothing was loaded:"
        raise ConfigError("\n".join([head, *("  " + line for line in problems.lines)]))
    return LoadedConfig(tenants=tenants, global_config=global_config, sources=sources,
                        complete=complete, global_source=global_source, files=tuple(files))


# -- the canonical form (store diffs, `config show`) ----------------------------------------

def _sort_key(key: Any) -> tuple[int, str]:
    # Weekdays in week order; everything else (menus, numbers, keys) by name.
    return (WEEKDAYS.index(key), "") if key in WEEKDAYS else (len(WEEKDAYS), str(key))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"kind", "target"}:
            # Written back as people write it (menu:main), which loads again unchanged.
            return str(Destination.model_validate(value))
        return {k: _canonical(value[k]) for k in sorted(value, key=_sort_key)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_yaml(model: Tenant | GlobalConfig) -> str:
    """The one text of a config: every setting explicit (defaults too), keys in a fixed order,
    destinations as ``kind:target``. Two configs that mean the same have the same text, and
    the text loads back into the same model."""
    # Top-level keys in the model's order (tenant first), as people read a tenant file.
    ordered = {k: _canonical(v) for k, v in model.model_dump(mode="json").items()}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=False)
