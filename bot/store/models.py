"""SQLAlchemy 2 typed models. One module: the schema is read as a whole when migrating."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    SQLite has no time zone type and hands back naive values; storing naive UTC everywhere and
    re-attaching UTC on the way out keeps comparisons and arithmetic correct on both databases.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Org(Base):
    __tablename__ = "org"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Stockholm")
    language: Mapped[str] = mapped_column(String(2), default="sv")
    # Settings that rules read whole: default SLA per severity (seconds), business hours.
    sla: Mapped[dict[str, Any]] = mapped_column(default=dict)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A KPI figure on fewer answers than this is flagged as a small sample.
    min_answers: Mapped[int] = mapped_column(default=30, server_default="30")


class Workspace(Base):
    """A Slack workspace, Discord guild or the console, attached to an org."""

    __tablename__ = "workspace"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))


class Person(Base):
    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_cx_lead: Mapped[bool] = mapped_column(default=False)
    # The journey file's language and the person's own choice (/cx lang) are kept apart so
    # that reloading the file never overrides what a person chose.
    file_language: Mapped[str | None] = mapped_column(String(2))
    chosen_language: Mapped[str | None] = mapped_column(String(2))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    archived_at: Mapped[datetime | None]

    identities: Mapped[list[Identity]] = relationship(back_populates="person")
    teams: Mapped[list[Team]] = relationship(secondary="team_member", back_populates="members")


class Identity(Base):
    """Who a person is on one platform. Posts for a person fan out over these."""

    __tablename__ = "identity"
    __table_args__ = (
        UniqueConstraint("platform", "external_user_id"),
        UniqueConstraint("person_id", "platform"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    external_user_id: Mapped[str] = mapped_column(String(64))

    person: Mapped[Person] = relationship(back_populates="identities")


class Team(Base):
    __tablename__ = "team"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    key: Mapped[str] = mapped_column(String(64))
    name_sv: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    archived_at: Mapped[datetime | None]

    channels: Mapped[list[TeamChannel]] = relationship(back_populates="team")
    members: Mapped[list[Person]] = relationship(secondary="team_member", back_populates="teams")

    def name(self, language: str) -> str:
        return self.name_sv if language == "sv" else self.name_en


class TeamMember(Base):
    __tablename__ = "team_member"

    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)


class TeamChannel(Base):
    __tablename__ = "team_channel"
    __table_args__ = (UniqueConstraint("team_id", "platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    channel_ref: Mapped[str] = mapped_column(String(64))

    team: Mapped[Team] = relationship(back_populates="channels")


class Stage(Base):
    __tablename__ = "stage"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    name_sv: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    keywords: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    archived_at: Mapped[datetime | None]

    touchpoints: Mapped[list[Touchpoint]] = relationship(back_populates="stage", order_by="Touchpoint.position")
    targets: Mapped[list[KpiTarget]] = relationship(back_populates="stage")
    owner: Mapped[Person | None] = relationship()

    def name(self, language: str) -> str:
        return self.name_sv if language == "sv" else self.name_en


class Touchpoint(Base):
    __tablename__ = "touchpoint"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    name_sv: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(default=list)
    owner_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    backup_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    # Per-severity overrides in seconds: {"critical": {"acknowledge": 900}}.
    sla: Mapped[dict[str, Any]] = mapped_column(default=dict)
    archived_at: Mapped[datetime | None]

    stage: Mapped[Stage] = relationship(back_populates="touchpoints")
    owner_team: Mapped[Team | None] = relationship()
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    backup: Mapped[Person | None] = relationship(foreign_keys=[backup_id])

    def name(self, language: str) -> str:
        return self.name_sv if language == "sv" else self.name_en

    def spellings(self) -> tuple[str, ...]:
        """Every way a person may name it: key, both names, aliases (what the matcher compares)."""
        return (self.key, self.name_sv, self.name_en, *self.aliases)


class KpiTarget(Base):
    __tablename__ = "kpi_target"

    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    target: Mapped[float] = mapped_column(Float)

    stage: Mapped[Stage] = relationship(back_populates="targets")


class KpiQuery(Base):
    """SQL that measures a stage's metric in the warehouse, run weekly by the clock."""

    __tablename__ = "kpi_query"

    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    sql: Mapped[str] = mapped_column(Text)


class Attachment(Base):
    """A file a post carries (the digest's trend chart): kept in the database so that the clock
    that draws it and the bot process that uploads it need not share a disk."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class InboundEvent(Base):
    """A platform event already handled: Slack redelivers events it did not see acknowledged in
    time, and the unique (platform, event id) makes the second delivery a no-op. Written in the
    same transaction as the event's effect, so a crash mid-way leaves the event to be redone."""

    __tablename__ = "inbound_event"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(index=True)


