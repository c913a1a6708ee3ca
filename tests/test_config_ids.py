"""Discord ids are snowflakes of up to 20 digits: the settings take them whole, and only ASCII digits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def test_real_discord_ids_are_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_GUILD_IDS", "900000000000000001, 18446744073709551615")
    monkeypatch.setenv("DISCORD_ADMIN_ROLE_IDS", "1180000000000000003")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert "900000000000000001" in str(settings.discord_guild_ids)


@pytest.mark.parametrize("ids", ["١٢٣", "12³", "abc", "1" * 21])
def test_digit_like_or_overlong_ids_are_refused(monkeypatch: pytest.MonkeyPatch, ids: str) -> None:
    monkeypatch.setenv("DISCORD_GUILD_IDS", ids)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]
