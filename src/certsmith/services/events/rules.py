"""Event rules and their targets, as EventBridge has them: a rule's pattern picks events, its targets receive them.

Rules belong to an account and region (the default event bus of EventBridge). A target is a webhook, Slack, email
or command (``notify.targets`` checks its settings); a webhook's signing secret and a Slack URL are sealed in
``event_targets.secret`` under the target's row id and never shown again. The dispatcher reads the enabled rules
through :meth:`EventRules.enabled_rules`, which compiles each pattern once per change of its rule.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...domain.clock import Clock
from ...domain.errors import ConcurrentModificationError, LimitExceededError, ResourceNotFoundError, ValidationError
from ...domain.event_patterns import EventPattern, PatternError, compile_pattern
from ...notify.targets import COMMANDS_OFF, NO_MAILER, check_target
from ...store.database import Database
from ...store.tables import EventDeliveryRow, EventRuleRow, EventTargetRow
from ..context import Caller
from ..ports import SecretSealer
from .dispatch import RuleTargets
from .rule_inputs import after_token, check_name, check_pattern, page_limit, page_token, rule_arn

__all__ = ["DISABLED", "ENABLED", "MAX_RULES", "MAX_TARGETS", "EventRules", "RuleRecord", "TargetFailure",
           "TargetRecord", "TargetSpec"]

log = logging.getLogger("certsmith.events")

ENABLED, DISABLED = "ENABLED", "DISABLED"
MAX_RULES = 1000  # rules of an account in a region (EventBridge's adjustable quota is 300 per bus)
MAX_TARGETS = 5  # targets of a rule, EventBridge's quota
_CACHE_SIZE = 10_000  # compiled patterns kept, by (rule id, updated_at)


class _Sealed(Protocol):
    """A target as the delivery engine holds it: its row id and its sealed secret."""

    @property
    def id(self) -> str: ...

    @property
    def sealed(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class RuleRecord:
    name: str
    arn: str
    event_pattern: str  # as the user gave it
    state: str
    description: str | None
    account_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as PutTargets gives it: ``kind`` and ``config`` as ``notify.targets.check_target`` takes them."""

    target_id: str
    kind: str
    config: Mapping[str, Any]
    secret: str | None = None
    where: str = "Targets[0]"  # how errors name it


@dataclass(frozen=True, slots=True)
class TargetRecord:
    target_id: str
    kind: str
    config: dict[str, Any]  # what is not secret
    secret_set: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TargetFailure:
    target_id: str
    code: str
    message: str


