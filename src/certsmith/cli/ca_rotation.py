"""``certsmith ca rotate | reissue | reissue-status``: replace a CA, and move its certificates to the replacement."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import ApiError, Client
from .common import (
    DEFAULT_CREDENTIALS,
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    AsJson,
    CaBundle,
    Credentials,
    Endpoint,
    Region,
    api_failures,
    connect,
    fail,
    print_fields,
    print_json,
    stdout_console,
)

__all__ = ["COMMANDS"]

console = stdout_console()
notes = Console(stderr=True)
Ca = Annotated[str, typer.Argument(metavar="ARN", help="the CA")]
POLL_SECONDS = 0.5


def _clients(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> tuple[Client, Client]:
    return (connect("certsmith", endpoint, credentials, region, ca_bundle),
            connect("acm-pca", endpoint, credentials, region, ca_bundle))


def rotate(
    arn: Ca,
    csr_out: Annotated[Path | None, typer.Option("--csr-out", metavar="FILE", dir_okay=False,
                                                 help="where to write the new CA's CSR when its parent is outside "
                                                      "certsmith", show_default="shown on standard error")] = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Create the CA that replaces ARN: same settings and subject, a new key. Prints the new CA's ARN.

    A root signs itself and a subordinate is signed by the same certsmith parent: the new CA is ACTIVE. When the
    parent is outside certsmith the new CA waits for its certificate (PENDING_CERTIFICATE): its CSR is shown.
    """
    with api_failures():
        ours, pca = _clients(endpoint, credentials, region, ca_bundle)
        rotated = ours.call("rotate_certificate_authority", CertificateAuthorityArn=arn)
        new_arn, status = rotated["CertificateAuthorityArn"], rotated["Status"]
        described = pca.call("describe_certificate_authority", CertificateAuthorityArn=new_arn)["CertificateAuthority"]
        csr = pca.call("get_certificate_authority_csr", CertificateAuthorityArn=new_arn)["Csr"] \
            if status == "PENDING_CERTIFICATE" else None
    if csr is not None and csr_out is not None:
        csr_out.write_text(csr)
    if as_json:
        print_json(described)
    else:
        console.print(new_arn, soft_wrap=True, highlight=False)
    if csr is None:
        notes.print(f"[green]{escape(new_arn)}[/green] is ACTIVE and replaces {escape(arn)}.\nMove the old CA's "
                    f"certificates to it with: certsmith ca reissue {escape(arn)} --to {escape(new_arn)}", soft_wrap=True)
        return
    where = f"written to {csr_out}" if csr_out else "below"
    notes.print(f"[yellow]{escape(new_arn)}[/yellow] is PENDING_CERTIFICATE: the CA that signed {escape(arn)} is "
                f"outside certsmith. Have it sign the new CA's CSR ({where}), then install the certificate:\n"
                f"  aws acm-pca import-certificate-authority-certificate --endpoint-url {escape(endpoint)} "
                f"--certificate-authority-arn {escape(new_arn)} --certificate fileb://ca.pem "
                "--certificate-chain fileb://chain.pem", soft_wrap=True)
    if csr_out is None:
        notes.print(csr.rstrip("\n"), soft_wrap=True, highlight=False, markup=False)


def _show_plan(result: dict[str, Any]) -> None:
    plan, run = result.get("Plan", {}), result["Reissue"]
    console.print(f"Dry run: would re-issue {plan.get('AcmCertificates', 0)} ACM certificates and "
                  f"{plan.get('PcaCertificates', 0)} IssueCertificate certificates of {run['SourceCertificateAuthorityArn']} "
                  f"from {run['TargetCertificateAuthorityArn']} at {run['Rate']}"
                  + (", revoking the old ones" if run.get("RevokeSource") else "") + ". Nothing was changed.",
                  soft_wrap=True, highlight=False)
    samples = plan.get("Samples", [])
    if samples:
        table = Table("Kind", "Serial")
        table.add_column("Certificate", overflow="fold")
        for sample in samples:
            table.add_row(sample["Kind"], sample["SourceSerial"], sample.get("CertificateArn", ""))
        console.print(table)


