"""Model hyper-parameters declared once, as a typed schema per model.

Every recommender names a pydantic model as its ``Params``: each field is one hyper-parameter
with its type, default, range or choices and a one-line help (``Field(description=...)``). That
one declaration is what everything else reads, so they cannot drift apart:

- construction: ``Recommender.__init__`` validates its keyword arguments against it (strings
  from a command line are coerced to the declared type) and sets one attribute per field;
- ``get_params`` returns those attributes, in the schema's order;
- the CLI and the YAML configs check parameters with :func:`check_params` before any work starts;
- error messages and ``shopaug models`` describe parameters with :func:`param_specs`.

This is scikit-learn's split of ``_get_param_names`` (names from ``__init__``) and
``_parameter_constraints`` (ranges) folded into one place.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class ModelParams(BaseModel):
    """Base of every model's parameter schema: unknown names are errors, values are immutable.

    ``true``/``false`` are refused for numeric parameters, where pydantic would read them as 1
    and 0: ``hidden=true`` is a mistake, not a width of one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field and bool not in _plain_types(field.annotation):
            raise PydanticCustomError(
                "bool_not_number", "true/false is not a value of this parameter"
            )
        return value


class ParameterError(ValueError):
    """One bad parameter of one model: ``label.param: problem`` (``label`` is what the user
    called the model: its registry name or a ``LABEL=NAME`` label)."""

    def __init__(self, label: str, param: str, problem: str) -> None:
        self.label, self.param, self.problem = label, param, problem
        super().__init__(f"{label}.{param}: {problem}")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as people read it (the ``shopaug models`` table and error messages)."""

    name: str
    type: str
    default: Any
    allowed: str
    help: str

    def expected(self) -> str:
        """``int >= 1 (default 5)``: what a value must be, for error messages."""
        base, nullable, _ = self.type.partition(" or null")
        what = self.allowed if base == "choice" else f"{base} {self.allowed}".strip()
        default = "null" if self.default is None else repr(self.default)
        return f"{what}{' or null' if nullable else ''} (default {default})"


def param_specs(schema: type[ModelParams]) -> list[ParamSpec]:
    """The schema's parameters in declaration order."""
    return [
        ParamSpec(
            name,
            _type_name(field.annotation),
            # A list or dict default is built by a factory; show the value it builds.
            field.get_default(call_default_factory=True),
            _allowed(field.annotation, field.metadata),
            field.description or "",
        )
        for name, field in schema.model_fields.items()
    ]


def validate_params(
    schema: type[ModelParams], params: Mapping[str, Any], label: str
) -> ModelParams:
    """``schema(**params)``, with the first problem raised as a :class:`ParameterError`."""
    try:
        return schema.model_validate(dict(params))
    except ValidationError as exc:
        raise _parameter_error(schema, exc, label) from None


def check_params(
    schema: type[ModelParams], params: Mapping[str, Any], label: str
) -> dict[str, Any]:
    """The given parameters coerced to their declared types (defaults are not added), so a
    config or a results file records what was asked for, in the types the model uses."""
    return validate_params(schema, params, label).model_dump(exclude_unset=True)


def _parameter_error(schema: type[ModelParams], exc: ValidationError, label: str) -> ParameterError:
    first = exc.errors()[0]
    param = str(first["loc"][0]) if first["loc"] else "?"
    specs = {spec.name: spec for spec in param_specs(schema)}
    if first["type"] == "extra_forbidden":
        return ParameterError(label, param, _unknown(param, list(specs)))
    if first["type"] == "value_error" or param not in specs:  # a rule of the schema's own
        return ParameterError(label, param, first["msg"].removeprefix("Value error, "))
    return ParameterError(
        label, param, f"expected {specs[param].expected()}, got {first.get('input')!r}"
    )


def _unknown(param: str, known: list[str]) -> str:
    return (
        f"unknown parameter{did_you_mean(param, known)} (parameters: {', '.join(known) or 'none'})"
    )


def did_you_mean(name: str, known: list[str]) -> str:
    """``"; did you mean 'order'?"`` for the known name closest to a typo, or ``""``."""
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _plain_types(annotation: Any) -> tuple[Any, ...]:
    """``int | None`` -> ``(int, NoneType)``; anything else -> ``(annotation,)``."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _type_name(annotation: Any) -> str:
    names = []
    for part in _plain_types(annotation):
        if get_origin(part) is Literal:
            names.append("choice")
        elif part is type(None):
            names.append("null")  # as YAML and the command line write None
        else:
            names.append(getattr(part, "__name__", str(part)))
    return " or ".join(names)


def _allowed(annotation: Any, metadata: list[Any]) -> str:
    """``one of 'a', 'b'`` for a choice, a range such as ``in [0, 1)`` or ``>= 1``, else ''."""
    for part in _plain_types(annotation):
        if get_origin(part) is Literal:
            return "one of " + ", ".join(repr(choice) for choice in get_args(part))
    low = high = None
    for rule in metadata:
        if isinstance(rule, annotated_types.Ge | annotated_types.Gt):
            low = ("[", rule.ge) if isinstance(rule, annotated_types.Ge) else ("(", rule.gt)
        elif isinstance(rule, annotated_types.Le | annotated_types.Lt):
            high = ("]", rule.le) if isinstance(rule, annotated_types.Le) else (")", rule.lt)
    if low and high:
        return f"in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    return ""
