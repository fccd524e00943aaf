"""Service settings and request bodies: limits, unknown fields, the API key's sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shopaug.serve.schemas import API_KEY_ENV, Event, Item, ServeSettings, SessionRequest


def test_settings_come_from_serve_json_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert ServeSettings.load(tmp_path) == ServeSettings()
    (tmp_path / "serve.json").write_text('{"api_key": "file", "max_k": 20, "search_mode": "bm25"}')
    settings = ServeSettings.load(tmp_path)
    assert (settings.api_key, settings.max_k, settings.search_mode) == ("file", 20, "bm25")
    monkeypatch.setenv(API_KEY_ENV, "env")
    assert ServeSettings.load(tmp_path).api_key == "env"
    (tmp_path / "serve.json").write_text('{"max_kk": 20}')
    with pytest.raises(ValidationError, match="max_kk"):
        ServeSettings.load(tmp_path)


def test_request_bodies_reject_unknown_fields_and_bad_values() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Event.model_validate({"user_id": "u", "item_id": "i", "colour": "red"})
    with pytest.raises(ValidationError, match="event"):
        Event.model_validate({"user_id": "u", "item_id": "i", "event": "drop table;"})
    with pytest.raises(ValidationError, match="user_id"):
        Event.model_validate({"user_id": "   ", "item_id": "i"})
    with pytest.raises(ValidationError, match="title"):
        Item.model_validate({"item_id": "i", "title": ""})
    with pytest.raises(ValidationError, match="k"):
        SessionRequest.model_validate({"items": [], "k": 0})
    event = Event.model_validate({"user_id": " ü ", "item_id": "i", "timestamp": 1767225600})
    assert event.user_id == "ü" and event.event == "view" and event.timestamp.year == 2026


def test_event_times_are_stored_in_one_canonical_utc_form() -> None:
    whole = Event.model_validate(
        {"user_id": "u", "item_id": "i", "timestamp": "2024-01-01T00:00:00Z"}
    )
    part = Event.model_validate(
        {"user_id": "u", "item_id": "i", "timestamp": "2024-01-01T01:00:01.250+01:00"}
    )
    naive = Event.model_validate(
        {"user_id": "u", "item_id": "i", "timestamp": "2024-01-01T00:00:02"}
    )
    stored = [e.model_dump(mode="json")["timestamp"] for e in (whole, part, naive)]
    assert stored == [
        "2024-01-01T00:00:00.000000+00:00",
        "2024-01-01T00:00:01.250000+00:00",
        "2024-01-01T00:00:02.000000+00:00",
    ]
    for implausible in ["0001-01-01T00:00:00+01:00", "3000-01-01T00:00:00Z", -1]:
        with pytest.raises(ValidationError, match="timestamp"):
            Event.model_validate({"user_id": "u", "item_id": "i", "timestamp": implausible})


@pytest.mark.parametrize("price", [float("inf"), float("-inf"), float("nan"), 1e309, True, "5"])
def test_a_price_must_be_a_finite_number(price: object) -> None:
    with pytest.raises(ValidationError, match="price"):
        Item.model_validate({"item_id": "i", "title": "t", "price": price})
    assert Item.model_validate({"item_id": "i", "title": "t", "price": 5}).price == 5.0


def test_numbers_and_flags_are_strict_and_texts_writable_as_utf8() -> None:
    for body in [{"k": True}, {"k": 2.0}, {"k": "3"}, {"exclude_seen": 1}]:
        with pytest.raises(ValidationError):
            SessionRequest.model_validate(body)
    with pytest.raises(ValidationError, match="unicode"):  # a lone surrogate, escaped in JSON
        Event.model_validate({"user_id": "\ud800", "item_id": "i"})
    with pytest.raises(ValidationError, match="unicode"):
        Item.model_validate({"item_id": "i", "title": "ok", "description": "bad \udc00"})


@pytest.mark.parametrize("blank", ["\x1f", " \x1c\x1d ", "\t\n"])
def test_ids_and_titles_of_only_whitespace_are_refused(blank: str) -> None:
    # Python's strip, which the index applies, removes these; pydantic's own stripping keeps
    # U+001C..U+001F, which let such an id through to a server error (found by schemathesis).
    with pytest.raises(ValidationError, match="empty or only whitespace"):
        Item(item_id=blank, title="lamp")
    with pytest.raises(ValidationError, match="empty or only whitespace"):
        Item(item_id="x", title=blank)
    assert Item(item_id=" \x1fx\x1f ", title=" lamp ").item_id == "x"
