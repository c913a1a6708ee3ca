"""The weekly CX tip: which tip a channel gets, why, posting it once, and who engaged with it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain.tips import TIP_COUNT, Choice, Order, Signal, Tip, choose_tip
from bot.domain.weeks import iso_week
from bot.i18n import Catalogue
from bot.messages import Message, MessageField
from bot.outbox import Target, enqueue
from bot.services.kpi import falling_stages
from bot.store.db import insert_for
from bot.store.models import (
    Issue,
    IssueEvent,
    Observation,
    Org,
    Outbox,
    Subscription,
    TipEngagement,
    TipPost,
    Touchpoint,
)

log = logging.getLogger(__name__)

SUBSCRIPTION_KINDS = ("tips", "digest")


def default_tips() -> Mapping[str, Mapping[int, Tip]]:
    from bot.content import default_content

    return default_content().tips


@dataclass
class TipService:
    session: Session
    org: Org
    catalogue: Catalogue
    tips: Mapping[str, Mapping[int, Tip]]
    now: datetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.org.time_zone)

    def week(self) -> str:
        return iso_week(self.now, self.zone)

    # --- why this tip ------------------------------------------------------------------

    def signals(self) -> list[Signal]:
        """The last seven days' weak spots, most pressing first."""
        since = self.now - timedelta(days=7)
        found: list[Signal] = []
        unowned = self.session.scalar(
            select(func.count())
            .select_from(Touchpoint)
            .where(
                Touchpoint.org_id == self.org.id,
                Touchpoint.archived_at.is_(None),
                Touchpoint.owner_team_id.is_(None),
                Touchpoint.owner_id.is_(None),
            )
        )
        if unowned:
            found.append(Signal.UNOWNED_TOUCHPOINTS)
        missed = self.session.scalar(
            select(func.count())
            .select_from(Issue)
            .where(
                Issue.org_id == self.org.id,
                Issue.ack_due_at.between(since, self.now),
                Issue.acknowledged_at.is_(None) | (Issue.acknowledged_at > Issue.ack_due_at),
            )
        )
        if missed:
            found.append(Signal.MISSED_ACKNOWLEDGEMENTS)
        if falling_stages(self.session, self.org, self.now):
            found.append(Signal.FALLING_KPI)
        reported = self.session.scalar(
            select(func.count()).select_from(Issue).where(Issue.org_id == self.org.id, Issue.reported_at >= since)
        )
        observed = self.session.scalar(
            select(func.count())
            .select_from(Observation)
            .where(Observation.org_id == self.org.id, Observation.created_at >= since)
        )
        if not reported and not observed:
            found.append(Signal.NOBODY_SPEAKING_UP)
        if self._events_since("reopened", since):
            found.append(Signal.REOPENED_ISSUES)
        if self._events_since("resolved", since):
            found.append(Signal.RESOLVED_ISSUES)
        return found

    def _events_since(self, kind: str, since: datetime) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(IssueEvent)
                .join(Issue)
                .where(Issue.org_id == self.org.id, IssueEvent.kind == kind, IssueEvent.at >= since)
            )
            or 0
        )

    def effective_order(self, setting: str) -> Order:
        """``auto``: adaptive once there is data to adapt to (any issue), else 1 → 10."""
        if setting != "auto":
            return Order(setting)
        any_issue = self.session.scalar(select(Issue.id).where(Issue.org_id == self.org.id).limit(1))
        return Order.ADAPTIVE if any_issue is not None else Order.ROTATION

    # --- a channel's rotation ----------------------------------------------------------

    def cycle_state(self, platform: str, channel: str) -> tuple[int, list[int]]:
        """The channel's current cycle and the tips used in it, from its posts."""
        cycle = self.session.scalar(
            select(func.max(TipPost.cycle)).where(TipPost.platform == platform, TipPost.channel_ref == channel)
        )
        if cycle is None:
            return 1, []
        used = self.session.scalars(
            select(TipPost.number).where(
                TipPost.platform == platform, TipPost.channel_ref == channel, TipPost.cycle == cycle
            )
        ).all()
        return cycle, list(used)

    def next_choice(self, platform: str, channel: str, order_setting: str) -> tuple[int, Choice]:
        cycle, used = self.cycle_state(platform, channel)
        choice = choose_tip(used, self.signals(), self.effective_order(order_setting))
        return (cycle + 1 if choice.new_cycle else cycle), choice

    def posted_this_week(self, platform: str, channel: str) -> TipPost | None:
        return self.session.scalar(
            select(TipPost).where(
                TipPost.platform == platform, TipPost.channel_ref == channel, TipPost.iso_week == self.week()
            )
        )

    def post_weekly(self, subscription: Subscription, order_setting: str) -> TipPost | None:
        """This week's tip for one channel, once: None when it was already posted."""
        platform, channel, week = subscription.platform, subscription.channel_ref, self.week()
        cycle, choice = self.next_choice(platform, channel, order_setting)
        key = f"tip:{platform}:{channel}:{week}"
        # The unique (channel, week) decides between two clocks: the second insert does nothing.
        inserted = self.session.execute(
            insert_for(self.session, TipPost)
            .values(
                platform=platform,
                channel_ref=channel,
                iso_week=week,
                cycle=cycle,
                number=choice.number,
                signal=choice.signal.value if choice.signal else None,
                outbox_key=key,
                posted_at=self.now,
            )
            .on_conflict_do_nothing(index_elements=["platform", "channel_ref", "iso_week"])
            .returning(TipPost.id)
        ).scalar()
        if inserted is None:
            return None
        message = self.message(self.org.language, choice.number, choice.signal, weekly=True)
        enqueue(self.session, Target(platform, "channel", channel), message, key, self.now, topic=f"tip:{week}")
        log.info(
            "tip %s posted to %s %s for %s (%s)", choice.number, platform, channel, week, choice.signal or "rotation"
        )
        return self.session.get(TipPost, inserted)

    # --- what it says --------------------------------------------------------------------

    def message(self, language: str, number: int, signal: Signal | None, *, weekly: bool = False) -> Message:
        tip = self.tips[language][number]

        def t(key: str, **values: object) -> str:
            return self.catalogue.text(language, key, **values)

        context = []
        if weekly:
            context.append(t(f"tips.why.{signal.value}") if signal else t("tips.why.rotation", number=number))
        context.append(t("tips.footer", count=TIP_COUNT))
        return Message(
            header=t("tips.header", number=number, count=TIP_COUNT, title=tip.title),
            text=tip.body,
            fields=[
                MessageField(label=t("tips.discuss"), value=tip.question),
                MessageField(label=t("tips.try"), value=tip.action),
            ],
            context=context,
        )

    # --- engagement ----------------------------------------------------------------------

    def record_engagement(self, platform: str, message_ref: str, kind: str, user: str, detail: str) -> bool:
        """A reaction to or reply under a post; True when it was a tip post and newly counted."""
        key = self.session.scalar(
            select(Outbox.idempotency_key).where(Outbox.platform == platform, Outbox.platform_ref == message_ref)
        )
        post = self.session.scalar(select(TipPost).where(TipPost.outbox_key == key)) if key else None
        if post is None:
            return False
        exists = self.session.scalar(
            select(TipEngagement.id).where(
                TipEngagement.tip_post_id == post.id,
                TipEngagement.kind == kind,
                TipEngagement.external_user_id == user,
                TipEngagement.detail == detail,
            )
        )
        if exists is not None:
            return False
        self.session.add(
            TipEngagement(tip_post_id=post.id, kind=kind, external_user_id=user, detail=detail[:64], at=self.now)
        )
        return True

    def engagement(self, week: str) -> dict[str, int]:
        """Reactions and replies to the week's tip posts, for the digest."""
        rows = self.session.execute(
            select(TipEngagement.kind, func.count())
            .join(TipPost)
            .where(TipPost.iso_week == week)
            .group_by(TipEngagement.kind)
        ).all()
        counts = {"reaction": 0, "reply": 0}
        counts.update({kind: n for kind, n in rows})
        return counts


def subscriptions(session: Session, org: Org, kind: str) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.org_id == org.id, Subscription.kind == kind)
            .order_by(Subscription.id)
        )
    )


def subscribe(
    session: Session, org: Org, platform: str, channel: str, kinds: tuple[str, ...], person_id: int, now: datetime
) -> list[str]:
    """Subscribe the channel; returns the kinds that were new."""
    added = []
    for kind in kinds:
        exists = session.scalar(
            select(Subscription.id).where(
                Subscription.platform == platform, Subscription.channel_ref == channel, Subscription.kind == kind
            )
        )
        if exists is None:
            session.add(
                Subscription(
                    org_id=org.id,
                    platform=platform,
                    channel_ref=channel,
                    kind=kind,
                    created_by_id=person_id,
                    created_at=now,
                )
            )
            added.append(kind)
    return added


def unsubscribe(session: Session, platform: str, channel: str, kinds: tuple[str, ...]) -> list[str]:
    removed = []
    for kind in kinds:
        row = session.scalar(
            select(Subscription).where(
                Subscription.platform == platform, Subscription.channel_ref == channel, Subscription.kind == kind
            )
        )
        if row is not None:
            session.delete(row)
            removed.append(kind)
    return removed
