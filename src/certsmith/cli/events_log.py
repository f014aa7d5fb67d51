"""``certsmith events list|tail|dead-letters|replay``: the account's events, how their deliveries went, and replays.

``register(app)`` adds the commands to the ``events`` group.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
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
    print_json,
    stdout_console,
)

__all__ = ["parse_since", "register"]

console = stdout_console()
COUNT_AT_MOST = 10_000  # events past --limit that `events list` counts to say how many it left out
_SPAN = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

DetailType = Annotated[str | None, typer.Option("--type", metavar="DETAIL-TYPE",
                                                help="only events of this detail-type, e.g. 'ACM Certificate Available'")]
Resource = Annotated[str | None, typer.Option("--resource", metavar="ARN", help="only events about this resource")]
Source = Annotated[str | None, typer.Option("--source", metavar="SOURCE", help="only events of this source, e.g. aws.acm")]
Since = Annotated[str | None, typer.Option("--since", metavar="TIME",
                                           help="events from then on: a span back from now (30m, 1h, 2d, 1d12h) "
                                                "or a time (2026-01-02T03:04:05Z)")]
RuleOption = Annotated[str | None, typer.Option("--rule", metavar="NAME", help="the rule")]
TargetOption = Annotated[str | None, typer.Option("--target", metavar="ID", help="the rule's target, by its Id")]


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``1h``, ``30m``, ``2d``, ``1d12h``, ``45s`` back from now, or an ISO 8601 time (UTC unless it says)."""
    now = now or datetime.now(UTC)
    value = text.strip()
    span = _SPAN.match(value)
    if value and span is not None and any(span.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in span.groups())
        return now - timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {text!r}: give a span such as 30m, 1h, 2d or a time such as 2026-01-02T03:04:05Z") \
            from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_since(text)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _client(endpoint: str, credentials: Path, region: str, ca_bundle: Path | None) -> Client:
    return connect("certsmith", endpoint, credentials, region, ca_bundle)


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    """An event for --json: the envelope as an object, with the event number and the deliveries."""
    return {"Id": event["Id"], "Event": json.loads(event["Event"]), "Dispatched": event.get("Dispatched", False),
            "Deliveries": event.get("Deliveries", [])}


def _deliveries(event: dict[str, Any]) -> str:
    parts = []
    for delivery in event.get("Deliveries", []):
        where = f"{delivery.get('Rule', '?')}/{delivery.get('TargetId', '?')}"
        state = delivery.get("State", "?")
        if state != "DELIVERED" and delivery.get("Attempts"):
            state += f" ({delivery['Attempts']} attempts)"
        parts.append(f"{where} {state}")
    if parts:
        return ", ".join(parts)
    return "no rule matched" if event.get("Dispatched") else "not dispatched yet"