def _follow(ours: Client, reissue_id: str, first: dict[str, Any]) -> dict[str, Any]:
    """Poll the run until it ends, with a progress bar on standard error; the last description."""
    run = first
    started, done_at_start = time.monotonic(), first["Done"] + first["Failed"]
    columns = (TextColumn("re-issuing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TextColumn("{task.fields[failed]}"), TimeElapsedColumn())
    with Progress(*columns, console=notes, transient=False) as progress:
        task = progress.add_task("re-issue", total=run["Total"] or None, rate="", failed="")
        while True:
            handled = run["Done"] + run["Failed"]
            elapsed = time.monotonic() - started
            rate = f"{(handled - done_at_start) / elapsed:.1f}/s" if elapsed > 1 else ""
            failed = f"[red]{run['Failed']} failed[/red]" if run["Failed"] else ""
            progress.update(task, total=max(run["Total"], handled) or None, completed=handled, rate=rate,
                            failed=failed)
            if run["State"] != "RUNNING":
                return run
            time.sleep(POLL_SECONDS)
            run = ours.call("describe_certificate_reissue", ReissueId=reissue_id)["Reissue"]


def reissue(
    arn: Annotated[str, typer.Argument(metavar="ARN", help="the CA whose certificates are re-issued (the old one)")],
    to: Annotated[str, typer.Option("--to", metavar="ARN", help="the ACTIVE CA that re-issues them (the new one)")],
    rate: Annotated[str, typer.Option("--rate", metavar="RATE",
                                      help="certificates per second, minute or hour: 50/s, 10/m, 0.5/s (1000/s at most)")]
    = "50/s",
    revoke_old: Annotated[bool, typer.Option("--revoke-old", help="revoke each old certificate (SUPERSEDED) once it "
                                                                  "is re-issued")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="change nothing; show what would be re-issued")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="print the run's id and return at once")] = False,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Re-issue every live certificate of ARN from the CA given with --to, at a rate.

    ACM certificates keep their ARN and get a new key; certificates issued with IssueCertificate get a new one from
    the new CA for the same key (`ca reissue-status RUN_ID --items` maps old serials to new ARNs).
    """
    with api_failures():
        ours = connect("certsmith", endpoint, credentials, region, ca_bundle)
        result = ours.call("start_certificate_reissue", SourceCertificateAuthorityArn=arn,
                           TargetCertificateAuthorityArn=to, Rate=rate, RevokeSource=revoke_old, DryRun=dry_run)
    if dry_run:
        if as_json:
            print_json(result)
        else:
            _show_plan(result)
        return
    reissue_id = result["ReissueId"]
    if no_wait:
        if as_json:
            print_json(result["Reissue"])
        else:
            console.print(reissue_id, highlight=False)
        return
    try:
        run = _follow(ours, reissue_id, result["Reissue"])
    except ApiError as exc:
        raise fail(f"{exc}\nthe run goes on: certsmith ca reissue-status {reissue_id}") from None
    except KeyboardInterrupt:
        raise fail(f"stopped watching; the run goes on: certsmith ca reissue-status {reissue_id}", code=130) from None
    if as_json:
        print_json(run)
    else:
        console.print(f"{reissue_id} {run['State']}: {run.get('Message') or ''}", soft_wrap=True, highlight=False)
    if run["State"] != "SUCCEEDED":
        raise fail(f"the re-issue ended {run['State']}; see certsmith ca reissue-status {reissue_id} --items")


def reissue_status(
    reissue_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="the run's id (ca reissue prints it)")],
    items: Annotated[bool, typer.Option("--items", help="also list each certificate: old serial, ARN, new serial")]
    = False,
    endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
    region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False,
) -> None:
    """Show a re-issue run: its state and progress (and, with --items, its certificates)."""
    with api_failures():
        ours = connect("certsmith", endpoint, credentials, region, ca_bundle)
        run = ours.call("describe_certificate_reissue", ReissueId=reissue_id)["Reissue"]
        listed = ours.call_all("list_certificate_reissue_items", "Items", ReissueId=reissue_id) if items else []
    if as_json:
        print_json({**run, "Items": listed} if items else run)
        return
    print_fields(console, [("Run", run["ReissueId"]), ("State", run["State"]),
                           ("From", run["SourceCertificateAuthorityArn"]), ("To", run["TargetCertificateAuthorityArn"]),
                           ("Rate", run["Rate"]), ("Progress", f"{run['Done']} done, {run['Failed']} failed of "
                                                               f"{run['Total']}"),
                           ("Revoke old", "yes" if run.get("RevokeSource") else "no"), ("Started", run.get("CreatedAt")),
                           ("Finished", run.get("FinishedAt")), ("Message", run.get("Message"))])
    if items:
        table = Table("Kind", "State", "Old serial", "New serial")
        table.add_column("Certificate", overflow="fold")
        table.add_column("Error", overflow="fold")
        for item in listed:
            table.add_row(item["Kind"], item["State"], item["SourceSerial"], item.get("TargetSerial", "-"),
                          item.get("CertificateArn", "-"), escape(item.get("Error", "")))
        console.print(table)


COMMANDS: dict[str, Callable[..., None]] = {"rotate": rotate, "reissue": reissue, "reissue-status": reissue_status}
