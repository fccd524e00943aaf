"""Versioned prompt templates with few-shot examples, kept in YAML files users can edit.

A template is one YAML file, ``<name>.yaml``: a system text, a user template with ``{field}``
placeholders, few-shot examples (inputs and the output the model should give), an optional JSON
schema of the output, and default sampling parameters. The examples become earlier chat turns, which
is what makes a small local model (SmolLM2-135M) give usable answers at all.

The built-in templates ship in ``shopaug/llm/prompts/``. A user overrides one, or adds a new one,
by copying a YAML file into a folder of their own and pointing :class:`PromptLibrary` (or the
``SHOPAUG_PROMPT_DIR`` environment variable) at it; no code changes. ``name@vN`` goes into cache
keys and sample provenance; bump ``version`` when the meaning changes (the cache misses on any text
change anyway, since the rendered messages are part of the key).
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shopaug.llm.base import GenerationParams, GenerationRequest, Message
from shopaug.llm.parsing import schema_errors

#: Environment variable naming a folder of user templates that take precedence over built-ins.
PROMPT_DIR_ENV = "SHOPAUG_PROMPT_DIR"


class PromptError(ValueError):
    """A template that cannot be loaded or rendered, with the template and field named."""


class FewShot(BaseModel):
    """One worked example: the template's fields, and the answer the model should give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: dict[str, Any]
    output: Any = Field(description="Text, or a JSON value when the template has a schema.")


class PromptTemplate(BaseModel):
    """One versioned prompt (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    description: str = ""
    system: str
    user: str = Field(description="The user turn, with {field} placeholders.")
    examples: tuple[FewShot, ...] = ()
    output_schema: dict[str, Any] | None = None
    params: GenerationParams = GenerationParams()

    @model_validator(mode="after")
    def _examples_fit(self) -> PromptTemplate:
        """Examples must render and match the schema: a typo in an edited file fails at load."""
        for i, example in enumerate(self.examples, 1):
            self.render(example.input, what=f"example {i}")
            if self.output_schema is not None:
                errors = schema_errors(example.output, self.output_schema)
                if errors:
                    raise ValueError(f"example {i} output does not fit output_schema: {errors[0]}")
        return self

    @property
    def tag(self) -> str:
        """``name@vN``: the prompt's identity in cache keys and provenance."""
        return f"{self.name}@v{self.version}"

    @property
    def fields(self) -> list[str]:
        """The placeholders of the user template, in order of first use."""
        names = (f for _, f, _, _ in string.Formatter().parse(self.user) if f)
        return list(dict.fromkeys(name.split(".")[0].split("[")[0] for name in names))

    def render(self, values: Mapping[str, Any], what: str = "input") -> str:
        """The user turn for ``values`` (extra keys are ignored; None renders as empty text,
        since a missing brand or description is common and "None" would mislead the model)."""
        missing = [f for f in self.fields if f not in values]
        if missing:
            given = ", ".join(sorted(values)) or "nothing"
            raise PromptError(
                f"prompt {self.tag}: {what} lacks field {missing[0]!r} (needs "
                f"{', '.join(self.fields)}; given {given})"
            )
        clean = {k: "" if v is None else v for k, v in values.items()}
        return self.user.format_map(clean)

    def messages(self, values: Mapping[str, Any]) -> tuple[Message, ...]:
        """System turn, one user/assistant pair per example, then the user turn for ``values``."""
        turns = [Message(role="system", content=self.system.strip())]
        for example in self.examples:
            turns.append(Message(role="user", content=self.render(example.input)))
            turns.append(Message(role="assistant", content=self._answer(example.output)))
        turns.append(Message(role="user", content=self.render(values)))
        return tuple(turns)

    def request(
        self,
        values: Mapping[str, Any],
        *,
        retries: int = 2,
        params: GenerationParams | None = None,
    ) -> GenerationRequest:
        """A batch request for ``values`` with this template's schema, parameters and tag."""
        return GenerationRequest(
            messages=self.messages(values),
            params=params or self.params,
            output_schema=self.output_schema,
            prompt=self.tag,
            retries=retries,
        )

    def _answer(self, output: Any) -> str:
        if self.output_schema is None and isinstance(output, str):
            return output.strip()
        return json.dumps(output, ensure_ascii=False)


def builtin_dir() -> Traversable:
    """The folder of templates shipped with shopaug."""
    return resources.files("shopaug.llm").joinpath("prompts")


def read_prompt(source: Path | Traversable) -> PromptTemplate:
    """One template file, validated; errors name the file."""
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PromptError(f"{source}: expected a mapping of name, version, system, user, ...")
    try:
        template = PromptTemplate.model_validate(data)
    except (ValidationError, PromptError) as exc:
        raise PromptError(f"{source}: {exc}") from None
    stem = source.name.removesuffix(".yaml")
    if template.name != stem:
        raise PromptError(f"{source}: name {template.name!r} differs from the file name {stem!r}")
    return template


class PromptLibrary:
    """Templates by name: the user folder first (``user_dir``, else ``$SHOPAUG_PROMPT_DIR``), then
    the built-ins."""

    def __init__(self, user_dir: Path | str | None = None) -> None:
        chosen = user_dir if user_dir is not None else os.environ.get(PROMPT_DIR_ENV)
        self.user_dir = Path(chosen) if chosen else None
        if self.user_dir is not None and not self.user_dir.is_dir():
            raise PromptError(f"prompt folder {str(self.user_dir)!r} does not exist")
        self._loaded: dict[str, PromptTemplate] = {}

    def _folders(self) -> list[Path | Traversable]:
        return [*([self.user_dir] if self.user_dir is not None else []), builtin_dir()]

    def names(self) -> list[str]:
        found = {
            entry.name.removesuffix(".yaml")
            for folder in self._folders()
            for entry in folder.iterdir()
            if entry.name.endswith(".yaml")
        }
        return sorted(found)

    def source(self, name: str) -> Path | Traversable:
        """The file ``name`` is read from (the user's copy if there is one)."""
        for folder in self._folders():
            candidate = folder.joinpath(f"{name}.yaml")
            if candidate.is_file():
                return candidate
        raise PromptError(f"no prompt named {name!r}; known prompts: {', '.join(self.names())}")

    def get(self, name: str) -> PromptTemplate:
        if name not in self._loaded:
            self._loaded[name] = read_prompt(self.source(name))
        return self._loaded[name]


def load_prompt(name: str, user_dir: Path | str | None = None) -> PromptTemplate:
    """The template ``name``, from ``user_dir`` (or ``$SHOPAUG_PROMPT_DIR``) if it has one."""
    return PromptLibrary(user_dir).get(name)