class EventRules:
    """PutRule, PutTargets and the rest of EventBridge's rule operations, for the caller's account and region."""

    def __init__(self, database: Database, sealer: SecretSealer, clock: Clock, *, allow_commands: bool,
                 mail: bool) -> None:
        self._db, self._sealer, self._clock = database, sealer, clock
        self.allow_commands, self.mail = allow_commands, mail
        self._patterns: OrderedDict[tuple[str, datetime], EventPattern] = OrderedDict()
        self._lock = threading.Lock()

    # -- rules ---------------------------------------------------------------------------------------------------
    def put_rule(self, caller: Caller, name: str, event_pattern: str | None, *, state: str | None = None,
                 description: str | None = None, schedule: str | None = None) -> RuleRecord:
        """Create the rule, or replace it (what is left out is reset, as PutRule does); its targets stay."""
        check_name(name)
        if schedule is not None:
            raise ValidationError("ScheduleExpression: certsmith rules match events and have no schedules; give "
                                  "EventPattern", field="ScheduleExpression")
        if not event_pattern:
            raise ValidationError("EventPattern: is required (certsmith rules match events; there are no schedules)",
                                  field="EventPattern")
        check_pattern(event_pattern)
        state = state or ENABLED
        if state not in (ENABLED, DISABLED):
            raise ValidationError(f"State: must be {ENABLED} or {DISABLED}, not {state[:40]!r}", field="State")
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                row = self._find(session, caller, name, lock=True)
                if row is None:
                    count = session.scalar(select(func.count()).select_from(EventRuleRow).where(
                        EventRuleRow.account_id == caller.account_id, EventRuleRow.region == caller.region)) or 0
                    if count >= MAX_RULES:
                        raise LimitExceededError(f"The requested resource exceeds the maximum number allowed: an "
                                                 f"account has at most {MAX_RULES} rules in a region", field="Name")
                    row = EventRuleRow(id=str(uuid.uuid4()), account_id=caller.account_id, region=caller.region,
                                       name=name, created_at=now)
                    session.add(row)
                row.event_pattern, row.state, row.description, row.updated_at = event_pattern, state, description, now
                session.flush()
                return self._record(row)
        except IntegrityError:
            raise ConcurrentModificationError(f"rule {name} was created by another request at the same time; "
                                              "try again", field="Name") from None

    def describe_rule(self, caller: Caller, name: str) -> RuleRecord:
        with self._db.read() as session:
            return self._record(self._load(session, caller, name))

    def list_rules(self, caller: Caller, prefix: str | None = None, limit: int | None = None,
                   token: str | None = None) -> tuple[list[RuleRecord], str | None]:
        """A page of the rules, by name; the next page's token when there is more."""
        size, after = page_limit(limit), after_token(token)
        query = select(EventRuleRow).where(EventRuleRow.account_id == caller.account_id,
                                           EventRuleRow.region == caller.region)
        if prefix:
            query = query.where(EventRuleRow.name.startswith(prefix, autoescape=True))
        if after is not None:
            query = query.where(EventRuleRow.name > after)
        with self._db.read() as session:
            rows = list(session.scalars(query.order_by(EventRuleRow.name).limit(size + 1)))
        more = page_token(rows[size - 1].name) if len(rows) > size else None
        return [self._record(r) for r in rows[:size]], more

    def set_state(self, caller: Caller, name: str, state: str) -> None:
        """EnableRule / DisableRule."""
        with self._db.transaction() as session:
            row = self._load(session, caller, name, lock=True)
            if row.state != state:
                row.state, row.updated_at = state, self._clock.now()

    def delete_rule(self, caller: Caller, name: str, force: bool = False) -> None:
        """Delete the rule; with targets left, only with ``force`` (which removes them). No such rule: done."""
        with self._db.transaction() as session:
            row = self._find(session, caller, name, lock=True)
            if row is None:
                return
            targets = list(session.scalars(select(EventTargetRow.id).where(EventTargetRow.rule_id == row.id)))
            if targets and not force:
                raise ValidationError("Rule can't be deleted since it has targets. (RemoveTargets first, or Force)",
                                      field="Name")
            self._drop_targets(session, targets)
            session.delete(row)

    # -- targets -------------------------------------------------------------------------------------------------
    def put_targets(self, caller: Caller, rule: str, specs: Sequence[TargetSpec]) -> list[TargetFailure]:
        """Add or replace targets by Id; every target is checked before any is stored."""
        checked = [self._check_target(spec) for spec in specs]
        seen: set[str] = set()
        for spec in specs:
            if spec.target_id in seen:
                raise ValidationError(f"{spec.where}.Id: {spec.target_id!r} is given twice", field=f"{spec.where}.Id")
            seen.add(spec.target_id)
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                row = self._load(session, caller, rule, "Rule", lock=True)
                existing = {t.target_id: t for t in session.scalars(
                    select(EventTargetRow).where(EventTargetRow.rule_id == row.id))}
                total = len(existing.keys() | seen)
                if total > MAX_TARGETS:
                    raise LimitExceededError(f"The requested resource exceeds the maximum number allowed: rule {rule} "
                                             f"would have {total} targets; a rule has at most {MAX_TARGETS}",
                                             field="Targets")
                for spec, (config, secret) in zip(specs, checked, strict=True):
                    target = existing.get(spec.target_id)
                    if target is None:
                        target = EventTargetRow(id=str(uuid.uuid4()), rule_id=row.id, target_id=spec.target_id,
                                                created_at=now, lease_owner=None, lease_until=None)
                        session.add(target)
                    target.kind, target.config, target.updated_at = spec.kind, config, now
                    target.secret = self._sealer.seal(secret.encode(), target.id) if secret is not None else None
                session.flush()
        except IntegrityError:
            raise ConcurrentModificationError(f"the targets of rule {rule} were changed by another request at the "
                                              "same time; try again", field="Targets") from None
        return []

    def list_targets(self, caller: Caller, rule: str, limit: int | None = None,
                     token: str | None = None) -> tuple[list[TargetRecord], str | None]:
        size, after = page_limit(limit), after_token(token)
        with self._db.read() as session:
            row = self._load(session, caller, rule, "Rule")
            query = select(EventTargetRow).where(EventTargetRow.rule_id == row.id)
            if after is not None:
                query = query.where(EventTargetRow.target_id > after)
            rows = list(session.scalars(query.order_by(EventTargetRow.target_id).limit(size + 1)))
        more = page_token(rows[size - 1].target_id) if len(rows) > size else None
        return [TargetRecord(t.target_id, t.kind, dict(t.config or {}), t.secret is not None, t.created_at,
                             t.updated_at) for t in rows[:size]], more

    def remove_targets(self, caller: Caller, rule: str, ids: Sequence[str]) -> list[TargetFailure]:
        """Remove targets by Id (an Id the rule does not have is no failure), and their undelivered events."""
        with self._db.transaction() as session:
            row = self._load(session, caller, rule, "Rule", lock=True)
            found = list(session.scalars(select(EventTargetRow.id).where(
                EventTargetRow.rule_id == row.id, EventTargetRow.target_id.in_(list(ids)))))
            self._drop_targets(session, found)
        return []

    def open_secret(self, target: _Sealed) -> str | None:
        """A target's secret (webhook signing secret, Slack URL), for sending only."""
        return None if target.sealed is None else self._sealer.open(target.sealed, target.id).decode()

    # -- what the dispatcher reads -------------------------------------------------------------------------------
    def enabled_rules(self, session: Session, account_id: str, region: str) -> list[RuleTargets]:
        """The enabled rules of an account and region, by name, with their compiled patterns (compiled once per
        change of a rule) and their targets (``event_targets.id``, by target Id)."""
        rules = session.execute(select(EventRuleRow.id, EventRuleRow.name, EventRuleRow.event_pattern,
                                       EventRuleRow.updated_at).where(
            EventRuleRow.account_id == account_id, EventRuleRow.region == region, EventRuleRow.state == ENABLED)
            .order_by(EventRuleRow.name)).all()
        if not rules:
            return []
        targets: dict[str, list[str]] = {}
        query = (select(EventTargetRow.rule_id, EventTargetRow.id).where(
            EventTargetRow.rule_id.in_([r.id for r in rules])).order_by(EventTargetRow.target_id))
        for rule_id, target in session.execute(query):
            targets.setdefault(rule_id, []).append(target)
        found: list[RuleTargets] = []
        for rule_id, name, text, updated_at in rules:
            pattern = self._pattern(rule_id, updated_at, text, name, account_id)
            if pattern is not None:
                found.append(RuleTargets(rule_id, name, pattern, tuple(targets.get(rule_id, ()))))
        return found

    def _pattern(self, rule_id: str, updated_at: datetime, text: str, name: str, account_id: str) -> EventPattern | None:
        key = (rule_id, updated_at)
        with self._lock:
            pattern = self._patterns.get(key)
            if pattern is not None:
                self._patterns.move_to_end(key)
                return pattern
        try:
            pattern = compile_pattern(text)
        except PatternError as error:
            log.error("event rule %s of account %s: its pattern does not compile (%s); it matches nothing",
                      name, account_id, error)
            return None
        with self._lock:
            self._patterns[key] = pattern
            while len(self._patterns) > _CACHE_SIZE:
                self._patterns.popitem(last=False)
        return pattern

    # -- helpers -------------------------------------------------------------------------------------------------
    def _check_target(self, spec: TargetSpec) -> tuple[dict[str, Any], str | None]:
        check_name(spec.target_id, f"{spec.where}.Id")
        label = spec.kind.capitalize()
        if spec.kind == "command" and not self.allow_commands:
            raise ValidationError(f"{spec.where}.Command: {COMMANDS_OFF}", field=f"{spec.where}.Command")
        if spec.kind == "email" and not self.mail:
            raise ValidationError(f"{spec.where}.Email: {NO_MAILER}", field=f"{spec.where}.Email")
        try:
            return check_target(spec.kind, spec.config, spec.secret)
        except ValueError as error:
            message = str(error).replace("Slack.Secret", "Slack.WebhookUrl")
            for key, name in (("MaxAttempts", "RetryPolicy.MaximumRetryAttempts"),
                              ("MaxAgeSeconds", "RetryPolicy.MaximumEventAgeInSeconds")):
                message = message.replace(f"{label}.{key}", name)
            field = f"{spec.where}.{message.partition(':')[0]}"
            raise ValidationError(f"{spec.where}.{message}", field=field) from None

    @staticmethod
    def _drop_targets(session: Session, ids: Sequence[str]) -> None:
        """Remove targets; their deliveries not yet made can never be (DELIVERED ones stay as history)."""
        if not ids:
            return
        session.execute(delete(EventDeliveryRow).where(EventDeliveryRow.target_id.in_(list(ids)),
                                                       EventDeliveryRow.state != "DELIVERED"))
        session.execute(delete(EventTargetRow).where(EventTargetRow.id.in_(list(ids))))

    @staticmethod
    def _find(session: Session, caller: Caller, name: str, *, lock: bool = False) -> EventRuleRow | None:
        query = select(EventRuleRow).where(EventRuleRow.account_id == caller.account_id,
                                           EventRuleRow.region == caller.region, EventRuleRow.name == name)
        return session.scalars(query.with_for_update() if lock else query).first()

    def _load(self, session: Session, caller: Caller, name: str, field: str = "Name", *,
              lock: bool = False) -> EventRuleRow:
        check_name(name, field)
        row = self._find(session, caller, name, lock=lock)
        if row is None:
            raise ResourceNotFoundError(f"Rule {name} does not exist (certsmith events rule list shows the rules)",
                                        field=field)
        return row

    @staticmethod
    def _record(row: EventRuleRow) -> RuleRecord:
        return RuleRecord(row.name, rule_arn(row.region, row.account_id, row.name), row.event_pattern, row.state,
                          row.description, row.account_id, row.created_at, row.updated_at)

