"""FakeGenerator: same input, same output; outputs from a mapping, a function, or a schema."""

from __future__ import annotations

import json

from shopaug.llm import FakeGenerator, GenerationParams, Message, PromptLibrary
from shopaug.llm.fake import fake_value
from shopaug.llm.parsing import schema_errors


def ask(text: str) -> list[Message]:
    return [Message(role="system", content="Be brief."), Message(role="user", content=text)]


def test_output_is_a_function_of_the_call() -> None:
    one, two = FakeGenerator(use_cache=False), FakeGenerator(use_cache=False)
    assert one.complete(ask("beaker")).text == two.complete(ask("beaker")).text
    assert one.complete(ask("beaker")).text != one.complete(ask("flask")).text
    seeded = one.complete(ask("beaker"), GenerationParams(seed=7)).text
    assert seeded != one.complete(ask("beaker")).text
    assert one.calls == 5


def test_mapping_and_function_outputs() -> None:
    mapped = FakeGenerator(use_cache=False, responses={"beaker": "glass"})
    assert mapped.complete(ask("beaker")).text == "glass"
    assert mapped.complete(ask("flask")).text.startswith("fake completion")
    echo = FakeGenerator(use_cache=False, respond=lambda m, p: m[-1].content.upper())
    completion = echo.complete(ask("lab coat"))
    assert completion.text == "LAB COAT"
    assert (completion.prompt_tokens, completion.completion_tokens) == (4, 2)


def test_malformed_then_normal() -> None:
    generator = FakeGenerator(use_cache=False, malformed_times=2, malformed_text="oops")
    assert [generator.complete(ask(str(i))).text for i in range(3)][:2] == ["oops", "oops"]
    assert generator.complete(ask("x")).text != "oops"


def test_schema_outputs_fit_every_builtin_prompt() -> None:
    library = PromptLibrary()
    for name in library.names():
        schema = library.get(name).output_schema
        if schema is None:
            continue
        value = fake_value(schema, name)
        assert schema_errors(value, schema) == [], name
        text = FakeGenerator(use_cache=False).complete(
            ask(name), GenerationParams(json_schema=schema)
        )
        assert schema_errors(json.loads(text.text), schema) == [], name
