"""What the product says, read from the content folder: the message catalogue and the tips.

Read once at start (``load_content``), so a broken file stops the bot with a sentence that
names it, and handed to the app and the clock; ``default_content`` reads the content shipped with
cxbot (``bot.config.default_content_dir``: package data in a wheel, content/ in a checkout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bot.domain.tips import Tip, load_tips
from bot.i18n import Catalogue, load_catalogue


@dataclass(frozen=True)
class Content:
    catalogue: Catalogue
    tips: Mapping[str, Mapping[int, Tip]]


def load_content(directory: Path) -> Content:
    """Raises CatalogueError or TipsFileError, each naming the file and the problem."""
    return Content(catalogue=load_catalogue(directory / "i18n"), tips=load_tips(directory / "tips"))


@cache
def default_content() -> Content:
    from bot.config import default_content_dir

    return load_content(default_content_dir())
