"""certsmith's event log operations: the events with their delivery states, the dead letters, and replays."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ...domain.errors import ValidationError
from ...services.context import Caller
from ...services.events.event_log import DeadLetter, DeliveryState, EventEntry
from ...services.wiring import Container
from .pca import Handler

__all__ = ["delivery_operations"]


def _delivery_shape(state: DeliveryState) -> dict[str, Any]:
    return {"DeliveryId": state.delivery_id, "Rule": state.rule, "TargetId": state.target_id, "State": state.state,
            "Attempts": state.attempts, "LastError": state.last_error, "NextAttemptAt": state.next_attempt_at,
            "DeliveredAt": state.delivered_at}


def _event_shape(entry: EventEntry) -> dict[str, Any]:
    envelope = entry.envelope
    return {"Id": entry.id, "EventId": envelope["id"], "Source": envelope["source"],
            "DetailType": envelope["detail-type"], "Resources": list(envelope["resources"]),
            "Time": datetime.fromisoformat(envelope["time"]), "Dispatched": entry.dispatched,
            "Event": json.dumps(envelope, separators=(",", ":"), ensure_ascii=False),
            "Deliveries": [_delivery_shape(d) for d in entry.deliveries]}


def _dead_letter_shape(letter: DeadLetter) -> dict[str, Any]:
    return {"DeliveryId": letter.delivery_id, "Rule": letter.rule, "TargetId": letter.target_id,
            "EventId": letter.event_id, "DetailType": letter.detail_type, "Attempts": letter.attempts,
            "LastError": letter.last_error, "CreatedAt": letter.created_at}


def list_events(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    entries, token = c.event_log.events(caller, source=req.get("Source"), detail_type=req.get("DetailType"),
                                        resource=req.get("Resource"), after=req.get("After"), limit=req.get("Limit"),
                                        token=req.get("NextToken"))
    return {"Events": [_event_shape(e) for e in entries], "NextToken": token}


def list_dead_letters(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    letters, token = c.event_log.dead_letters(caller, rule=req.get("Rule"), target_id=req.get("TargetId"),
                                              limit=req.get("MaxResults"), token=req.get("NextToken"))
    return {"DeadLetters": [_dead_letter_shape(d) for d in letters], "NextToken": token}


def replay_events(c: Container, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
    """Dead letters (DeliveryIds, Rule [+ TargetId] or All) back in their queues, or past events (Rule with EventIds
    or From/To) queued again to a rule's targets."""
    if any(req.get(key) is not None for key in ("EventIds", "From", "To")):
        for key in ("DeliveryIds", "All"):
            if req.get(key) is not None:
                raise ValidationError(f"{key}: is not taken with EventIds or From/To (those replay past events to a Rule)",
                                      field=key)
        if req.get("Rule") is None:
            raise ValidationError("Rule: replaying past events needs the rule to send them to", field="Rule")
        if req.get("To") is not None and req.get("From") is None:
            raise ValidationError("From: is required with To", field="From")
        ids = c.event_log.replay_past(caller, req["Rule"], target_id=req.get("TargetId"), event_ids=req.get("EventIds"),
                                      start=req.get("From"), end=req.get("To"))
    else:
        ids = c.event_log.replay_dead(caller, delivery_ids=req.get("DeliveryIds"), rule=req.get("Rule"),
                                      target_id=req.get("TargetId"), everything=bool(req.get("All")))
    if ids:
        c.signal.notify()  # local workers look for due deliveries now
    return {"Replayed": len(ids), "DeliveryIds": ids[:1000]}


def delivery_operations() -> dict[str, Handler]:
    return {
        "ListEvents": list_events,
        "ListDeadLetters": list_dead_letters,
        "ReplayEvents": replay_events,
    }
