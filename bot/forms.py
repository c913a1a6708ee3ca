"""Forms: what a platform shows as a modal (Slack) or a form (Discord), described neutrally.

The core builds a ``Form`` (``CxApp.form``) and takes its ``FormSubmission`` back
(``CxApp.submit``); adapters only draw and collect. So a report typed as `/cx report …` and one
filled in a modal make the same rows, through the same service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class ChoiceGroup:
    label: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Literal["select", "text", "multiline", "checkbox"]
    required: bool = True
    groups: tuple[ChoiceGroup, ...] = ()  # for a select: options, grouped (one group: no headings)
    initial: str | None = None
    placeholder: str | None = None
    max_length: int | None = None

    @property
    def choices(self) -> tuple[Choice, ...]:
        return tuple(c for g in self.groups for c in g.choices)


@dataclass(frozen=True)
class Form:
    form_id: str  # e.g. "report", "resolve:42": comes back with the submission
    title: str
    submit: str
    fields: tuple[FormField, ...]
    intro: str | None = None


@dataclass(frozen=True)
class FormRequest:
    """Someone asked for a form (a command without text, or a button that needs details)."""

    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    form_id: str


@dataclass(frozen=True)
class FormSubmission:
    platform: str
    workspace_id: str
    user_id: str
    channel_id: str
    form_id: str
    values: dict[str, str] = field(default_factory=dict)  # a checkbox: "true" when ticked
