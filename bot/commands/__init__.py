"""Chat commands. Each module registers its sub-commands and button handlers on a Registry."""

from __future__ import annotations

from bot.app import Registry


def default_registry() -> Registry:
    from bot.commands import general, issues, journey, kpi, observations, tips

    registry = Registry()
    # tips before observations: a 👂 on a tip post is engagement too, before it is captured.
    for module in (general, journey, issues, tips, observations, kpi):
        module.register(registry)
    return registry
