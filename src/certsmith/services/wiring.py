"""The composition root: everything certsmith runs is built here from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..dns.probe import serves_txt, split_listen
from ..dns.resolve import Resolvers, parse_resolvers
from ..domain.clock import Clock, SystemClock
from ..domain.public_names import check_zone_name
from ..keys.master_key import MasterKeySource
from ..keys.sealing import KeySealer
from ..notify.smtp import Mailer, SmtpTarget
from ..notify.targets import Notifiers
from ..settings import Settings
from ..store.database import Database, migrate
from ..store.group_commit import GroupCommit
from ..store.jobs import JobQueue
from ..worker.loop import JobHandler, LocalSignal, Periodic, Worker
from .accounts import AccountService, write_credentials_file
from .acm.acm_account import AccountConfigurationService
from .acm.certificate_import import CertificateImporter
from .acm.certificate_lifecycle import RENEW_JOB, CertificateLifecycleService
from .acm.certificate_search import CertificateSearch
from .acm.certificates import ISSUE_PRIVATE_JOB, CertificateService
from .acm.key_pool import FILL_KEY_POOL_JOB, KeyPool
from .audit_log import AuditLog
from .blobs import FileBlobStore
from .compliance.report import ComplianceReports
from .deploy.agents import AgentService
from .deploy.bindings import BindingService
from .deploy.deployments import DEPLOY_JOB, DeploymentService
from .deploy.runner import DeploymentRunner, RunnerPolicy
from .endpoints.prober import EndpointProber
from .endpoints.registry import EndpointRegistry
from .events.delivery import EventDelivery, RetryPolicy
from .events.dispatch import EventDispatcher
from .events.event_log import EventLog
from .events.outbox import EventOutbox
from .events.rules import EventRules
from .master_key import open_master_key
from .pca.audit_reports import AUDIT_REPORT_JOB, AuditReportService
from .pca.authorities import CREATE_AUTHORITY_JOB, PURGE_AUTHORITY_JOB, AuthorityService
from .pca.authority_admin import AuthorityAdminService
from .pca.authority_cache import ActiveAuthorities
from .pca.issuance import ISSUE_JOB, IssuanceService
from .pca.reissue import REISSUE_JOB, ReissueService
from .pca.revocation import REFRESH_CRL_JOB, RevocationService
from .pca.rotation import RotationService
from .public.challenges import ChallengeStore, ValidationRecords
from .public.diagnosis import PROBE_LABEL, PROBE_TEXT, ValidationDiagnosis
from .public.dns_providers import DnsProviderService
from .public.email_validation import EmailValidation
from .public.http_validation import HttpChallengeStore, HttpRedirectCheck, HttpResponder
from .public.installation_secrets import InstallationSecrets
from .public.issuers import IssuerService
from .public.ordering import OrderingService
from .public.record_writer import ValidationRecordWriter
from .public.requests import EMAIL_JOB, VALIDATE_JOB, PublicRequests
from .public.responders import ZoneResponder
from .public.validation import ORDER_JOB, ValidationService
from .renewal.backfill import plan_unrecorded
from .renewal.notices import NoticeSweep
from .renewal.policies import REPLAN_JOB, RenewalPolicies
from .renewal.recorder import RenewalRecorder
from .renewal.renewer import RenewalService
from .renewal.replan import Replanner
from .renewal.scheduler import RENEWAL_CHECK_JOB, RenewalScheduler
from .renewal.status import RenewalStatus

__all__ = ["APPROVAL_SECRET", "Container", "build"]

APPROVAL_SECRET = "approval-links"  # the installation secret approval links are signed with


@dataclass(slots=True)
class Container:
    settings: Settings
    database: Database
    clock: Clock
    signal: LocalSignal
    jobs: JobQueue
    accounts: AccountService
    authorities: AuthorityService
    admin: AuthorityAdminService
    issuance: IssuanceService
    revocation: RevocationService
    audit_reports: AuditReportService
    audit_log: AuditLog
    writes: GroupCommit
    certificates: CertificateService
    acm_account: AccountConfigurationService
    lifecycle: CertificateLifecycleService
    imports: CertificateImporter
    search: CertificateSearch
    key_pool: KeyPool
    issuers: IssuerService
    public_requests: PublicRequests
    validation: ValidationService
    ordering: OrderingService
    diagnosis: ValidationDiagnosis
    challenges: ChallengeStore
    validation_records: ValidationRecords
    dns_providers: DnsProviderService
    record_writer: ValidationRecordWriter
    http_challenges: HttpChallengeStore
    http_check: HttpRedirectCheck
    email_validation: EmailValidation
    outbox: EventOutbox
    recorder: RenewalRecorder
    renewal_policies: RenewalPolicies
    replanner: Replanner
    scheduler: RenewalScheduler
    renewal: RenewalService
    notices: NoticeSweep
    renewal_status: RenewalStatus
    rotation: RotationService
    reissue: ReissueService
    endpoints: EndpointRegistry
    endpoint_prober: EndpointProber
    notifiers: Notifiers
    event_dispatcher: EventDispatcher
    event_delivery: EventDelivery
    event_log: EventLog
    event_rules: EventRules
    compliance: ComplianceReports
    agents: AgentService
    bindings: BindingService
    deployments: DeploymentService
    deploy_runner: DeploymentRunner

    def zone_content(self) -> dict[str, list[str]]:
        """What the validation zone's DNS server serves: the open challenges, and the probe of its delegation."""
        content = self.challenges.load()
        if self.validation_records.zone:
            content[f"{PROBE_LABEL}.{self.validation_records.zone}"] = [PROBE_TEXT]
        return content

    def handlers(self) -> dict[str, JobHandler]:
        def issue_dead(payload: dict[str, Any], error: str) -> None:
            self.issuance.mark_failed(payload, error)

        return {
            CREATE_AUTHORITY_JOB: JobHandler(self.authorities.run_create_job,
                                             lambda payload, _error: self.authorities.mark_failed(payload)),
            PURGE_AUTHORITY_JOB: JobHandler(self.authorities.run_purge_job),
            ISSUE_JOB: JobHandler(on_dead=issue_dead, run_batch=self.issuance.run_issue_batch),
            REFRESH_CRL_JOB: JobHandler(self.revocation.refresh_crl),
            ISSUE_PRIVATE_JOB: JobHandler(self.certificates.run_issue_job,
                                          lambda payload, _error: self.certificates.mark_failed(payload)),
            FILL_KEY_POOL_JOB: JobHandler(self.key_pool.run_fill_job),
            RENEW_JOB: JobHandler(self.renewal.run, self.renewal.give_up, parallel=8),
            RENEWAL_CHECK_JOB: JobHandler(self.renewal.run, self.renewal.give_up, parallel=8),
            REPLAN_JOB: JobHandler(self.replanner.run),
            AUDIT_REPORT_JOB: JobHandler(self.audit_reports.run_job,
                                         lambda payload, _error: self.audit_reports.mark_failed(payload)),
            VALIDATE_JOB: JobHandler(self.validation.run, lambda payload, _error: self.certificates.mark_failed(payload),
                                     parallel=16),
            ORDER_JOB: JobHandler(self.ordering.run, lambda payload, _error: self.certificates.mark_failed(payload),
                                  parallel=16),
            EMAIL_JOB: JobHandler(self.email_validation.run, parallel=4),
            REISSUE_JOB: JobHandler(self.reissue.run_job, self.reissue.mark_failed),
            DEPLOY_JOB: JobHandler(self.deploy_runner.run, self.deploy_runner.give_up, parallel=8),
        }

    def periodic(self) -> list[Periodic]:
        """What every worker runs now and then: the renewal scheduler and the expiry-notice sweep."""
        seconds = self.settings.renewal_sweep_seconds
        return [Periodic("renewal sweep", seconds, self.scheduler.sweep),
                Periodic("notice sweep", seconds, self.notices.sweep),
                Periodic("CA expiry check", 3600, self.notices.ca_expiry),
                Periodic("endpoint probes", self.settings.endpoint_probe_seconds, self.endpoint_prober.sweep),
                Periodic("event dispatch", self.settings.event_delivery_seconds, self.event_dispatcher.sweep),
                Periodic("event delivery", self.settings.event_delivery_seconds, self.event_delivery.kick)]

    def worker(self) -> Worker:
        self.key_pool.start_filling()
        return Worker(self.database, self.jobs, self.handlers(), self.clock, self.signal, periodic=self.periodic(),
                      lease=timedelta(seconds=self.settings.job_lease_seconds))

    def stop_background(self) -> None:
        """After the workers have stopped: let the probes and the event send under way finish, give their leases
        back, and close the notifiers' connections."""
        self.endpoint_prober.close()
        self.event_delivery.close()
        self.notifiers.close()


