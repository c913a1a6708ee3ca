"""Settings from environment variables (prefix ``CXBOT_``, or the platforms' own names) and ``.env``."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.journey_map import TimeZone

# content/ sits beside bot/ in the repository (and so in an editable install); a wheel ships it
# inside the package as bot/content_files (pyproject.toml maps the one onto the other).
REPO_CONTENT = Path(__file__).resolve().parent.parent / "content"
PACKAGED_CONTENT = "content_files"


def default_content_dir() -> Path:
    """The content shipped with cxbot: the installed package's, else the checkout's."""
    packaged = files("bot") / PACKAGED_CONTENT
    # A real directory whenever pip installed cxbot; a zipped import has no path to hand on.
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return REPO_CONTENT


def _ids(text: str) -> list[int]:
    # Checked by _check_ids when the settings were read: ASCII digits only.
    return [int(w) for w in (w.strip() for w in text.split(",")) if w]


_DISCORD_ID = re.compile(r"[0-9]{1,20}", re.ASCII)  # a snowflake: up to 20 ASCII digits, more than whole_number reads


def _is_id(word: str) -> bool:
    return _DISCORD_ID.fullmatch(word) is not None


def _check_ids(value: object) -> str:
    text = str(value or "")
    bad = [w.strip() for w in text.split(",") if w.strip() and not _is_id(w.strip())]
    if bad:
        raise ValueError(f"{', '.join(bad)} is not a Discord id (comma-separated digits)")
    return text


DiscordIds = Annotated[str, BeforeValidator(_check_ids)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CXBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default="sqlite:///cxbot.db",
        validation_alias=AliasChoices("CXBOT_DATABASE_URL", "DATABASE_URL"),
    )
    # Seconds to keep trying an unreachable database at start before giving up (0: at once).
    database_wait: float = Field(default=30.0, ge=0, le=3600)
    content_dir: Path = Field(default_factory=default_content_dir)
    journey_file: Path | None = None
    time_zone: TimeZone = "Europe/Stockholm"
    language: Literal["sv", "en"] = "sv"
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(lambda v: str(v).upper())
    ] = "INFO"
    # When the weekly tip goes out (crontab, in the org's time zone) and how it is chosen.
    tip_schedule: str = "0 9 * * mon"
    tip_order: Literal["auto", "rotation", "adaptive"] = "auto"
    # When last week's digest goes out (crontab, in the org's time zone).
    digest_schedule: str = "0 9 * * mon"
    # A read-only database the journey file's KPI queries run against, weekly.
    warehouse_url: SecretStr | None = None

    # The web server every `cxbot run` with a platform serves (health, metrics, Slack's HTTP
    # events): its port (platforms such as Heroku set PORT), and the limits of what it accepts.
    port: int | None = Field(default=None, ge=1, le=65535, validation_alias=AliasChoices("CXBOT_PORT", "PORT"))
    web_max_body: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    web_body_timeout: float = Field(default=10.0, gt=0, le=300)
    web_header_timeout: float = Field(default=10.0, gt=0, le=300)
    web_keep_alive: float = Field(default=5.0, ge=1, le=300)
    web_max_connections: int = Field(default=2000, ge=10, le=100_000)
    ready_timeout: float = Field(default=2.0, gt=0, le=30)
    # Seconds SIGTERM waits for requests in flight before the process stops anyway.
    shutdown_grace: float = Field(default=10.0, ge=1, le=300)

    # Slack (issue 7), Discord (issue 8) and OpenAI (issue 4) use their platforms' usual names.
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    # Another Web API base (GovSlack-style deployments; tests point it at a loopback stub).
    slack_api_base_url: str | None = Field(default=None, validation_alias="SLACK_API_BASE_URL")
    discord_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_TOKEN")
    # Guilds whose /cx commands are synced at start (comma-separated ids), and roles that may use
    # the admin sub-commands besides Manage Server.
    discord_guild_ids: DiscordIds = Field(default="", validation_alias="DISCORD_GUILD_IDS")
    discord_admin_role_ids: DiscordIds = Field(default="", validation_alias="DISCORD_ADMIN_ROLE_IDS")
    # Another REST API base and gateway than Discord's own (a proxy; tests point them at stubs).
    discord_api_base_url: str | None = Field(default=None, validation_alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(default=None, validation_alias="DISCORD_GATEWAY_URL")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_model: str = "gpt-4o-mini"
    # Seconds to wait for a classification before falling back to the offline classifier.
    openai_timeout: float = Field(default=10.0, gt=0, le=60)
    # Reacting with one of these saves a chat message as an observation (comma-separated).
    capture_emoji: str = "👂,ear"

    @property
    def discord_guild_id_list(self) -> list[int]:
        return _ids(self.discord_guild_ids)

    @property
    def discord_admin_role_id_list(self) -> list[int]:
        return _ids(self.discord_admin_role_ids)

    @property
    def capture_emoji_set(self) -> frozenset[str]:
        names = {e.strip() for e in self.capture_emoji.split(",") if e.strip()}
        return frozenset(names | {f":{n}:" for n in names if n.isascii()})

    @property
    def journey_path(self) -> Path:
        return self.journey_file or self.content_dir / "journey.example.yaml"
