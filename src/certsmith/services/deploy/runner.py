"""The deployment job: install a version on each server-side binding, activate once per server, verify, roll back.

A run takes the items still to do (PENDING), installs each in a thread pool, runs each shared activation once (a
failed one: every install of its group is undone and the activation runs again, so the server keeps the old
version), then handshakes with the endpoints the bindings name. A target that is unreachable is tried again later
(the job waits, the deployment stays IN_PROGRESS); any other failure is final.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from ...deploy.targets.base import DeployError, DeployTarget, Installed, Material, group_activations
from ...deploy.targets.registry import plugin
from ...domain.clock import Clock
from ...domain.errors import CertsmithError
from ...store.database import Database
from ...store.tables import CertificateRow, DeployBindingRow, DeploymentItemRow, DeploymentRow
from ...worker.loop import RunLater
from ..events.outbox import EventOutbox
from .bindings import BindingService
from .deployments import DeploymentService
from .naming import commands_refused, target_text
from .results import Outcome, apply_outcome, settle
from .verify import Endpoint, verify_all

__all__ = ["DeploymentRunner", "RunnerPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunnerPolicy:
    parallel: int = 16
    verify_attempts: int = 5
    verify_delay_seconds: float = 2.0
    attempts: int = 5  # runs of an item whose target is unreachable before it fails
    retry_seconds: float = 30.0  # the first wait before running such an item again (doubles, up to an hour)
    allow_commands: bool = False  # the deploy_commands setting: targets may run programs (reload commands, nginx)


@dataclass(slots=True)
class _Work:
    """One binding's part in this run (never persisted: it holds the opened secrets)."""

    item_id: int
    binding_id: str
    kind: str
    raw: dict[str, Any]
    state: dict[str, Any]
    verify: dict[str, Any] | None
    rollback: bool
    attempts: int
    describe: str
    target: DeployTarget | None = None
    installed: Installed | None = None
    outcome: Outcome | None = None