def build(settings: Settings, clock: Clock | None = None, *, prepare: bool = True) -> Container:
    """Build the services. With ``prepare``, create the data dir, migrate, and make the first credentials."""
    clock = clock or SystemClock()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = settings.effective_database_url
    if prepare:
        migrate(url, settings.region)
    database = Database(url)
    sealer = KeySealer(open_master_key(MasterKeySource(settings.data_dir, settings.master_key), database, clock))
    signal = LocalSignal()
    jobs = JobQueue()
    accounts = AccountService(database, sealer, clock)
    if prepare:
        credential = accounts.bootstrap()
        if credential is not None:
            write_credentials_file(settings.data_dir / "credentials", credential, settings.region)
    writes = GroupCommit(database)
    active = ActiveAuthorities()
    issuance = IssuanceService(database, writes, jobs, sealer, clock, signal, active, settings.effective_public_url)
    key_pool = KeyPool(database, jobs, sealer, clock, signal, settings.key_pool_size)
    outbox = EventOutbox()
    deployments = DeploymentService(database, jobs, sealer, clock, signal)
    recorder = RenewalRecorder(outbox, deployments)
    certificates = CertificateService(database, jobs, sealer, clock, signal, issuance, key_pool, recorder)
    blobs = FileBlobStore(settings.data_dir / "objects")
    zone = check_zone_name(settings.validation_zone) if settings.validation_zone else None
    secrets = InstallationSecrets(database, sealer, clock)
    records = ValidationRecords(secrets, zone)
    public_url = settings.effective_public_url
    providers = DnsProviderService(database, sealer, clock)
    http_challenges = HttpChallengeStore(database, clock)
    mailer = Mailer(SmtpTarget.parse(settings.smtp_url), settings.mail_from) if settings.smtp_url else None
    challenges = ChallengeStore(database, clock)
    resolvers = Resolvers(parse_resolvers(settings.resolvers))
    http_check = HttpRedirectCheck(resolvers, settings.http_validation_port)
    if zone is not None:
        resolvers.servers  # noqa: B018 - a server that validates says now, not at its first job, that it has no resolver
    issuers = IssuerService(database, sealer, clock, providers)
    dns_host, dns_port = split_listen(settings.dns_listen)

    def confirm_published(owner: str, value: str, timeout: float) -> bool:
        return serves_txt(dns_host, dns_port, owner, value, timeout)

    validation = ValidationService(database, jobs, clock, signal, resolvers, challenges, issuers, http_check)
    ordering = OrderingService(database, clock, sealer, issuers, issuance,
                               ZoneResponder(records, challenges, confirm_published),
                               HttpResponder(http_challenges, records.label), providers, recorder)
    authorities = AuthorityService(database, jobs, sealer, clock, signal, active)
    if prepare:
        plan_unrecorded(database, recorder, clock)
    endpoints = EndpointRegistry(database, clock)
    bindings = BindingService(database, sealer, clock, deployments, outbox, allow_commands=settings.deploy_commands)
    notifiers = Notifiers(mailer, allow_commands=settings.event_commands)

    event_rules = EventRules(database, sealer, clock, allow_commands=notifiers.commands_allowed,
                             mail=notifiers.mail_configured)
    delivery = EventDelivery(database, clock, notifiers, event_rules.open_secret,
                             lease=timedelta(seconds=settings.job_lease_seconds),
                             policy=RetryPolicy(first=timedelta(seconds=settings.event_retry_seconds)))
    return Container(
        settings=settings, database=database, clock=clock, signal=signal, jobs=jobs, accounts=accounts,
        authorities=authorities,
        admin=AuthorityAdminService(database, clock),
        issuance=issuance,
        certificates=certificates,
        imports=CertificateImporter(database, sealer, clock, certificates, recorder), search=CertificateSearch(database),
        lifecycle=CertificateLifecycleService(database, jobs, sealer, clock, signal, certificates, issuance),
        acm_account=AccountConfigurationService(database, clock),
        revocation=RevocationService(database, jobs, sealer, clock, outbox=outbox, public_url=public_url),
        audit_reports=AuditReportService(database, jobs, blobs, clock, signal),
        audit_log=AuditLog(writes, clock), writes=writes, key_pool=key_pool, issuers=issuers,
        public_requests=PublicRequests(database, jobs, clock, signal, issuers, records, providers, public_url,
                                       mail=mailer is not None),
        validation=validation, ordering=ordering,
        diagnosis=ValidationDiagnosis(certificates, resolvers, records, http_check), challenges=challenges,
        validation_records=records, dns_providers=providers,
        record_writer=ValidationRecordWriter(database, jobs, clock, signal, certificates, providers),
        http_challenges=http_challenges, http_check=http_check,
        email_validation=EmailValidation(database, jobs, clock, signal, lambda: secrets.get(APPROVAL_SECRET), mailer,
                                         public_url),
        outbox=outbox, recorder=recorder, renewal_policies=RenewalPolicies(database, clock, jobs, signal),
        replanner=Replanner(database, jobs, clock, signal, recorder),
        scheduler=RenewalScheduler(database, jobs, clock, signal),
        renewal=RenewalService(database, clock, sealer, issuance, ordering, validation, recorder),
        notices=NoticeSweep(database, clock, outbox), renewal_status=RenewalStatus(database, clock),
        rotation=RotationService(database, clock, authorities, issuance),
        reissue=ReissueService(database, jobs, sealer, clock, signal, issuance, recorder, public_url),
        endpoints=endpoints, endpoint_prober=EndpointProber(database, clock, endpoints, outbox),
        notifiers=notifiers, event_dispatcher=EventDispatcher(database, clock, rules=event_rules.enabled_rules,
                                                                   on_dispatched=delivery.kick),
        event_delivery=delivery, event_log=EventLog(database, clock), event_rules=event_rules,
        compliance=ComplianceReports(database, clock),
        agents=AgentService(database, accounts, sealer, clock,
                            deployments.material, outbox),
        bindings=bindings, deployments=deployments,
        deploy_runner=DeploymentRunner(database, clock, deployments, bindings, outbox, RunnerPolicy(
            parallel=settings.deploy_parallel, verify_attempts=settings.deploy_verify_attempts,
            verify_delay_seconds=settings.deploy_verify_delay_seconds, attempts=settings.deploy_attempts,
            retry_seconds=settings.deploy_retry_seconds, allow_commands=settings.deploy_commands)))
