"""The shipped Prometheus rules and Grafana dashboard (contrib/) against promtool and a real Prometheus.

A real Prometheus on loopback scrapes a real `certsmith serve` every second, with the shipped rules loaded: the
expiry alerts of an imported certificate expiring in 5 days (certsmith never renews one) reach `firing`, while a
healthy private certificate valid 7 days (renewed a third of its lifetime before expiry) fires nothing. Every
expression of the rules and of the dashboard uses only certsmith's metric names, and every dashboard query is one
Prometheus accepts.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with the awscli test dependency

from certsmith.testing.pki import WAIT, root_ca
from certsmith.testing.processes import log_tail, spawn
from certsmith.testing.server import stop_process
from certsmith.testing.waiting import until

from ..conftest import Server, backend_url, free_port, need_binary, start_server
from ..integration.renewal_world import imported_bundle

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"
RULES = CONTRIB / "prometheus" / "certsmith-rules.yml"
EXAMPLE = CONTRIB / "prometheus" / "prometheus.example.yml"
DASHBOARD = CONTRIB / "grafana" / "certsmith-dashboard.json"
DOMAIN = "soon.prometheus.test"
IMPORTED = "imported.prometheus.test"

# certsmith's metric families, as the metrics' reference names them.
GAUGES = {"certsmith_certificate_not_after_timestamp_seconds", "certsmith_certificate_days_to_expiry",
          "certsmith_certificate_series_dropped", "certsmith_certificates", "certsmith_renewal_failures",
          "certsmith_jobs", "certsmith_job_oldest_age_seconds", "certsmith_event_deliveries",
          "certsmith_event_delivery_attempts_failed", "certsmith_endpoint_up", "certsmith_endpoint_drift",
          "certsmith_endpoint_days_to_expiry", "certsmith_endpoint_handshake_seconds",
          "certsmith_endpoint_probe_timestamp_seconds", "certsmith_certificate_renewal_at_risk"}
COUNTERS = {"certsmith_renewals_total", "certsmith_api_requests_total"}
HISTOGRAMS = {"certsmith_issuance_duration_seconds", "certsmith_validation_duration_seconds"}
SERIES = GAUGES | COUNTERS | {h + suffix for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
_NAME = re.compile(r"\bcertsmith_[a-z0-9_]+\b")


# -- what the shipped files say -------------------------------------------------------------------------------------
def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard: its panels' targets (rows included) and its query variables."""
    board = json.loads(DASHBOARD.read_text())
    found: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(board["panels"])
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def names_in(expression: str) -> set[str]:
    return set(_NAME.findall(expression))


def runnable(expression: str) -> str:
    """A dashboard expression as Grafana sends it: its variables filled in."""
    text = expression.replace('"$job"', '".*"').replace("$__rate_interval", "1m")
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", text)
    return f"group by ({match.group(2)}) ({match.group(1)})" if match else text