class DeploymentRunner:
    def __init__(self, database: Database, clock: Clock, deployments: DeploymentService, bindings: BindingService,
                 outbox: EventOutbox, policy: RunnerPolicy) -> None:
        self._db, self._clock, self._deployments, self._bindings = database, clock, deployments, bindings
        self._outbox, self._policy = outbox, policy

    # -- the job --------------------------------------------------------------------------------------------------
    def run(self, payload: dict[str, Any]) -> None:
        started = self._start(str(payload["deployment_id"]))
        if started is None:
            return
        material, works = started
        self._deploy(material, works)
        delay = self._finish(str(payload["deployment_id"]), works)
        if delay is not None:
            raise RunLater(delay, f"deployment {payload['deployment_id']}: a target is unreachable, tried again later")

    def give_up(self, payload: dict[str, Any], error: str) -> None:
        """The job failed for good: every item not done fails with its error."""
        now = self._clock.now()
        with self._db.transaction() as session:
            deployment = session.get(DeploymentRow, str(payload.get("deployment_id")))
            if deployment is None:
                return
            certificate = session.scalar(select(CertificateRow).where(CertificateRow.arn == deployment.certificate_arn))
            for item in session.scalars(select(DeploymentItemRow).where(
                    DeploymentItemRow.deployment_id == deployment.id,
                    DeploymentItemRow.status.in_(("PENDING", "IN_PROGRESS")))):
                binding = session.get(DeployBindingRow, item.binding_id)
                apply_outcome(session, self._outbox, deployment, item, binding, certificate,
                              Outcome("FAILED", f"the deployment could not run: {error[:500]}"),
                              target_text(binding) if binding is not None else "", now)
            settle(session, deployment, now)

    def _start(self, deployment_id: str) -> tuple[Material, list[_Work]] | None:
        now = self._clock.now()
        with self._db.transaction() as session:
            deployment = session.get(DeploymentRow, deployment_id)
            if deployment is None or deployment.status in ("SUCCEEDED", "FAILED"):
                return None
            items = list(session.scalars(select(DeploymentItemRow).where(
                DeploymentItemRow.deployment_id == deployment_id,
                DeploymentItemRow.status.in_(("PENDING", "IN_PROGRESS"))).order_by(DeploymentItemRow.id)))
            bindings = {b.id: b for b in session.scalars(select(DeployBindingRow).where(
                DeployBindingRow.id.in_([i.binding_id for i in items])))} if items else {}
            certificate = session.scalar(select(CertificateRow).where(CertificateRow.arn == deployment.certificate_arn))
            material: Material | None = None
            problem = "the certificate was deleted" if certificate is None else None
            if certificate is not None and items:
                try:
                    material = self._deployments.material(session, certificate, deployment.version)
                except CertsmithError as error:
                    problem = str(error)
            works: list[_Work] = []
            for item in items:
                binding = bindings.get(item.binding_id)
                if binding is None or problem is not None:
                    apply_outcome(session, self._outbox, deployment, item, binding, certificate,
                                  Outcome("FAILED", problem or "the binding was deleted"),
                                  target_text(binding) if binding is not None else "", now)
                    continue
                item.status, item.attempts = "IN_PROGRESS", item.attempts + 1
                item.started_at, item.updated_at = item.started_at or now, now
                works.append(_Work(item.id, binding.id, binding.kind, self._bindings.options_of(binding),
                                   dict(binding.target_state or {}), binding.verify, binding.rollback, item.attempts,
                                   target_text(binding)))
            settle(session, deployment, now)
        if material is None or not works:
            return None
        return material, works

    # -- install, activate, verify (no transaction open) ----------------------------------------------------------
    def _pool(self, function: Callable[[T], None], values: Sequence[T]) -> None:
        if len(values) <= 1:
            for value in values:
                function(value)
            return
        with ThreadPoolExecutor(max_workers=max(1, min(self._policy.parallel, len(values)))) as pool:
            list(pool.map(function, values))

    def _failure(self, work: _Work, error: DeployError | str, reason: str = "", note: str = "") -> Outcome:
        text = (error.message if isinstance(error, DeployError) else error) + note
        reason = error.reason if isinstance(error, DeployError) else reason
        if reason == "unreachable" and work.attempts < self._policy.attempts:
            return Outcome("PENDING", f"{text} (attempt {work.attempts} of {self._policy.attempts}; tried again later)")
        return Outcome("FAILED", text)

    def _install(self, material: Material, work: _Work) -> None:
        try:
            found = plugin(work.kind)
            options = found.parse(work.raw)
            refused = commands_refused(found, options, self._policy.allow_commands)
            if refused is not None:
                work.outcome = Outcome("FAILED", f"{work.describe}: {refused[0]}")
                return
            work.target = found.factory(options, dict(work.state))
            work.describe = work.target.describe()
            work.installed = work.target.install(material)
        except DeployError as error:
            work.outcome = self._failure(work, error)
        except CertsmithError as error:
            work.outcome = Outcome("FAILED", f"{work.describe}: the binding's options are not valid: {error}")
        except Exception as error:
            log.exception("deployment to %s failed unexpectedly", work.describe)
            work.outcome = Outcome("FAILED", f"{work.describe}: unexpected failure ({type(error).__name__})")

    @staticmethod
    def _undo(work: _Work) -> None:
        if work.installed is None:
            return
        try:
            work.installed.undo()
        except Exception:
            log.exception("undoing the deployment to %s failed", work.describe)

    def _activate(self, works: list[_Work]) -> None:
        """Each shared activation once; a failed one undoes its group's installs and runs again."""
        groups = list(group_activations([w.target for w in works if w.target is not None]).values())

        def activate(group: tuple[Any, list[int]]) -> None:
            activation, indexes = group
            try:
                activation.run()
            except Exception as error:  # noqa: BLE001 - DeployError, or a target's bug: the old version goes back
                for index in indexes:
                    self._undo(works[index])
                try:
                    activation.run()
                except Exception:  # noqa: BLE001 - said in the items' error
                    log.warning("activation %s failed again after the undo", activation.description or activation.key)
                    again = "; activating the previous version failed too"
                else:
                    again = "; the previous version was put back"
                if not isinstance(error, DeployError):
                    log.error("activation %s failed unexpectedly: %s", activation.key, type(error).__name__)
                for index in indexes:
                    works[index].installed = None
                    works[index].outcome = self._failure(works[index], error if isinstance(error, DeployError)
                                                         else f"{works[index].describe}: activation failed", note=again)

        self._pool(activate, groups)

    def _deploy(self, material: Material, works: list[_Work]) -> None:
        self._pool(lambda work: self._install(material, work), works)
        installed = [w for w in works if w.installed is not None and w.outcome is None]
        self._activate(installed)
        live = [w for w in installed if w.outcome is None]
        checked = [w for w in live if w.verify]
        verdicts = verify_all([(Endpoint.of(w.verify or {}), material.serial) for w in checked],
                              self._policy.verify_attempts, self._policy.verify_delay_seconds, self._policy.parallel)
        back: list[_Work] = []
        for work, verdict in zip(checked, verdicts, strict=True):
            if verdict.ok:
                continue
            if work.rollback:
                back.append(work)
                work.outcome = Outcome("ROLLED_BACK", f"{verdict.error}; rolled back to the previous version",
                                       verified_serial=verdict.served)
            else:
                state = work.installed.state if work.installed is not None else None
                work.outcome = Outcome("FAILED", verdict.error, verified_serial=verdict.served, state=state)
        if back:
            for work in back:
                self._undo(work)
            self._reactivate(back)
        served = {w.item_id: v.served for w, v in zip(checked, verdicts, strict=True)}
        for work in live:
            if work.outcome is None and work.installed is not None:
                work.outcome = Outcome("SUCCEEDED", verified_serial=served.get(work.item_id), state=work.installed.state)

    def _reactivate(self, works: list[_Work]) -> None:
        def again(group: tuple[Any, list[int]]) -> None:
            activation, indexes = group
            try:
                activation.run()
            except Exception as error:  # noqa: BLE001 - said in the items' error
                for index in indexes:
                    outcome = works[index].outcome
                    assert outcome is not None
                    works[index].outcome = Outcome("FAILED", f"{outcome.error}; but activating the previous version "
                                                             f"failed: {error}")

        self._pool(again, list(group_activations([w.target for w in works if w.target is not None]).values()))

    # -- record ---------------------------------------------------------------------------------------------------
    def _finish(self, deployment_id: str, works: list[_Work]) -> timedelta | None:
        now = self._clock.now()
        waiting: list[int] = []
        with self._db.transaction() as session:
            deployment = session.get(DeploymentRow, deployment_id)
            if deployment is None:
                return None
            certificate = session.scalar(select(CertificateRow).where(CertificateRow.arn == deployment.certificate_arn))
            for work in works:
                item = session.get(DeploymentItemRow, work.item_id)
                if item is None:
                    continue
                outcome = work.outcome or Outcome("FAILED", f"{work.describe}: nothing was installed")
                if outcome.status == "PENDING":
                    waiting.append(work.attempts)
                apply_outcome(session, self._outbox, deployment, item, session.get(DeployBindingRow, work.binding_id),
                              certificate, outcome, work.describe, now)
            settle(session, deployment, now)
        if not waiting:
            return None
        return timedelta(seconds=min(3600.0, self._policy.retry_seconds * 2 ** (min(waiting) - 1)))
