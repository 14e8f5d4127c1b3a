"""docs/protocol.md names exactly the events and fields of the protocol's structs (signaling.messages), both ways.

For each namespace, the "Server to X" table must list every event of ``*_OUT`` with its payload, and the
"X to server" table every event of ``*_IN`` with its payload and its ack, no more and no less. A payload is
written as in the document's "How to read the tables": ``{ a, b?, c: {d, e}, f: [{g}], h: "x" | "y",
i: int | null }``. Checked field by field, nested ones included: the names; ``?`` exactly for the fields
that may be absent (those with a default); the values listed for a field, against its ``Literal``; ``null``
for the fields always present, exactly when they may be ``null``. Pure: no server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from msgspec import inspect

from signaling import errors, messages

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


# -- reading the document ---------------------------------------------------------------------------------------------


def section_table(text: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first table after ``heading`` (a Markdown heading line), as column -> cell text."""
    lines = text.splitlines()
    matches = [i for i, line in enumerate(lines) if re.fullmatch(r"#+ " + re.escape(heading), line.strip())]
    assert len(matches) == 1, f"docs/protocol.md needs exactly one heading {heading!r}, found {len(matches)}"
    rows: list[list[str]] = []
    for line in lines[matches[0] + 1:]:
        line = line.strip()
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append(split_row(line))
        elif rows:
            break
    assert len(rows) >= 2, f"no table under {heading!r}"
    header, rule, *body = rows
    assert all(set(cell) <= set("-: ") for cell in rule), f"malformed table under {heading!r}"
    return [dict(zip(header, row, strict=True)) for row in body]


def split_row(line: str) -> list[str]:
    assert line.endswith("|"), line
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def event_name(cell: str) -> str:
    spans = code_spans(cell)
    assert len(spans) == 1 and spans[0] == cell.strip("`"), f"an event cell holds one `name`: {cell!r}"
    return spans[0]


def payload_of(cell: str, what: str) -> dict[str, DocField]:
    objects = [span for span in code_spans(cell) if span.lstrip().startswith("{")]
    assert len(objects) == 1, f"{what}: the cell must hold exactly one `{{ ... }}`, found {objects!r}"
    return parse(objects[0])


# -- the payload notation ---------------------------------------------------------------------------------------------


@dataclass
class DocField:
    optional: bool = False  # written `name?`
    nested: dict[str, DocField] | None = None  # `name: {…}` or `name: [{…}]`
    literals: frozenset[str] = frozenset()  # `name: "x" | "y"`
    nullable: bool = False  # `null` among the alternatives


TOKEN = re.compile(r'\s*(?:([{}\[\],:|?])|("[^"]*")|([A-Za-z_][A-Za-z0-9_]*|-?\d+(?:\.\d+)?|…|\.\.\.))')


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read {text[pos:pos + 20]!r} in {text!r}")
        tokens.append(next(group for group in match.groups() if group is not None))
        pos = match.end()
    return tokens


def parse(text: str) -> dict[str, DocField]:
    """``{ a, b?, c: {…} }`` as its fields."""
    reader = _Reader(tokenize(text), text)
    fields = reader.object()
    reader.end()
    return fields


@dataclass
class _Reader:
    tokens: list[str]
    text: str
    pos: int = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'more'} at token {self.pos} ({token!r}) of {self.text!r}")
        self.pos += 1
        return token

    def end(self) -> None:
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} after the object in {self.text!r}")

    def object(self) -> dict[str, DocField]:
        self.take("{")
        fields: dict[str, DocField] = {}
        while self.peek() != "}":
            name = self.take()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"expected a field name, got {name!r} in {self.text!r}")
            if name in fields:
                raise ValueError(f"field {name!r} twice in {self.text!r}")
            spec = DocField()
            if self.peek() == "?":
                self.take()
                spec.optional = True
            if self.peek() == ":":
                self.take()
                self.value(spec)
            fields[name] = spec
            if self.peek() != "}":
                self.take(",")
        self.take("}")
        return fields

    def value(self, spec: DocField) -> None:
        """Alternatives separated by ``|``: an object, a list of one shape, strings, ``null`` or type words."""
        while True:
            token = self.peek()
            if token == "{":
                if spec.nested is not None:
                    raise ValueError(f"two object shapes for one field in {self.text!r}")
                spec.nested = self.object()
            elif token == "[":
                self.take("[")
                self.value(spec)
                self.take("]")
            elif token is not None and token.startswith('"'):
                spec.literals |= {self.take()[1:-1]}
            elif token == "null":
                self.take()
                spec.nullable = True
            else:
                self.take()  # a type word or a number (`int`, `true`, `0`): for the reader only
            if self.peek() != "|":
                return
            self.take("|")