# -- static checks ----------------------------------------------------------------------------------------------------
def test_the_rules_and_the_dashboard_use_only_certsmiths_metrics() -> None:
    alerts = {rule["alert"] for rule in rules()}
    assert {"CertsmithCertificateExpiringSoon", "CertsmithCertificateExpiringCritical", "CertsmithRenewalFailing",
            "CertsmithEventDeliveriesDead", "CertsmithJobBacklog", "CertsmithEndpointDrift", "CertsmithEndpointDown",
            "CertsmithEndpointExpiringSoon"} <= alerts
    for rule in rules():
        used = names_in(rule["expr"])
        assert used and used <= SERIES, f"{rule['alert']}: {used - SERIES} are not certsmith metrics"
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    board = json.loads(DASHBOARD.read_text())
    assert 38 <= board["schemaVersion"] <= 41 and board["uid"]
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in board["templating"]["list"])
    expressions = dashboard_expressions()
    assert len(expressions) >= 15
    used = set().union(*map(names_in, expressions))
    assert used <= SERIES, f"the dashboard uses {used - SERIES}, which certsmith does not export"
    assert {"certsmith_certificates", "certsmith_certificate_days_to_expiry", "certsmith_renewals_total",
            "certsmith_jobs", "certsmith_event_deliveries", "certsmith_endpoint_up"} <= used
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in panels)
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_promtool_checks_the_rules_and_the_example_configuration(tmp_path: Path) -> None:
    promtool = need_binary("promtool")
    for command in (["check", "rules", str(RULES)], ["check", "config", str(EXAMPLE)]):
        result = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    # What each alert fires on, by promtool's rule tests (annotations left out: the real Prometheus renders them).
    bare = {"groups": [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
                       for g in rule_groups()]}
    (tmp_path / "rules.yml").write_text(json.dumps(bare))
    (tmp_path / "tests.yml").write_text(json.dumps(_rule_tests()))
    result = subprocess.run([promtool, "test", "rules", str(tmp_path / "tests.yml")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _rule_tests() -> dict[str, Any]:
    cert = 'certsmith_certificate_days_to_expiry{{arn="{arn}",domain="{arn}.test",type="PRIVATE",status="{status}",' \
           'issuer="ca",instance="{instance}",job="certsmith"}}'
    risk = 'certsmith_certificate_renewal_at_risk{{arn="{arn}",domain="{arn}.test",type="PRIVATE",reason="{reason}",' \
           'instance="{instance}",job="certsmith"}}'
    endpoint = 'certsmith_endpoint_{name}{{host="web",port="443",server_name="web.test",arn="a",instance="p1"}}'
    series = [
        {"series": cert.format(arn="a", status="ISSUED", instance="p1"), "values": "10x40"},
        {"series": cert.format(arn="a", status="ISSUED", instance="p2"), "values": "10x40"},  # a second process
        {"series": cert.format(arn="b", status="ISSUED", instance="p1"), "values": "5x40"},
        {"series": cert.format(arn="c", status="EXPIRED", instance="p1"), "values": "-3x40"},
        {"series": cert.format(arn="d", status="ISSUED", instance="p1"), "values": "60x40"},
        {"series": cert.format(arn="h", status="ISSUED", instance="p1"), "values": "6.9x40"},  # healthy: not at risk
        {"series": cert.format(arn="h", status="ISSUED", instance="p2"), "values": "6.9x40"},
        {"series": cert.format(arn="r", status="ISSUED", instance="p1"), "values": "3x40"},  # at risk from minute 20
        {"series": risk.format(arn="a", reason="not_eligible", instance="p1"), "values": "1x40"},
        {"series": risk.format(arn="a", reason="not_eligible", instance="p2"), "values": "1x40"},
        {"series": risk.format(arn="b", reason="needs_action", instance="p1"), "values": "1x40"},
        {"series": risk.format(arn="c", reason="renewal_failed", instance="p1"), "values": "1x40"},  # EXPIRED already
        {"series": risk.format(arn="d", reason="overdue", instance="p1"), "values": "1x40"},  # 60 days left
        {"series": risk.format(arn="r", reason="overdue", instance="p1"), "values": "_x20 1x20"},
        {"series": 'certsmith_job_oldest_age_seconds{kind="acm.issue-private",instance="p1"}', "values": "1000+60x40"},
        {"series": 'certsmith_job_oldest_age_seconds{kind="pca.issue",instance="p1"}', "values": "0x40"},
        {"series": 'certsmith_event_deliveries{state="DEAD",instance="p1"}', "values": "2x40"},
        {"series": 'certsmith_renewal_failures{type="AMAZON_ISSUED",status="FAILED",instance="p1"}', "values": "1x40"},
        {"series": endpoint.format(name="drift"), "values": "1x40"},
        {"series": endpoint.format(name="up"), "values": "0x40"},
        {"series": endpoint.format(name="days_to_expiry"), "values": "3x40"},
    ]
    def expiring(severity: str, arn: str, reason: str) -> dict[str, Any]:
        return {"exp_labels": {"severity": severity, "arn": arn, "domain": f"{arn}.test", "type": "PRIVATE",
                               "issuer": "ca", "reason": reason}}

    place = {"host": "web", "port": "443", "server_name": "web.test", "arn": "a"}
    checks = [
        # One alert per certificate at risk whatever the processes; none for "h", healthy with 6.9 days left.
        (1, "CertsmithCertificateExpiringSoon", [expiring("warning", "a", "not_eligible"),
                                                  expiring("warning", "b", "needs_action")]),
        (1, "CertsmithCertificateExpiringCritical", [expiring("critical", "b", "needs_action")]),
        (22, "CertsmithCertificateExpiringCritical", [expiring("critical", "b", "needs_action"),
                                                      expiring("critical", "r", "overdue")]),
        (20, "CertsmithRenewalFailing", [{"exp_labels": {"severity": "warning", "type": "AMAZON_ISSUED",
                                                         "status": "FAILED"}}]),
        (4, "CertsmithJobBacklog", []),  # not for 5 minutes yet
        (6, "CertsmithJobBacklog", [{"exp_labels": {"severity": "warning", "kind": "acm.issue-private"}}]),
        (6, "CertsmithEventDeliveriesDead", [{"exp_labels": {"severity": "warning"}}]),
        (29, "CertsmithEndpointDrift", []),
        (31, "CertsmithEndpointDrift", [{"exp_labels": {"severity": "warning", **place}}]),
        (11, "CertsmithEndpointDown", [{"exp_labels": {"severity": "critical", **place}}]),
        (1, "CertsmithEndpointExpiringSoon", [{"exp_labels": {"severity": "warning", **place}}]),
    ]
    return {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series,
                       "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": name, "exp_alerts": alerts}
                                           for minutes, name, alerts in checks]}]}


