"""Strict output parsing: fences stripped, everything else judged and classified."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from shopaug.llm.base import Completion
from shopaug.llm.parsing import OutputError, output_parser, schema_errors, strip_fence

QUERIES = {
    "type": "object",
    "properties": {
        "queries": {
            "type": "array",
            "items": {"type": "string", "minLength": 2},
            "minItems": 1,
            "maxItems": 3,
        }
    },
    "required": ["queries"],
    "additionalProperties": False,
}


class Judgment(BaseModel):
    answer: Literal["yes", "no"]
    score: int


def parse(text: str, schema=QUERIES, **fields):
    return output_parser(schema)(Completion(text=text, **fields))


def kind_of(text: str, schema=QUERIES, **fields) -> str:
    with pytest.raises(OutputError) as caught:
        parse(text, schema, **fields)
    return caught.value.kind


def test_fenced_json_is_accepted() -> None:
    assert strip_fence('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert parse('  ```\n{"queries": ["lab coat"]}\n```  ') == {"queries": ["lab coat"]}


def test_failures_are_classified() -> None:
    assert kind_of("queries: lab coat") == "malformed"
    assert kind_of('{"queries": ["lab', finish_reason="length") == "truncated"
    assert kind_of("I'm sorry, but I can't help with that.") == "refused"
    assert kind_of("", refusal="policy") == "refused"
    assert kind_of('{"queries": []}') == "invalid"


def test_schema_errors_name_the_path() -> None:
    assert schema_errors({"queries": ["ok", 3]}, QUERIES) == [
        "$.queries[1]: expected string, got int"
    ]
    assert schema_errors({"queries": ["ab", "cd", "ef", "gh"]}, QUERIES) == [
        "$.queries: 4 items, above maxItems=3"
    ]
    assert schema_errors({"queries": ["ok"], "extra": 1}, QUERIES) == ["$: unexpected key 'extra'"]
    assert schema_errors({}, QUERIES) == ["$: missing 'queries'"]
    assert schema_errors(True, {"type": "integer"}) == ["$: expected integer, got bool"]
    assert schema_errors("maybe", {"enum": ["yes", "no"]}) == [
        "$: 'maybe' is not one of ['yes', 'no']"
    ]


def test_pydantic_schemas_validate_strictly() -> None:
    assert parse('{"answer": "yes", "score": 3}', Judgment) == Judgment(answer="yes", score=3)
    assert kind_of('{"answer": "yes", "score": "3"}', Judgment) == "invalid"
    assert kind_of('{"answer": "perhaps", "score": 3}', Judgment) == "invalid"