# -- what the structs say ---------------------------------------------------------------------------------------------


@dataclass
class Want:
    optional: bool
    nested: dict[str, Want] | None = None
    literals: frozenset[str] = frozenset()
    nullable: bool = False
    enum: bool = False  # the type is a Literal: listed values must be exactly its values


def struct_fields(kind: type[msgspec.Struct]) -> dict[str, Want]:
    info = inspect.type_info(kind)
    assert isinstance(info, inspect.StructType)
    return _fields(info)


def _fields(info: inspect.StructType) -> dict[str, Want]:
    wants = {}
    for f in info.fields:
        want = Want(optional=not f.required)
        _shape(f.type, want, top=True)
        wants[f.encode_name] = want
    return wants


def _shape(t: inspect.Type, want: Want, top: bool) -> None:
    if isinstance(t, inspect.StructType):
        want.nested = _fields(t)
    elif isinstance(t, inspect.UnionType):
        for member in t.types:
            _shape(member, want, top)
    elif isinstance(t, inspect.ListType):
        _shape(t.item_type, want, top=False)
    elif isinstance(t, inspect.LiteralType):
        want.enum = True
        want.literals |= {str(v) for v in t.values}
    elif isinstance(t, inspect.NoneType) and top:
        want.nullable = True


# -- the comparison ---------------------------------------------------------------------------------------------------


def differences(where: str, doc: dict[str, DocField], want: dict[str, Want]) -> list[str]:
    """Every way the documented fields differ from the struct's, each naming the field's path."""
    problems = [f"{where}: `{name}` is in the struct, not in the document" for name in sorted(want.keys() - doc)]
    problems += [f"{where}: `{name}` is in the document, not in the struct" for name in sorted(doc.keys() - want)]
    for name in sorted(doc.keys() & want.keys()):
        d, w, path = doc[name], want[name], f"{where}.{name}"
        if d.optional != w.optional:
            problems.append(f"{path}: " + ("may be absent: write `?`" if w.optional else "is always present: no `?`"))
        if w.nested is not None and d.nested is None:
            problems.append(f"{path}: list its fields: {{{', '.join(w.nested)}}}")
        elif w.nested is None and d.nested is not None:
            problems.append(f"{path}: the struct has no fields under it")
        elif w.nested is not None and d.nested is not None:
            problems += differences(path, d.nested, w.nested)
        if d.literals and d.literals != w.literals:
            expected = " | ".join(f'"{v}"' for v in sorted(w.literals)) if w.enum else "no fixed values"
            problems.append(f"{path}: the document lists {sorted(d.literals)}, the struct {expected}")
        if not w.optional and d.nullable != w.nullable:
            problems.append(f"{path}: " + ("may be null: write `| null`" if w.nullable else "is never null"))
    return problems


# -- the tests --------------------------------------------------------------------------------------------------------

OUT = {"kiosk": messages.KIOSK_OUT, "clerk": messages.CLERK_OUT}
IN = {"kiosk": messages.KIOSK_IN, "clerk": messages.CLERK_IN}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def rows_by_event(rows: list[dict[str, str]], heading: str) -> dict[str, dict[str, str]]:
    events = [event_name(row["event"]) for row in rows]
    assert len(events) == len(set(events)), f"{heading}: an event listed twice: {events}"
    return dict(zip(events, rows, strict=True))


@pytest.mark.parametrize("side", ["kiosk", "clerk"])
def test_server_to_client_table_is_the_out_table(doc: str, side: str) -> None:
    heading = f"Server to {side}"
    rows = rows_by_event(section_table(doc, heading), heading)
    table = OUT[side]
    assert set(rows) == set(table), f"{heading}: missing {sorted(set(table) - set(rows))}, " \
                                    f"extra {sorted(set(rows) - set(table))}"
    problems = []
    for event, kind in table.items():
        problems += differences(f"{side} <- {event}", payload_of(rows[event]["payload"], event), struct_fields(kind))
    assert not problems, "docs/protocol.md differs from signaling/messages.py:\n" + "\n".join(problems)


