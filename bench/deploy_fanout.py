"""Deployment fan-out: one renewal deployed to many places, through certsmith and through a shell loop.

One `certsmith serve` (a subprocess, SQLite), one private CA and one private certificate; B `files` bindings (B
folders) and N `nginx` bindings: one nginx on one loopback port with N SNI server blocks, each reading its own
folder, each binding with Verify naming its block. All bindings are deployed once (version 1), then:

  certsmith   RenewCertificate, until the RENEWAL deployment is SUCCEEDED: every binding holds the new version
              and each nginx block presented the new serial to a TLS handshake (measured from the call; the
              deployment's own time, from its job starting, is shown beside it)
  shell loop  the same work as a careful operator's script does it: `cp` of the four files into the B folders,
              N times `cp` + `nginx -s reload`, then for each block a handshake (`openssl s_client`) until it
              presents the deployed serial. It deploys version 1 again (so that every check has something to see).

It prints the command, the machine's cores, both times and the ratio.

Usage: python bench/deploy_fanout.py [--files 200] [--nginx 20] [--runs 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from botocore.config import Config

from certsmith.deploy.targets.base import same_serial
from certsmith.testing.pki import root_ca
from certsmith.testing.server import RunningServer, start_server
from certsmith.testing.tls_servers import TlsNginx, start_tls_nginx
from certsmith.testing.waiting import until

DOMAIN = "fanout.bench.test"
SETTINGS = {"deploy_verify_delay_seconds": 0.2, "deploy_verify_attempts": 50, "deploy_commands": "true"}
SHELL = r"""#!/bin/bash
# The shell baseline: deploy the files in $1 to every folder listed in $2 (files) and $3 (nginx blocks), reloading
# nginx after each nginx block's copy, then check each block's served serial with a handshake.
set -euo pipefail
src=$1 files_list=$2 nginx_list=$3 port=$4; shift 4  # the rest: the nginx command (binary and its -p/-c)
while read -r dir; do
  cp "$src/cert.pem" "$src/chain.pem" "$src/fullchain.pem" "$src/privkey.pem" "$dir/"
done < "$files_list"
while read -r dir name; do
  cp "$src/cert.pem" "$src/chain.pem" "$src/fullchain.pem" "$src/privkey.pem" "$dir/"
  "$@" -s reload
done < "$nginx_list"
want=$(openssl x509 -in "$src/cert.pem" -noout -serial)
while read -r dir name; do
  for try in $(seq 1 400); do
    got=$(openssl s_client -connect "127.0.0.1:$port" -servername "$name" </dev/null 2>/dev/null \
          | openssl x509 -noout -serial 2>/dev/null || true)
    [ "$got" = "$want" ] && break
    [ "$try" = 400 ] && { echo "$name still serves $got, not $want" >&2; exit 1; }
    sleep 0.05
  done
