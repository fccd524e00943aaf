"""Prompt templates: built-ins load, a user folder overrides them without code, and mistakes in a
template or its inputs fail naming the template and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shopaug.llm import FakeGenerator, PromptError, PromptLibrary, load_prompt
from shopaug.llm.prompts import PROMPT_DIR_ENV, builtin_dir

BEAKER = {
    "title": "Borosilicate Glass Beaker 250 mL, Pack of 6",
    "brand": "Pyrex",
    "category": "Lab Supplies > Beakers",
    "description": None,
}
BAD_EXAMPLE = {"input": BEAKER, "output": {"queries": "not a list"}}
NEEDED = {"item_queries", "query_variants", "user_profile", "cold_item_judgment", "describe_item"}


def builtin(name: str) -> dict:
    return yaml.safe_load(builtin_dir().joinpath(f"{name}.yaml").read_text(encoding="utf-8"))


def test_builtins_load_with_examples() -> None:
    library = PromptLibrary()
    assert set(library.names()) >= NEEDED
    for name in NEEDED:
        template = library.get(name)
        assert template.tag == f"{name}@v{template.version}"
        assert len(template.examples) >= 2, name
    assert load_prompt("cold_item_judgment").output_schema["properties"]["answer"]["enum"] == [
        "yes",
        "no",
    ]


def test_messages_are_system_examples_then_input() -> None:
    template = load_prompt("item_queries")
    messages = template.messages(BEAKER)
    roles = [m.role for m in messages]
    assert roles == ["system", *["user", "assistant"] * len(template.examples), "user"]
    assert json.loads(messages[2].content) == template.examples[0].output
    assert messages[-1].content.startswith(f"Title: {BEAKER['title']}\nBrand: Pyrex")
    assert "None" not in messages[-1].content  # a missing description renders empty


def test_request_runs_through_a_generator(tmp_path: Path) -> None:
    template = load_prompt("item_queries")
    result = FakeGenerator(cache_dir=tmp_path).run(template.request(BEAKER))
    assert result.ok and result.prompt == "item_queries@v1"
    assert 1 <= len(result.parsed["queries"]) <= 5


def test_missing_field_names_prompt_and_field() -> None:
    with pytest.raises(PromptError, match=r"item_queries@v1: input lacks field 'brand'"):
        load_prompt("item_queries").messages({"title": "Beaker"})


def test_user_folder_overrides_without_code(tmp_path: Path, monkeypatch) -> None:
    edited = builtin("item_queries") | {"version": 2, "system": "Write queries in German."}
    (tmp_path / "item_queries.yaml").write_text(yaml.safe_dump(edited), encoding="utf-8")
    own = {"name": "bundle", "version": 1, "system": "s", "user": "Items: {items}"}
    (tmp_path / "bundle.yaml").write_text(yaml.safe_dump(own), encoding="utf-8")

    library = PromptLibrary(tmp_path)
    assert library.get("item_queries").tag == "item_queries@v2"
    assert library.get("item_queries").messages(BEAKER)[0].content == "Write queries in German."
    assert library.source("user_profile") == builtin_dir().joinpath("user_profile.yaml")
    assert "bundle" in library.names()
    monkeypatch.setenv(PROMPT_DIR_ENV, str(tmp_path))
    assert load_prompt("bundle").fields == ["items"]
    monkeypatch.delenv(PROMPT_DIR_ENV)
    assert load_prompt("item_queries").version == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "other"}, "differs from the file name"),
        ({"user": "Title: {titel}"}, "example 1 lacks field 'titel'"),
        ({"examples": [BAD_EXAMPLE]}, "example 1 output does not fit output_schema"),
        ({"temperature": 0.3}, "Extra inputs are not permitted"),
    ],
)
def test_broken_user_templates_fail_at_load(tmp_path: Path, change: dict, message: str) -> None:
    (tmp_path / "item_queries.yaml").write_text(
        yaml.safe_dump(builtin("item_queries") | change), encoding="utf-8"
    )
    with pytest.raises(PromptError, match=message):
        load_prompt("item_queries", tmp_path)


def test_unknown_name_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="no prompt named 'nope'; known prompts: "):
        load_prompt("nope")
    (tmp_path / "item_queries.yaml").write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(PromptError, match="not valid YAML"):
        load_prompt("item_queries", tmp_path)
    with pytest.raises(PromptError, match="does not exist"):
        PromptLibrary(tmp_path / "missing")