class Outbox(Base):
    """Every outgoing post is a row first; adapters drain the rows of their platform."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_drain", "platform", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    platform: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(16))  # "channel" | "user"
    target_ref: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_ref: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # What the post is about (e.g. "issue:42:routed"), so it can be found and edited later,
    # and the language it was written in, so an edit speaks the same language.
    topic: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str | None] = mapped_column(String(2))
    # An edit of an earlier post: sent once that post has a platform reference to edit.
    # Indexed: deleting a post looks up its edits (the cascade), and so does every claim.
    update_of_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    # An earlier attempt may have reached the platform (its sender died, or timed out waiting for
    # the answer): before posting again, the sender looks for that post.
    delivery_unknown: Mapped[bool] = mapped_column(default=False, server_default=false())


class Issue(Base):
    """A problem at a touchpoint, routed to its owner. Who reported it lives in IssueFollower."""

    __tablename__ = "issue"
    __table_args__ = (
        Index("ix_issue_touchpoint_status", "touchpoint_id", "status"),
        Index("ix_issue_status_ack_due", "status", "ack_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoint.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    description: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    customer_impact: Mapped[str | None] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    assignee_team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    affected_count: Mapped[int] = mapped_column(default=1)
    reported_at: Mapped[datetime]
    source_platform: Mapped[str] = mapped_column(String(16))
    ack_due_at: Mapped[datetime]
    resolve_due_at: Mapped[datetime]
    # First acknowledgement and first resolution: a reopen does not restart them (time-to KPIs).
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    last_resolved_at: Mapped[datetime | None]
    root_cause: Mapped[str | None] = mapped_column(String(32))
    action_taken: Mapped[str | None] = mapped_column(Text)
    reminded_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(default=0)
    resolve_breach_noted_at: Mapped[datetime | None]
    # Each reopen starts a new round of SLA steps; their outbox keys carry the round.
    reopen_count: Mapped[int] = mapped_column(default=0, server_default="0")
    version: Mapped[int] = mapped_column(default=1)

    touchpoint: Mapped[Touchpoint] = relationship()
    stage: Mapped[Stage] = relationship()
    assignee: Mapped[Person | None] = relationship()
    assignee_team: Mapped[Team | None] = relationship()
    events: Mapped[list[IssueEvent]] = relationship(back_populates="issue", order_by="IssueEvent.id")


class IssueEvent(Base):
    """The audit trail: every change with who and when. ``actor_id`` is null for the system and
    for an anonymous reporter."""

    __tablename__ = "issue_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    issue: Mapped[Issue] = relationship(back_populates="events")
    actor: Mapped[Person | None] = relationship()


class IssueFollower(Base):
    """People told of an issue's outcome: its reporter and everyone who added a +1.

    Kept apart from the issue so that an anonymous reporter is never shown with it: only the
    notification code reads this table, and never for display.
    """

    __tablename__ = "issue_follower"
    __table_args__ = (UniqueConstraint("issue_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "reporter" | "affected"
    anonymous: Mapped[bool] = mapped_column(default=False)
    joined_at: Mapped[datetime]


class ReportDraft(Base):
    """A report waiting for the reporter to pick a touchpoint or answer "+1 to #N?"."""

    __tablename__ = "report_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PendingConfirmation(Base):
    """A destructive command shown as a preview, waiting for its *Confirm* button: what it will
    do, for which admin, until when. A row, not a signed button value: a button must work once
    (and not after *Cancel*), which only stored state can promise. Deleted when answered."""

    __tablename__ = "pending_confirmation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))  # "erase", "delete-observation"
    subject_id: Mapped[int]  # the person to erase, the observation to delete
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Subscription(Base):
    """A channel that receives the weekly tip or digest."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("platform", "channel_ref", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    platform: Mapped[str] = mapped_column(String(16))
    channel_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "tips" | "digest"
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class TipPost(Base):
    """The tip a channel got in a week. A channel's rotation (its cycle of ten, what is used)
    is read from these rows, and the unique week makes the weekly post happen once."""

    __tablename__ = "tip_post"
    __table_args__ = (UniqueConstraint("platform", "channel_ref", "iso_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    channel_ref: Mapped[str] = mapped_column(String(64))
    iso_week: Mapped[str] = mapped_column(String(8))
    cycle: Mapped[int]
    number: Mapped[int]
    signal: Mapped[str | None] = mapped_column(String(32))
    outbox_key: Mapped[str] = mapped_column(String(255))
    posted_at: Mapped[datetime]


class TipEngagement(Base):
    """A reaction to, or a reply under, a tip post (the adapters report them)."""

    __tablename__ = "tip_engagement"
    __table_args__ = (UniqueConstraint("tip_post_id", "kind", "external_user_id", "detail"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_post_id: Mapped[int] = mapped_column(ForeignKey("tip_post.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "reaction" | "reply"
    external_user_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(64))  # the emoji, or the reply's message reference
    at: Mapped[datetime]


class Observation(Base):
    """Something an employee saw of the customer experience, classified to the journey."""

    __tablename__ = "observation"
    __table_args__ = (UniqueConstraint("source_platform", "source_message_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    text: Mapped[str] = mapped_column(Text)
    # Null when anonymous, or after the author's data was erased.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    anonymous: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(16))  # "command" | "message"
    source_platform: Mapped[str] = mapped_column(String(16))
    source_channel: Mapped[str | None] = mapped_column(String(64))
    # A captured chat message: its reference (unique per platform) and a link to it.
    source_message_ref: Mapped[str | None] = mapped_column(String(128))
    source_link: Mapped[str | None] = mapped_column(String(500))
    captured_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stage.id", ondelete="SET NULL"))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id", ondelete="SET NULL"))
    sentiment: Mapped[str | None] = mapped_column(String(16))
    themes: Mapped[list[str]] = mapped_column(default=list)
    classifier: Mapped[str | None] = mapped_column(String(32))  # null: not classified yet
    classifier_note: Mapped[str | None] = mapped_column(String(500))
    classified_at: Mapped[datetime | None]
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    corrected_at: Mapped[datetime | None]
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issue.id", ondelete="SET NULL"))

    stage: Mapped[Stage | None] = relationship()
    touchpoint: Mapped[Touchpoint | None] = relationship()
    author: Mapped[Person | None] = relationship(foreign_keys=[author_id])


class ObservationSeer(Base):
    """Everyone who captured the same chat message: one observation, seen by each of them."""

    __tablename__ = "observation_seer"
    __table_args__ = (UniqueConstraint("observation_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observation.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    seen_at: Mapped[datetime]


class Customer(Base):
    """A customer who answered a survey: personal data, shown only to a follow-up's owners.

    Erasing a customer deletes this row; their answers stay as anonymous figures.
    """

    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("org_id", "source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    # Which tool knows them ("typeform", "delighted", "surveymonkey", "zendesk", "cxbot").
    source: Mapped[str] = mapped_column(String(32))
    # The tool's id for the person, else their email: how a second answer finds the same customer.
    external_id: Mapped[str] = mapped_column(String(320))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class SurveyResponse(Base):
    """One raw survey answer (NPS 0–10, CSAT 1–5, CES 1–7) at a stage, and maybe a touchpoint.

    From a file import (no comment, no customer) or live from a survey tool's webhook.
    """

    __tablename__ = "survey_response"
    # Covers the weekly counts (week, stage, metric, score; touchpoint for the detail), so the
    # digest reads the index alone, never the table.
    __table_args__ = (
        Index("ix_survey_response_counts", "org_id", "iso_week", "stage_id", "metric", "score", "touchpoint_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    metric: Mapped[str] = mapped_column(String(8))
    score: Mapped[int]
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id"))
    answered_at: Mapped[datetime]
    # The ISO week in the org's time zone, fixed at import so weekly figures need no time maths.
    iso_week: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(200))
    # The file's id column, or a hash of the row: importing the same file twice adds nothing.
    # A webhook's answer: "<source>:<the tool's response id>", so a redelivery adds nothing.
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    # What the customer wrote, if anything (live sources; a later update may bring it).
    comment: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), index=True)
    # How the touchpoint was found: "mapping" (the journey file's surveys:), "classifier" (from
    # the comment), or None (a file import, or no touchpoint).
    placed_by: Mapped[str | None] = mapped_column(String(16))
    # When a live answer was last changed by its tool (Delighted's survey_response.updated).
    updated_at: Mapped[datetime | None]


class KpiValue(Base):
    """A figure that arrives aggregated (churn, FCR, AHT…) for a stage and an ISO week."""

    __tablename__ = "kpi_value"
    __table_args__ = (UniqueConstraint("org_id", "metric", "stage_id", "iso_week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("org.id"))
    metric: Mapped[str] = mapped_column(String(8))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    iso_week: Mapped[str] = mapped_column(String(8))
    value: Mapped[float] = mapped_column(Float)
    n: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime]
