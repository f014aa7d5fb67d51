"""The agent's loop: poll for work, install each version on its local target, check the endpoint, report.

What the agent holds (each binding's version, serial and the target's state) is kept in ``<state_dir>/state.json``,
so a restart does not deploy again what is in place. While the server cannot be reached the agent waits longer
between tries (up to ``max_backoff_seconds``); a report that could not be sent is sent again before the next poll.

When the endpoint does not serve the new serial within ``verify_seconds`` and the binding asks for rollback, the
agent undoes the install, makes the previous material live again and records what the target then holds.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ...domain.errors import CertsmithError
from ...tls.probe import probe_tls
from ..targets.base import DeployError, DeployTarget, Installed, Material, same_serial, serial_text
from ..targets.registry import build_target
from .client import AgentClient
from .config import AgentConfig

__all__ = ["Agent", "Report"]

log = logging.getLogger("certsmith.agent")


@dataclass(frozen=True, slots=True)
class Report:
    binding_arn: str
    version: int
    serial: str
    succeeded: bool
    error: str | None = None
    verified_serial: str | None = None


class Agent:
    """Runs until ``stop`` is set (SIGTERM); each step is one poll and the work it brought."""

    def __init__(self, config: AgentConfig, client: AgentClient | None = None, stop: threading.Event | None = None):
        self.config = config
        self.client = client or AgentClient(config)
        self.stop = stop or threading.Event()
        self.state_path = config.state_dir / "state.json"
        self.bindings: dict[str, dict[str, Any]] = self._load_state()
        self.unsent: list[Report] = []
        self.deploying = threading.Event()  # set while work is being installed: a stop waits for it

    # -- state ----------------------------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, dict[str, Any]]:
        try:
            loaded = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("state file %s cannot be read (%s): starting as if nothing were deployed", self.state_path, exc)
            return {}
        bindings = loaded.get("bindings") if isinstance(loaded, dict) else None
        return {k: v for k, v in (bindings or {}).items() if isinstance(v, dict) and isinstance(v.get("version"), int)}

    def _save_state(self) -> None:
        self.config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.state_path.with_name(f".state.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"bindings": self.bindings}, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.state_path)

    def held(self) -> dict[str, int]:
        return {arn: int(entry["version"]) for arn, entry in self.bindings.items()}

    # -- the loop -------------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Poll and deploy until stopped; the server being away only makes the agent wait longer."""
        delay = 1.0
        log.info("agent polling %s (region %s)", self.config.endpoint, self.config.region)
        while not self.stop.is_set():
            try:
                self.step()
            except (BotoCoreError, ClientError) as exc:
                log.warning("the server cannot be reached or refused the agent (%s); trying again in %.0f s",
                            _why(exc), delay)
                if self.stop.wait(delay):
                    break
                delay = min(delay * 2, self.config.max_backoff_seconds)
                continue
            delay = 1.0

    def step(self, wait: int | None = None) -> int:
        """Send what was not sent, poll once, deploy the work it brought; the number of work items done."""
        self._send_unsent()
        passphrase = secrets.token_urlsafe(24).encode("ascii")
        work = self.client.poll(self.held(), passphrase, wait)
        for item in work:
            if self.stop.is_set():
                break
            self.deploying.set()
            try:
                self.unsent.append(self.deploy(item, passphrase))
            finally:
                self.deploying.clear()
            self._send_unsent()
        return len(work)

    def _send_unsent(self) -> None:
        while self.unsent:
            r = self.unsent[0]
            try:
                self.client.report(r.binding_arn, r.version, r.serial, r.succeeded, r.error, r.verified_serial)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFoundException",
                                                                  "AccessDeniedException", "InvalidArnException"):
                    log.warning("the server refused the report of %s version %s: %s", r.binding_arn, r.version,
                                _why(exc))
                    self.unsent.pop(0)
                    continue
                raise
            self.unsent.pop(0)

    # -- one work item --------------------------------------------------------------------------------------------
    def deploy(self, work: dict[str, Any], passphrase: bytes) -> Report:
        """Install the version on the binding's target, make it live and check it; the report of how it went."""
        arn, version, serial = work["BindingArn"], int(work["Version"]), work["Serial"]
        previous = self.bindings.get(arn)
        try:
            material = _material(work, passphrase)
            state = previous.get("target_state", {}) if previous and previous.get("kind") == work["Kind"] else {}
            target = build_target(work["Kind"], work.get("Options") or {}, state)
            installed = target.install(material)
            activation = target.activation()
            if activation is not None:
                try:
                    activation.run()
                except DeployError as failed:
                    try:
                        installed.undo()  # the previous files back, and the server serving them again
                        activation.run()
                    except DeployError as again:  # the report keeps the first failure, and says this one too
                        log.warning("after the activation of %s failed, putting the previous version back failed "
                                    "too: %s", target.describe(), again)
                        raise DeployError(failed.target, f"{failed.problem}; putting the previous version back "
                                          f"failed too: {again.problem}", reason=failed.reason) from None
                    raise
        except (DeployError, CertsmithError) as exc:
            log.warning("deploying %s version %s failed: %s", arn, version, exc.message)
            return Report(arn, version, serial, False, exc.message)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("deploying %s version %s failed: %s", arn, version, exc)
            return Report(arn, version, serial, False, f"the work could not be used: {type(exc).__name__}: {exc}")
        self.bindings[arn] = {"version": version, "serial": serial, "kind": work["Kind"],
                              "target_state": dict(installed.state), "certificate_arn": work.get("CertificateArn")}
        self._save_state()
        verify = work.get("Verify")
        if not verify:
            log.info("deployed %s version %s (serial %s) to %s", arn, version, serial, target.describe())
            return Report(arn, version, serial, True)
        served, problem = self._verify(verify, serial, work.get("CertificateChain") or None)
        if not same_serial(served, serial):
            log.warning("deployed %s version %s, but %s", arn, version, problem)
            if work.get("Rollback") is True:
                problem += self._roll_back(arn, target, installed, previous, serial)
            return Report(arn, version, serial, False, problem, served)
        log.info("deployed %s version %s (serial %s) to %s; the endpoint serves it", arn, version, serial,
                 target.describe())
        return Report(arn, version, serial, True, verified_serial=served)

    def _roll_back(self, arn: str, target: DeployTarget, installed: Installed, previous: dict[str, Any] | None,
                   serial: str) -> str:
        """Undo the install and activate again, then record what the target holds; the words for the report."""
        failure: str | None = None
        try:
            installed.undo()
            activation = target.activation()
            if activation is not None:
                activation.run()
        except DeployError as exc:
            failure = exc.message
        try:
            held = target.held().serial
        except DeployError:
            held = None
        if same_serial(held, serial):  # the undo did not take: the new version is still in place
            log.warning("rolling back %s failed; the target still holds serial %s: %s", arn, serial, failure)
            return f"; rolling back failed, the new version is still in place: {failure or 'the target still holds it'}"
        if failure is None or (previous is not None and same_serial(held, previous.get("serial"))):
            if previous is None:
                self.bindings.pop(arn, None)
            else:
                self.bindings[arn] = previous
        else:  # what is in place is unknown: hold nothing, so that nothing is assumed
            self.bindings.pop(arn, None)
        self._save_state()
        if failure is not None:
            log.warning("rolling back %s did not finish: %s", arn, failure)
            return f"; rolling back did not finish: {failure}"
        back = (f"version {previous['version']} (serial {previous['serial']})" if previous is not None
                else "what the target held before this deployment")
        log.info("rolled %s back to %s", arn, back)
        return f"; rolled back to {back}"

    def _verify(self, verify: dict[str, Any], serial: str, trust: str | None) -> tuple[str | None, str]:
        """Handshake with the endpoint until it serves ``serial`` or verify_seconds pass: (served serial, problem)."""
        host, port = verify["Host"], int(verify.get("Port") or 443)
        name = verify.get("ServerName") or host
        where = f"{host}:{port} (SNI {name})"
        deadline = time.monotonic() + self.config.verify_seconds
        while True:
            seen = probe_tls(host, port, name, trust, timeout=5.0)
            served = serial_text(x509.load_der_x509_certificate(seen.chain[0]).serial_number) if seen.chain else None
            if same_serial(served, serial):
                return served, ""
            problem = (f"{where} could not be reached: {seen.error}" if seen.error else
                       f"{where} serves serial {served}, not {serial}")
            if time.monotonic() >= deadline or self.stop.wait(0.2):
                return served, problem


def _material(work: dict[str, Any], passphrase: bytes) -> Material:
    key = serialization.load_pem_private_key(work["PrivateKey"].encode("ascii"), passphrase)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return Material(work["CertificateArn"], int(work["Version"]), work["Serial"], work["Certificate"],
                    work.get("CertificateChain") or "", key_pem)


def _why(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
    return str(exc)