# -- a real Prometheus scraping a real certsmith ----------------------------------------------------------------------
@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=5)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]



@pytest.fixture(scope="module")
def certsmith(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("certsmith"), backend_url())
    yield server
    server.stop()
    assert "Traceback" not in server.log_path.read_text()


@pytest.fixture(scope="module")
def expiring(certsmith: Server) -> str:
    """A private certificate valid 7 days (under the 14 of the expiring-soon rule, healthy: certsmith renews it a
    third of its lifetime before expiry): its ARN."""
    acm, pca = certsmith.client("acm"), certsmith.client("acm-pca")
    ca = root_ca(pca, "Prometheus Test Root")
    arn: str = acm.request_certificate(DomainName=DOMAIN, CertificateAuthorityArn=ca, KeyAlgorithm="EC_prime256v1",
                                       Tags=[{"Key": "certsmith:validity", "Value": "7d"}])["CertificateArn"]
    acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig=WAIT)
    return arn


@pytest.fixture(scope="module")
def at_risk(certsmith: Server) -> str:
    """An imported certificate expiring in 5 days (certsmith never renews one): its ARN."""
    now = datetime.now(UTC)
    bundle = imported_bundle(IMPORTED, now - timedelta(days=1), now + timedelta(days=5))
    arn: str = certsmith.client("acm").import_certificate(Certificate=bundle.certificate,
                                                          PrivateKey=bundle.private_key)["CertificateArn"]
    return arn