def _line(event: dict[str, Any]) -> str:
    resources = ", ".join(event.get("Resources", [])) or "-"
    when = event["Time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if isinstance(event.get("Time"), datetime) else "-"
    return f"{event['Id']}  {when}  {event['DetailType']}  {resources}  [{_deliveries(event)}]"


def events_list(detail_type: DetailType = None, resource: Resource = None, source: Source = None, since: Since = None,
                limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many events, the oldest "
                                                                          "first (stderr says how many more there "
                                                                          "are)")] = 1000,
                endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """The account's events, oldest first, with where each was delivered."""
    request = _filters(detail_type, resource, source)
    start = _since(since)
    if start is not None:
        request["After"] = _iso(start)
    found: list[dict[str, Any]] = []
    with api_failures():
        client = _client(endpoint, credentials, region, ca_bundle)
        while len(found) < limit:
            page = client.call("list_events", Limit=min(1000, limit - len(found)), **request)
            found += page.get("Events", [])
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        left_out = _count_rest(client, request) if len(found) >= limit and request.get("NextToken") else 0
    if left_out:
        _say_left_out(found, left_out, limit)
    if as_json:
        print_json([_plain(e) for e in found])
        return
    table = Table("Id", "Time (UTC)", "Detail type", "Resources")
    table.add_column("Deliveries", overflow="fold")
    for event in found:
        when = event["Time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if event.get("Time") else "-"
        table.add_row(str(event["Id"]), when, escape(event["DetailType"]), escape("\n".join(event.get("Resources", []))),
                      escape(_deliveries(event)))
    console.print(table)
    if not found:
        typer.echo("no event", err=True)


def _count_rest(client: Client, request: dict[str, Any]) -> int:
    """How many events match after the last one shown (from the request's NextToken), counted up to COUNT_AT_MOST."""
    rest = 0
    while rest < COUNT_AT_MOST:
        page = client.call("list_events", Limit=1000, **request)
        rest += len(page.get("Events", []))
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return rest


def _say_left_out(found: list[dict[str, Any]], rest: int, limit: int) -> None:
    """On stderr: the events past --limit that were not shown, and how to see them."""
    last = found[-1]
    when = f"--since {_iso(last['Time'])} (the time of the last shown)" if isinstance(last.get("Time"), datetime) \
        else "--since TIME"
    more = f"more than {COUNT_AT_MOST}" if rest >= COUNT_AT_MOST else str(rest)
    typer.echo(f"showing the first {len(found)} events (oldest first); {more} later one{'s' if rest != 1 else ''} "
               f"left out: see them with {when}, or a larger --limit (now {limit})", err=True)


def events_tail(detail_type: DetailType = None, resource: Resource = None, source: Source = None, since: Since = None,
                count: Annotated[int | None, typer.Option("--count", min=1, help="stop after this many events")] = None,
                interval: Annotated[float, typer.Option("--interval", min=0.05, help="seconds between polls")] = 2.0,
                endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
                region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None,
                as_json: Annotated[bool, typer.Option("--json", help="one JSON object a line")] = False) -> None:
    """Print events as they are written (from now, or --since), until Ctrl-C or --count."""
    request = _filters(detail_type, resource, source)
    after = _iso(_since(since) or datetime.now(UTC))
    shown = 0
    try:
        client = _client(endpoint, credentials, region, ca_bundle)
        while count is None or shown < count:
            page = client.call("list_events", After=after, Limit=1000, **request)
            for event in page.get("Events", []):
                after = str(event["Id"])
                if as_json:
                    sys.stdout.write(json.dumps(_plain(event), default=str) + "\n")
                else:
                    sys.stdout.write(_line(event) + "\n")
                sys.stdout.flush()
                shown += 1
                if count is not None and shown >= count:
                    return
            if not page.get("NextToken"):
                time.sleep(interval)
    except ApiError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def dead_letters(rule: RuleOption = None, target: TargetOption = None, endpoint: Endpoint = DEFAULT_ENDPOINT,
                 credentials: Credentials = DEFAULT_CREDENTIALS, region: Region = DEFAULT_REGION,
                 ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Deliveries given up: the target refused the event, or did not take it within its attempts or age."""
    request = {key: value for key, value in (("Rule", rule), ("TargetId", target)) if value is not None}
    with api_failures():
        letters = _client(endpoint, credentials, region, ca_bundle).call_all("list_dead_letters", "DeadLetters",
                                                                             **request)
    if as_json:
        print_json(letters)
        return
    table = Table("Delivery", "Rule", "Target", "Detail type", "Attempts", "Since (UTC)")
    table.add_column("Last error", overflow="fold")
    for letter in letters:
        created = letter.get("CreatedAt")
        table.add_row(str(letter["DeliveryId"]), escape(letter.get("Rule") or "-"), escape(letter.get("TargetId") or "-"),
                      escape(letter.get("DetailType", "")), str(letter.get("Attempts", 0)),
                      created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if created else "-",
                      escape(letter.get("LastError") or ""))
    console.print(table)
    if not letters:
        typer.echo("no dead letter", err=True)


def replay(dead: Annotated[bool, typer.Option("--dead", help="the dead letters (all, or of --rule / --target)")] = False,
           delivery: Annotated[list[int] | None, typer.Option("--delivery", metavar="ID",
                                                              help="a delivery to make again (repeat)")] = None,
           rule: RuleOption = None, target: TargetOption = None,
           event: Annotated[list[str] | None, typer.Option("--event", metavar="EVENT-ID",
                                                           help="a past event to send to --rule again (repeat)")] = None,
           since: Since = None,
           until: Annotated[str | None, typer.Option("--until", metavar="TIME",
                                                     help="with --since: events up to then (default now)")] = None,
           endpoint: Endpoint = DEFAULT_ENDPOINT, credentials: Credentials = DEFAULT_CREDENTIALS,
           region: Region = DEFAULT_REGION, ca_bundle: CaBundle = None, as_json: AsJson = False) -> None:
    """Send again: dead letters (--dead), given deliveries (--delivery ID), or past events to a rule (--rule R --since T).

    --dead takes every dead letter, or with --rule (and --target) those of one rule (or target). Past events are those
    the rule's pattern matches, written from --since to --until (default now), or given by --event ID.
    """
    request: dict[str, Any] = {}
    modes = [name for name, given in (("--dead", dead), ("--delivery", bool(delivery)),
                                      ("--since/--event", since is not None or bool(event))) if given]
    if len(modes) != 1:
        raise fail("give one of --dead, --delivery ID, or --rule R with --since TIME or --event ID", code=2)
    if until is not None and since is None:
        raise fail("--until goes with --since", code=2)
    if dead:
        if target is not None and rule is None:
            raise fail("--target goes with --rule", code=2)
        request = {"Rule": rule, "TargetId": target} if rule is not None else {"All": True}
    elif delivery:
        if rule is not None or target is not None:
            raise fail("--delivery names the deliveries itself: leave out --rule and --target", code=2)
        request = {"DeliveryIds": list(delivery)}
    else:
        if rule is None:
            raise fail("replaying past events needs --rule", code=2)
        request = {"Rule": rule, "TargetId": target}
        if event:
            request["EventIds"] = list(event)
            if since is not None:
                raise fail("give --since or --event, not both", code=2)
        else:
            request["From"], request["To"] = _since(since), _since(until)
    request = {key: value for key, value in request.items() if value is not None}
    with api_failures():
        result = _client(endpoint, credentials, region, ca_bundle).call("replay_events", **request)
    if as_json:
        print_json(result)
        return
    replayed = result.get("Replayed", 0)
    typer.echo(f"{replayed} deliver{'ies' if replayed != 1 else 'y'} queued again" if replayed else
               "nothing to replay", err=not replayed)


def _filters(detail_type: str | None, resource: str | None, source: str | None) -> dict[str, Any]:
    return {key: value for key, value in (("DetailType", detail_type), ("Resource", resource), ("Source", source))
            if value is not None}


def register(app: typer.Typer) -> None:
    """Add ``list``, ``tail``, ``dead-letters`` and ``replay`` to the ``events`` group."""
    app.command("list")(events_list)
    app.command("tail")(events_tail)
    app.command("dead-letters")(dead_letters)
    app.command("replay")(replay)