@pytest.mark.parametrize("side", ["kiosk", "clerk"])
def test_client_to_server_table_is_the_in_table(doc: str, side: str) -> None:
    heading = f"{side.capitalize()} to server"
    rows = rows_by_event(section_table(doc, heading), heading)
    table = IN[side]
    assert set(rows) == set(table), f"{heading}: missing {sorted(set(table) - set(rows))}, " \
                                    f"extra {sorted(set(rows) - set(table))}"
    problems = []
    for event, (kind, ack_kind) in table.items():
        problems += differences(f"{side} -> {event}", payload_of(rows[event]["payload"], event),
                                struct_fields(kind))
        ack = payload_of(rows[event]["ack on success"], f"ack of {event}")
        ok = ack.pop("ok", None)
        if ok is None or ok.literals or ok.optional:
            problems.append(f"{side} -> {event} ack: starts with `ok: true`")
        problems += differences(f"{side} -> {event} ack", ack, struct_fields(ack_kind))
    assert not problems, "docs/protocol.md differs from signaling/messages.py:\n" + "\n".join(problems)


def test_error_codes_table_lists_every_code_of_the_server(doc: str) -> None:
    documented = [event_name(row["code"]) for row in section_table(doc, "Error codes")]
    codes = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}
    assert len(documented) == len(set(documented))
    assert set(documented) == codes


def test_reserved_event_names_are_documented_as_unknown_events(doc: str) -> None:
    [row] = [r for r in section_table(doc, "Error codes") if r["code"] == "`unknown_event`"]
    assert set(messages.RESERVED_EVENTS) <= set(code_spans(row["meaning"]))


# -- the checker itself -----------------------------------------------------------------------------------------------


class Inner(msgspec.Struct):
    x: int
    y: str = ""


class Sample(msgspec.Struct, omit_defaults=True):
    a: str
    b: int | None
    kind: Any = None
    state: str = "queued"
    inner: Inner | None = None
    items: list[Inner] = msgspec.field(default_factory=list)


def test_the_notation_reads_nested_objects_lists_literals_and_null() -> None:
    fields = parse('{ a, b: int | null, kind?: "x" | "y", inner?: {x, y?}, items?: [{x, y?}] }')
    assert list(fields) == ["a", "b", "kind", "inner", "items"]
    assert fields["b"].nullable and not fields["b"].optional
    assert fields["kind"] == DocField(optional=True, literals=frozenset({"x", "y"}))
    assert fields["inner"].nested == fields["items"].nested == {"x": DocField(), "y": DocField(optional=True)}
    for bad in ("{ a, a }", "{ a b }", "{ a: {x} | {y} }", "{ a } }", '{ "a" }'):
        with pytest.raises(ValueError):
            parse(bad)


def test_the_checker_finds_every_kind_of_difference() -> None:
    want = struct_fields(Sample)
    good = parse("{ a, b: int | null, kind?, state?, inner?: {x, y?}, items?: [{x, y?}] }")
    assert differences("s", good, want) == []
    bad = parse('{ a?, b, kind?, extra, inner?: {x, y?, z}, items?, state?: "queued" }')
    assert differences("s", bad, want) == [
        "s: `extra` is in the document, not in the struct",
        "s.a: is always present: no `?`",
        "s.b: may be null: write `| null`",
        "s.inner: `z` is in the document, not in the struct",
        "s.items: list its fields: {x, y}",
        "s.state: the document lists ['queued'], the struct no fixed values",
    ]
    matched = struct_fields(messages.KioskMatched)
    policy = 'ice_transport_policy?: "all" | "relay"'
    kiosk_side = parse('{ call_id, role: "offerer", ice_servers, field, recording, peer: {name}, ' + policy + ' }')
    assert differences("m", kiosk_side, matched) == ["m.peer: `center` is in the struct, not in the document"]
    clerk_side = parse('{ call_id, role: "answerer", ice_servers, field, recording, peer: {name, center}, '
                       + policy + ' }')
    assert differences("m", clerk_side, matched) == ["m.role: the document lists ['answerer'], the struct \"offerer\""]
