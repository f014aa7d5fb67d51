"""The deployment job: install a version on each server-side binding, activate once per server, verify, roll back.

A run takes the items still to do (PENDING), installs each in a thread pool, runs each shared activation once (a
failed one: every install of its group is undone and the activation runs again, so the server keeps the old
version), then handshakes with the endpoints the bindings name. A target that is unreachable is tried again later
(the job waits, the deployment stays IN_PROGRESS); any other failure is final.

One binding is worked on by one run at a time: a run leases each binding in its start transaction (a conditional
UPDATE of ``lease_owner``/``lease_until``), renews the leases while it works and releases them once its items are
recorded. An item whose binding another run holds waits a few seconds; an expired lease (its worker died) is taken
over. An item found IN_PROGRESS was left by a run that never recorded it: its target may already hold the new
version, so putting the old one back installs the item's previous version from what certsmith keeps, never what was
on the target when this run began.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

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
from .results import FINAL_DEPLOYMENT, Outcome, apply_outcome, holds_nothing, note_done, settle
from .verify import Endpoint, verify_all

__all__ = ["DeploymentRunner", "RunnerPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")
NOTHING_BEFORE = "; nothing was there before: the files were removed again"
NOT_AGAIN = " (not activated again: nothing is left to serve)"


@dataclass(frozen=True, slots=True)
class RunnerPolicy:
    parallel: int = 16
    verify_attempts: int = 5
    verify_delay_seconds: float = 2.0
    attempts: int = 5  # runs of an item whose target is unreachable before it fails
    retry_seconds: float = 30.0  # the first wait before running such an item again (doubles, up to an hour)
    allow_commands: bool = False  # the deploy_commands setting: targets may run programs (reload commands, nginx)
    lease_seconds: float = 900.0  # a run's hold on a binding, renewed every quarter of it while the run works
    busy_seconds: float = 3.0  # the wait of an item whose binding another run holds


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
    resumed: bool = False  # found IN_PROGRESS: a run that never recorded it may have installed the new version
    previous: Material | None = None  # on a resumed run: the version to put back (None: it cannot be)
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
        deployment_id, owner = str(payload["deployment_id"]), uuid.uuid4().hex
        started = self._start(deployment_id, owner)
        if started is None:
            return
        material, works, busy = started
        delay: timedelta | None = None
        if works:
            recorded = False
            try:
                with self._renewing(owner):
                    self._deploy(material, works)
                delay = self._finish(deployment_id, works, owner)
                recorded = True
            finally:
                if not recorded:  # the run broke: its items stay IN_PROGRESS, resumed by the job's next run
                    with self._db.transaction() as session:
                        self._release(session, owner)
        if busy:
            wait = timedelta(seconds=self._policy.busy_seconds)
            delay = wait if delay is None else min(delay, wait)
        if delay is not None:
            why = "another run deploys one of its bindings" if busy else "a target is unreachable"
            raise RunLater(delay, f"deployment {deployment_id}: {why}, tried again later")

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

    # -- leases on bindings ---------------------------------------------------------------------------------------
    def _take(self, session: Session, binding_id: str, owner: str, now: datetime) -> bool:
        """Lease the binding to this run (free, expired, or this run's already); False when another run holds it."""
        taken = session.execute(update(DeployBindingRow).where(
            DeployBindingRow.id == binding_id,
            or_(DeployBindingRow.lease_owner.is_(None), DeployBindingRow.lease_until < now,
                DeployBindingRow.lease_owner == owner))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=self._policy.lease_seconds))
            .execution_options(synchronize_session=False))
        return getattr(taken, "rowcount", 0) == 1

    @staticmethod
    def _release(session: Session, owner: str) -> None:
        session.execute(update(DeployBindingRow).where(DeployBindingRow.lease_owner == owner)
                        .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))

    @contextmanager
    def _renewing(self, owner: str) -> Iterator[None]:
        """Renew this run's leases every quarter of their length while the body runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self._policy.lease_seconds / 4):
                try:
                    with self._db.transaction() as session:
                        session.execute(update(DeployBindingRow).where(DeployBindingRow.lease_owner == owner).values(
                            lease_until=self._clock.now() + timedelta(seconds=self._policy.lease_seconds))
                            .execution_options(synchronize_session=False))
                except Exception:  # tried again at the next turn; the lease is long
                    log.warning("renewing the leases of a deployment run failed", exc_info=True)

        thread = threading.Thread(target=renew, name="deploy-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- start ----------------------------------------------------------------------------------------------------
    def _start(self, deployment_id: str, owner: str) -> tuple[Material, list[_Work], bool] | None:
        """The version and this run's items (their bindings leased), and whether some wait for another run."""
        now = self._clock.now()
        busy = False
        with self._db.transaction() as session:
            deployment = session.get(DeploymentRow, deployment_id)
            if deployment is None or deployment.status in FINAL_DEPLOYMENT:
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
                if not self._take(session, binding.id, owner, now):
                    busy = True
                    continue
                resumed = item.status == "IN_PROGRESS"
                item.status, item.attempts = "IN_PROGRESS", item.attempts + 1
                item.started_at, item.updated_at = item.started_at or now, now
                work = _Work(item.id, binding.id, binding.kind, self._bindings.options_of(binding),
                             dict(binding.target_state or {}), binding.verify, binding.rollback, item.attempts,
                             target_text(binding), resumed=resumed)
                if resumed and material is not None and certificate is not None:
                    work.previous = self._previous(session, certificate, material, item.previous_version)
                works.append(work)
            settle(session, deployment, now)
        if material is None or (not works and not busy):
            return None
        return material, works, busy

    def _previous(self, session: Session, certificate: CertificateRow, material: Material,
                  version: int | None) -> Material | None:
        """The version a resumed item puts back, from what certsmith keeps; None when there is none to put back."""
        if version is None:
            return None
        if version == material.version:
            return material
        try:
            return self._deployments.material(session, certificate, version)
        except CertsmithError:
            return None

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
    def _undo(work: _Work) -> bool:
        """Put back what the target held before; False when that could not be done."""
        try:
            if work.resumed:  # what was there when this run began may be the new version: install the previous one
                if work.previous is None or work.target is None:
                    return False
                work.target.install(work.previous)
            elif work.installed is not None:
                work.installed.undo()
            return True
        except Exception:
            log.exception("putting the previous version back on %s failed", work.describe)
            return False

    @staticmethod
    def _left_empty(work: _Work) -> bool:
        """Whether the undo left the target's folder without a certificate: nothing was there before this run."""
        return work.target is not None and not work.resumed and holds_nothing(work.target)

    def _activate(self, works: list[_Work]) -> None:
        """Each shared activation once; a failed one undoes its group's installs and runs again, unless the undo left
        every folder of the group empty (nothing was there before: there is nothing to activate)."""
        groups = list(group_activations([w.target for w in works if w.target is not None]).values())

        def activate(group: tuple[Any, list[int]]) -> None:
            activation, indexes = group
            try:
                activation.run()
            except Exception as error:  # noqa: BLE001 - DeployError, or a target's bug: the old version goes back
                undone = {index: self._undo(works[index]) for index in indexes}
                empty = {index: undone[index] and self._left_empty(works[index]) for index in indexes}
                again = ""
                if not all(empty.values()):
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
                    work = works[index]
                    note = NOTHING_BEFORE + ("" if again else NOT_AGAIN) if empty[index] else again if undone[index] \
                        else "; the previous version could not be put back"
                    work.installed = None
                    work.outcome = self._failure(work, error if isinstance(error, DeployError)
                                                 else f"{work.describe}: activation failed", note=note)
                    if not undone[index]:  # the target may hold the new version: not tried again as if unchanged
                        work.outcome = Outcome("FAILED", work.outcome.error)

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
        emptied: list[_Work] = []
        for work, verdict in zip(checked, verdicts, strict=True):
            if verdict.ok:
                continue
            state = work.installed.state if work.installed is not None else None
            holds = f"; the target holds version {material.version} but the endpoint does not serve it"
            if work.rollback:
                if self._undo(work):
                    empty = self._left_empty(work)  # an emptied folder needs no activation of its own
                    (emptied if empty else back).append(work)
                    done = NOTHING_BEFORE if empty else "; rolled back to the previous version"
                    work.outcome = Outcome("ROLLED_BACK", f"{verdict.error}{done}", verified_serial=verdict.served)
                else:
                    work.outcome = Outcome("FAILED", f"{verdict.error}; rolling back failed: the previous version "
                                           f"could not be put back{holds}", verified_serial=verdict.served,
                                           state=state, installed=True)
            else:
                work.outcome = Outcome("FAILED", f"{verdict.error}{holds}", verified_serial=verdict.served, state=state,
                                       installed=True)
        again = set(group_activations([w.target for w in back if w.target is not None])) if back else set()
        if back:
            self._reactivate(back)
        for work in emptied:
            activation = work.target.activation() if work.target is not None else None
            if work.outcome is not None and activation is not None and activation.key not in again:
                work.outcome = replace(work.outcome, error=f"{work.outcome.error}{NOT_AGAIN}")
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
    def _finish(self, deployment_id: str, works: list[_Work], owner: str) -> timedelta | None:
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
                binding = session.get(DeployBindingRow, work.binding_id)
                if item.status != "IN_PROGRESS":  # superseded (or its binding deleted) while it ran: keep what is true
                    note_done(binding, deployment, outcome, now)
                    continue
                if outcome.status == "PENDING":
                    waiting.append(work.attempts)
                apply_outcome(session, self._outbox, deployment, item, binding, certificate, outcome, work.describe, now)
            settle(session, deployment, now)
            self._release(session, owner)
        if not waiting:
            return None
        return timedelta(seconds=min(3600.0, self._policy.retry_seconds * 2 ** (min(waiting) - 1)))

