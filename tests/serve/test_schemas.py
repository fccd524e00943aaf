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