@pytest.fixture(scope="module")
def prometheus(certsmith: Server, expiring: str, at_risk: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = need_binary("prometheus")
    home = tmp_path_factory.mktemp("prometheus")
    target = certsmith.endpoint.removeprefix("http://")
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(RULES)],
              "scrape_configs": [{"job_name": "certsmith", "static_configs": [{"targets": [target]}]}]}
    (home / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    log_path = home / "prometheus.log"
    process = spawn([binary, f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
                     f"--web.listen-address=127.0.0.1:{port}"], log_path)
    server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited:\n{log_tail(log_path)}")
        try:
            return httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        until("prometheus ready", ready, 20, log_path)
        yield server
    finally:
        stop_process(process)


def test_a_real_prometheus_fires_the_expiry_alerts_of_a_certificate_at_risk_only(
        certsmith: Server, expiring: str, at_risk: str, prometheus: Prometheus) -> None:
    page = httpx.get(f"{certsmith.endpoint}/metrics", timeout=10).text
    line = next(x for x in page.splitlines() if x.startswith("certsmith_certificate_days_to_expiry{") and expiring in x)
    assert 6.9 < float(line.rsplit(" ", 1)[1]) <= 7
    risky = [x for x in page.splitlines() if x.startswith("certsmith_certificate_renewal_at_risk{")]
    assert len(risky) == 1 and at_risk in risky[0] and 'reason="imported"' in risky[0], risky

    def firing() -> dict[str, dict[str, Any]]:
        alerts = prometheus.get("/api/v1/alerts")["alerts"]
        mine = {a["labels"]["alertname"]: a for a in alerts if a["labels"].get("arn") == at_risk}
        wanted = ("CertsmithCertificateExpiringSoon", "CertsmithCertificateExpiringCritical")
        return mine if all(mine.get(n, {}).get("state") == "firing" for n in wanted) else {}

    alerts = until("the expiry alerts firing", firing, 25, prometheus.log_path)
    # Evaluated on the same scrapes for 10 s: the healthy certificate is not even pending, though it has 7 days left.
    healthy = [a for a in prometheus.get("/api/v1/alerts")["alerts"] if a["labels"].get("arn") == expiring]
    assert healthy == []
    below = prometheus.get("/api/v1/query", query=f'certsmith_certificate_days_to_expiry{{arn="{expiring}"}} < 14')
    assert below["result"], "Prometheus has the healthy certificate's days to expiry, under 14"
    soon = alerts["CertsmithCertificateExpiringSoon"]
    assert soon["labels"]["severity"] == "warning" and soon["labels"]["domain"] == IMPORTED
    assert soon["labels"]["type"] == "IMPORTED" and soon["labels"]["reason"] == "imported"
    assert soon["labels"]["issuer"] == IMPORTED  # the issuer's name: it signed itself
    assert soon["annotations"]["summary"] == f"Certificate {IMPORTED} expires in 5.0 days, not renewed: imported"
    description = soon["annotations"]["description"]
    assert f"The IMPORTED certificate {at_risk} for {IMPORTED}" in description
    assert "(reason: imported). certsmith never renews an imported certificate: import its renewed body" in description
    assert "{{" not in json.dumps(alerts)  # every template was rendered
    critical = alerts["CertsmithCertificateExpiringCritical"]
    assert critical["labels"]["severity"] == "critical" and critical["labels"]["reason"] == "imported"
    assert "Act today: certsmith never renews" in critical["annotations"]["description"]
    groups = prometheus.get("/api/v1/rules")["groups"]
    assert not [r["name"] for g in groups for r in g["rules"] if r.get("health") != "ok"]
    assert {r["name"] for g in groups for r in g["rules"]} == {r["alert"] for r in rules()}


def test_every_dashboard_query_runs_on_prometheus_and_every_name_is_served(
        certsmith: Server, prometheus: Prometheus) -> None:
    page = httpx.get(f"{certsmith.endpoint}/metrics", timeout=10).text
    families = {line.split()[2]: line.split()[3] for line in page.splitlines() if line.startswith("# TYPE ")}
    assert {f: "gauge" for f in GAUGES} | {f: "counter" for f in COUNTERS} | {f: "histogram" for f in HISTOGRAMS} \
        == {f: t for f, t in families.items() if f in GAUGES | COUNTERS | HISTOGRAMS}
    assert GAUGES | COUNTERS | HISTOGRAMS <= set(families), "the reference names metrics /metrics does not serve"
    for expression in dashboard_expressions():
        prometheus.get("/api/v1/query", query=runnable(expression))  # a query Prometheus rejects fails here
    issued = prometheus.get("/api/v1/query", query=runnable(
        'sum(max by (type) (certsmith_certificates{job=~"$job", status="ISSUED"}))'))["result"]
    assert issued and float(issued[0]["value"][1]) >= 1
