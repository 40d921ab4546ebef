"""The event stream's schema, read from its documentation (``docs/events.md``), and a small
checker for event lines.

The field tables in docs/events.md are the schema: each ``## `type``` section lists the
fields of that event type (``pods[].name`` for the fields of an array's objects), the
``## Every event`` section those every event carries. Reading them here keeps the document
and the code from drifting apart: an undocumented field fails the tests as surely as a
missing one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
ENVELOPE = "*"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
_ROW = re.compile(r"^\|\s*`([A-Za-z]+(?:\[\]\.[A-Za-z]+)?)`\s*\|\s*([a-z ]+?)\s*\|")
_SECTION = re.compile(r"^## (?:`([a-z]+)`|(Every event))\s*$")

Schema = dict[str, dict[str, tuple[str, ...]]]  # section -> field -> allowed type names


def load_schema(text: str | None = None) -> Schema:
    """Section -> field -> the type names it may have (``string or null``)."""
    schema: Schema = {}
    section = None
    for line in (text if text is not None else DOC.read_text(encoding="utf-8")).splitlines():
        heading = _SECTION.match(line)
        if heading:
            section = heading.group(1) or ENVELOPE
            schema[section] = {}
            continue
        if line.startswith("## "):
            section = None
        row = _ROW.match(line)
        if section is not None and row:
            names = tuple(word.strip() for word in row.group(2).split(" or "))
            unknown = [name for name in names if name not in _TYPES]
            assert not unknown, f"docs/events.md: unknown type {unknown} for {row.group(1)}"
            schema[section][row.group(1)] = names
    return schema


def problems(event: Any, schema: Schema) -> list[str]:
    """What is wrong with one event, by the schema (empty: nothing)."""
    if not isinstance(event, dict):
        return [f"not an object: {event!r}"]
    kind = event.get("type")
    if kind not in schema or kind == ENVELOPE:
        return [f"undocumented event type {kind!r}"]
    fields = {**schema[ENVELOPE], **schema[kind]}
    found = []
    top = {name: types for name, types in fields.items() if "[]." not in name}
    for name in event:
        if name not in top:
            found.append(f"{kind}: undocumented field {name!r}")
    for name, types in top.items():
        if name not in event:
            found.append(f"{kind}: missing field {name!r}")
        elif not _is(event[name], types):
            found.append(f"{kind}: {name}={event[name]!r} is not {' or '.join(types)}")
    for name, types in fields.items():
        if "[]." not in name:
            continue
        array, _, key = name.partition("[].")
        for item in event.get(array) or ():
            if not isinstance(item, dict) or key not in item:
                found.append(f"{kind}: {array}[] item without {key!r}: {item!r}")
            elif not _is(item[key], types):
                found.append(f"{kind}: {name}={item[key]!r} is not {' or '.join(types)}")
        nested = {n.partition("[].")[2] for n in fields if n.startswith(f"{array}[].")}
        for item in event.get(array) or ():
            extra = set(item) - nested if isinstance(item, dict) else set()
            if extra:
                found.append(f"{kind}: {array}[] undocumented fields {sorted(extra)}")
                break
    if event.get("schema") != "restart-backend.events/v1":
        found.append(f"{kind}: schema is {event.get('schema')!r}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(event.get("time"))):
        found.append(f"{kind}: time {event.get('time')!r} is not RFC 3339 UTC with ms")
    return sorted(set(found))


def _is(value: Any, types: tuple[str, ...]) -> bool:
    for name in types:
        if name in ("integer", "number") and isinstance(value, bool):
            continue
        if isinstance(value, _TYPES[name]):
            return True
    return False


def parse_stream(text: str) -> list[dict]:
    """Every line of an ``-o ndjson`` stdout, each parsed and checked against the schema,
    and the stream against docs/events.md's order: each workload's ``verdict`` once (it is
    final when written), nothing after ``run`` or ``error``."""
    schema = load_schema()
    lines = text.splitlines()
    assert lines, "no events at all"
    events = []
    for number, line in enumerate(lines, 1):
        event = json.loads(line)
        wrong = problems(event, schema)
        assert not wrong, f"line {number}: {wrong}\n{line}"
        events.append(event)
    wrong = stream_problems(events)
    assert not wrong, wrong
    return events


def stream_problems(events: list[dict]) -> list[str]:
    """What is wrong with a whole stream's order (empty: nothing)."""
    found = []
    verdicts: dict[tuple, int] = {}
    for number, event in enumerate(events, 1):
        if event.get("type") in ("run", "error") and number != len(events):
            found.append(f"line {number}: {event.get('type')} is not the last line")
        if event.get("type") == "verdict":
            document = event.get("document") or {}
            key = (event.get("context"), document.get("namespace"), event.get("workload"))
            if key in verdicts:
                found.append(f"line {number}: a second verdict for {key} (line {verdicts[key]})")
            verdicts.setdefault(key, number)
    return found