done < "$nginx_list"
"""


@dataclass
class World:
    server: RunningServer
    certsmith: Any
    acm: Any
    arn: str
    files_dirs: list[Path]
    nginx_dirs: list[tuple[Path, str]]  # folder, server name
    nginx: TlsNginx
    nginx_port: int


def cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{usable} usable of {os.cpu_count()}"



def bindings_of(certsmith: Any, arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"CertificateArn": arn, "MaxResults": 100}
    while True:
        page = certsmith.list_bindings(**kwargs)
        found += page["Bindings"]
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]


def deployment_of(certsmith: Any, arn: str, trigger: str, after: set[str]) -> dict[str, Any] | None:
    for deployment in certsmith.list_deployments(CertificateArn=arn, MaxResults=100)["Deployments"]:
        if deployment["Trigger"] == trigger and deployment["DeploymentId"] not in after:
            return dict(deployment)
    return None


def wait_deployment(certsmith: Any, deployment_id: str, within: float = 600.0) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        deployment: dict[str, Any] = certsmith.describe_deployment(DeploymentId=deployment_id)["Deployment"]
        return deployment if deployment["Status"] in ("SUCCEEDED", "FAILED") else None
    deployment: dict[str, Any] = until(f"deployment {deployment_id}", finished, within, 0.02)
    if deployment["Status"] != "SUCCEEDED":
        failed = [(item["Target"], item.get("Error")) for item in deployment["Items"] if item["Status"] != "SUCCEEDED"]
        raise RuntimeError(f"deployment {deployment_id} {deployment['Status']}: {failed[:5]}")
    return deployment


def seconds_between(start: datetime | str, end: datetime | str) -> float:
    first, last = (value if isinstance(value, datetime) else datetime.fromisoformat(value) for value in (start, end))
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return (last - first).total_seconds()


def build_world(tmp: Path, files: int, blocks: int) -> World:
    """The server, the certificate, the nginx and every binding, all deployed with version 1."""
    (tmp / "server").mkdir()
    server = start_server(tmp / "server", settings=SETTINGS)
    try:
        certsmith = server.client("certsmith", config=Config(max_pool_connections=16, retries={"max_attempts": 1}))
        acm, pca = server.client("acm"), server.client("acm-pca")
        ca = root_ca(pca, "Fan-out Bench Root")
        names = [f"site{index}.{DOMAIN}" for index in range(blocks)]
        arn: str = acm.request_certificate(DomainName=DOMAIN, CertificateAuthorityArn=ca, KeyAlgorithm="EC_prime256v1",
                                           SubjectAlternativeNames=[DOMAIN, f"*.{DOMAIN}"])["CertificateArn"]
        acm.get_waiter("certificate_validated").wait(CertificateArn=arn, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        nginx = start_tls_nginx(tmp / "nginx", names)
        files_dirs = [tmp / "files" / f"f{index:03d}" for index in range(files)]
        requests: list[dict[str, Any]] = []
        for folder in files_dirs:
            folder.mkdir(parents=True)
            requests.append({"Kind": "files", "Options": {"path": str(folder)}, "Name": folder.name})
        for name in names:
            requests.append({"Kind": "nginx", "Options": nginx.target_options(name), "Name": name,
                             "Verify": {"Host": "127.0.0.1", "Port": nginx.port, "ServerName": name}})
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda request: certsmith.create_binding(CertificateArn=arn, Deploy=False, **request),
                          requests))
        first = certsmith.run_deployment(CertificateArn=arn)["DeploymentId"]
        wait_deployment(certsmith, first)
    except BaseException:
        server.stop()
        raise
    return World(server, certsmith, acm, arn, files_dirs, [(nginx.folder(name), name) for name in names], nginx,
                 nginx.port)


def certsmith_run(world: World) -> dict[str, float]:
    """RenewCertificate until the renewal's deployment has SUCCEEDED everywhere (every nginx block verified).

    Beside the total: the renewal until its deployment was written (issuance), until the job started (the queue),
    and the deployment's own run, from the deployment's times (the server's clock, which is this machine's)."""
    known = {d["DeploymentId"] for d in world.certsmith.list_deployments(CertificateArn=world.arn,
                                                                         MaxResults=100)["Deployments"]}
    called = datetime.now(UTC)
    started = time.perf_counter()
    world.acm.renew_certificate(CertificateArn=world.arn)
    found = until("the renewal's deployment",
                  lambda: deployment_of(world.certsmith, world.arn, "RENEWAL", known), 300, 0.02)
    deployment = wait_deployment(world.certsmith, found["DeploymentId"])
    total = time.perf_counter() - started
    serial = deployment["Serial"]
    stale = [b["Name"] for b in bindings_of(world.certsmith, world.arn)
             if b["Status"] != "DEPLOYED" or not same_serial(b.get("DeployedSerial"), serial)]
    if stale:
        raise RuntimeError(f"bindings not on serial {serial} after the deployment: {stale[:5]}")
    for _, name in world.nginx_dirs:
        if not same_serial(world.nginx.served_serial(name), serial):
            raise RuntimeError(f"{name} does not serve serial {serial}")
    verified = [item for item in deployment["Items"] if item.get("VerifiedSerial")]
    if len(verified) != len(world.nginx_dirs):
        raise RuntimeError(f"{len(verified)} items verified, not {len(world.nginx_dirs)}")
    created, begun, finished = (deployment[key] for key in ("CreatedAt", "StartedAt", "FinishedAt"))
    return {"seconds": total, "issuance_seconds": seconds_between(called, created),
            "queue_seconds": seconds_between(created, begun), "deployment_seconds": seconds_between(begun, finished)}


def shell_run(world: World, source: Path, tmp: Path) -> dict[str, Any]:
    """The shell loop deploying the files in ``source`` everywhere, timed."""
    script = tmp / "deploy_fanout.sh"
    script.write_text(SHELL)
    files_list, nginx_list = tmp / "files.list", tmp / "nginx.list"
    files_list.write_text("".join(f"{folder}\n" for folder in world.files_dirs))
    nginx_list.write_text("".join(f"{folder} {name}\n" for folder, name in world.nginx_dirs))
    command = ["bash", str(script), str(source), str(files_list), str(nginx_list), str(world.nginx_port),
               *world.nginx.command()]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the shell loop failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return {"seconds": seconds, "command": " ".join(command)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="files bindings, one folder each (200)")
    parser.add_argument("--nginx", type=int, default=20, help="nginx bindings, one SNI block each (20)")
    parser.add_argument("--quick", action="store_true", help="a small run: 20 files bindings and 4 nginx blocks")
    parser.add_argument("--runs", type=int, default=3, help="renewals measured, each followed by the shell loop (3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if args.quick:
        args.files, args.nginx, args.runs = min(args.files, 20), min(args.nginx, 4), 1
    if args.nginx < 1 or args.files < 0 or args.runs < 1:
        parser.error("--nginx and --runs must be at least 1, --files at least 0")
    for binary in ("nginx", "openssl", "bash", "cp"):
        if shutil.which(binary) is None:
            sys.exit(f"{binary} is not installed")
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {cores()} cores; {args.files} files bindings + {args.nginx} nginx bindings "
          f"(one nginx, {args.nginx} SNI blocks on one port, each verified); settings {SETTINGS}")
    tmp = Path(tempfile.mkdtemp(prefix="deploy-fanout-"))
    world = None
    try:
        started = time.perf_counter()
        world = build_world(tmp, args.files, args.nginx)
        print(f"setup: {len(world.files_dirs) + len(world.nginx_dirs)} bindings deployed with version 1 in "
              f"{time.perf_counter() - started:.1f} s")
        version1 = tmp / "version1"
        shutil.copytree(world.files_dirs[0] if world.files_dirs else world.nginx_dirs[0][0], version1)
        ours_runs: list[dict[str, float]] = []
        shell_runs: list[float] = []
        for run in range(1, args.runs + 1):
            ours_runs.append(certsmith_run(world))
            theirs = shell_run(world, version1, tmp)
            shell_runs.append(theirs["seconds"])
            mine = ours_runs[-1]
            print(f"run {run}: certsmith {mine['seconds']:.2f} s (issuance {mine['issuance_seconds']:.2f} s, queue "
                  f"{mine['queue_seconds']:.2f} s, deployment {mine['deployment_seconds']:.2f} s); "
                  f"shell loop {theirs['seconds']:.2f} s")
        print(f"shell loop command: {theirs['command']}")
        ours = {key: median(run[key] for run in ours_runs) for key in ours_runs[0]}
        shell = median(shell_runs)
        ratio = shell / ours["seconds"]
        print(f"certsmith (median of {args.runs}): {ours['seconds']:.2f} s from RenewCertificate until every binding "
              f"holds the new version and every nginx block is verified; its deployment alone "
              f"{ours['deployment_seconds']:.2f} s")
        print(f"shell loop (median of {args.runs}): {shell:.2f} s")
        print(f"ratio shell / certsmith: {ratio:.2f} (against the deployment alone: "
              f"{shell / ours['deployment_seconds']:.2f}); {cores()} cores")
        if args.json:
            print(json.dumps({"files": args.files, "nginx": args.nginx, "runs": args.runs, "cores": os.cpu_count(),
                              "certsmith": {key: round(value, 3) for key, value in ours.items()},
                              "shell_seconds": round(shell, 3), "ratio": round(ratio, 3)}))
        errors = world.server.errors()
        if errors:
            print(f"the server logged {len(errors)} errors; the first:\n{errors[0]}", file=sys.stderr)
    finally:
        if world is not None:
            world.nginx.stop()
            world.server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
