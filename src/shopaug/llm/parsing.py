"""Strict parsing of model output into validated JSON.

Constrained decoding makes well-formed JSON likely, not certain: an endpoint may ignore the schema,
a generation may stop at ``max_tokens`` mid-string, a hosted model may refuse. Every output is
therefore parsed and validated here, and what fails is classified (``malformed``, ``invalid``,
``truncated``, ``refused``) so a run's failure record says why. The only leniency is stripping a
Markdown code fence, which chat models add out of habit and which hides no content.

Schemas are either pydantic models (validated in pydantic's strict mode: no "3" for 3) or JSON
schema dicts, as prompt templates carry them; dicts are checked by :func:`schema_errors`, a small
validator of the JSON-schema keywords that output schemas use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

Schema = type[BaseModel] | dict[str, Any]

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i won'?t|i am unable|i'?m unable|"
    r"as an ai)",
    re.IGNORECASE,
)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


class OutputError(Exception):
    """An output that cannot be used; ``completion`` is the rejected generation."""

    def __init__(self, kind: str, reason: str, completion: Any) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.completion = completion


def json_schema_of(schema: Schema) -> dict[str, Any]:
    """The JSON schema a backend is given for constrained decoding."""
    if isinstance(schema, dict):
        return schema
    return schema.model_json_schema()


def strip_fence(text: str) -> str:
    """``text`` without surrounding whitespace and one enclosing Markdown code fence."""
    stripped = text.strip()
    match = _FENCE.match(stripped)
    return match.group(1).strip() if match else stripped


def output_parser(schema: Schema) -> Callable[[Any], Any]:
    """A function from a completion to its validated value, raising :class:`OutputError`."""

    def parse(completion: Any) -> Any:
        if completion.refusal:
            raise OutputError("refused", completion.refusal, completion)
        text = strip_fence(completion.text)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputError(*_unparsable(completion, text, exc), completion) from None
        return validate(value, schema, completion)

    return parse


def _unparsable(completion: Any, text: str, exc: json.JSONDecodeError) -> tuple[str, str]:
    if _REFUSAL.match(text):
        return "refused", f"the model declined: {text[:200]!r}"
    if completion.finish_reason == "length":
        return "truncated", f"output hit max_tokens before the JSON was complete: {text[-80:]!r}"
    return "malformed", f"not JSON ({exc.msg} at char {exc.pos}): {text[:200]!r}"


def validate(value: Any, schema: Schema, completion: Any = None) -> Any:
    """``value`` checked against ``schema``: a model instance for pydantic schemas, else ``value``."""
    if isinstance(schema, dict):
        errors = schema_errors(value, schema)
        if errors:
            raise OutputError("invalid", "; ".join(errors[:5]), completion)
        return value
    try:
        return schema.model_validate(value, strict=True)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or '$'}: {e['msg']}" for e in exc.errors()[:5]]
        raise OutputError("invalid", "; ".join(problems), completion) from None


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Violations of ``schema`` by ``value``, each naming its JSON path; empty when valid.

    Covers type, enum, const, properties, required, additionalProperties, items, min/maxItems,
    min/maxLength and minimum/maximum: what output schemas of prompts use. Unknown keywords are
    ignored, as JSON schema prescribes.
    """
    expected = schema.get("type")
    if expected is not None and not _has_type(value, expected):
        return [f"{path}: expected {expected}, got {type(value).__name__}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    elif isinstance(value, list):
        errors += _array_errors(value, schema, path)
    elif isinstance(value, str):
        errors += _bounds(len(value), schema, "minLength", "maxLength", path, "characters")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        errors += _bounds(value, schema, "minimum", "maximum", path, "")
    return errors


def _has_type(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        if isinstance(value, bool) and name in ("integer", "number"):
            continue  # JSON true is not a number, though Python's bool is an int
        if isinstance(value, _JSON_TYPES.get(name, ())):
            return True
    return False


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [f"{path}: missing {key!r}" for key in schema.get("required", ()) if key not in value]
    properties = schema.get("properties", {})
    for key, item in value.items():
        if key in properties:
            errors += schema_errors(item, properties[key], f"{path}.{key}")
        elif schema.get("additionalProperties") is False:
            errors.append(f"{path}: unexpected key {key!r}")
    return errors


def _array_errors(value: list[Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = _bounds(len(value), schema, "minItems", "maxItems", path, "items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            errors += schema_errors(item, items, f"{path}[{i}]")
    return errors


def _bounds(
    size: float, schema: dict[str, Any], low: str, high: str, path: str, unit: str
) -> list[str]:
    what = f"{size} {unit}".strip()
    if low in schema and size < schema[low]:
        return [f"{path}: {what}, below {low}={schema[low]}"]
    if high in schema and size > schema[high]:
        return [f"{path}: {what}, above {high}={schema[high]}"]
    return []
