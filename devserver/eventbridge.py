"""EventBridge as the stand-in runs it: PutEvents in, each entry checked as PutEvents checks it, stamped into
EventBridge's envelope and matched against the rules template.yaml declares (AWS::Events::Rule; moto's own
EventPattern does the matching). Each matching rule's target is an SQS queue: the envelope is sent there, as
EventBridge sends it (the body is the event), and the queue's event source mapping hands it to the function
(devserver/queues.py). Right after PutEvents the mappings run until idle, so the answer comes after the first
attempt, as before; a record that failed comes back when its backoff ends on the stand-in's clock
(devserver/clock.py: `make dev` polls in real time, drills advance the clock). Also what the service published
on its buses (`/_local/published`) and what was dead-lettered (`/_local/dead-letters`). See docs/rewards.md.

moto delivers to SQS targets itself (capture_published in devserver/aws.py uses that), but its envelope keeps the
entry's `Time` as the request carried it (boto3 sends a number) rather than EventBridge's `2024-05-01T10:00:00Z`,
so the envelope is built here.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devserver.lambdas import LocalFunction
from devserver.queues import EventSourceMappings, queue_name, queue_url
from devserver.stack import ACCOUNT, REGION, Stack

_router_lock = threading.Lock()


@dataclass(frozen=True)
class Route:
    rule: str
    bus_name: str
    queue: str  # the target queue's name
    dead_letter: str | None  # the target queue's dead-letter queue (its RedrivePolicy)
    pattern: Any  # moto.events.models.EventPattern

    @property
    def bus(self) -> str:
        return _bus_name(self.bus_name)

    def dead_letter_queue(self) -> str | None:
        return self.dead_letter


def _bus_name(name_or_arn: str | None) -> str:
    if not name_or_arn:
        return "default"
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def _entry_error(code: str, message: str) -> dict[str, str]:
    return {"ErrorCode": code, "ErrorMessage": message}


def _event_time(value: Any) -> str | None:
    """An entry's Time as EventBridge writes `time` (UTC, seconds, Z); None when it is not a time."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRouter:
    def __init__(self, functions: dict[str, LocalFunction], buses: list[str], stack: Stack | None = None) -> None:
        from moto.events.models import EventPattern

        stack = stack or Stack()
        direct = [
            f"{function.spec.logical_id}: {event.type}"
            for function in functions.values()
            for event in function.spec.events
            if event.type in {"EventBridgeRule", "CloudWatchEvent"}
        ]
        if direct:  # a rule invoking a function retries a failed handler twice, then drops it: queue it instead
            raise ValueError(f"rules must target a queue, not a function (docs/rewards.md): {', '.join(direct)}")
        queues = {k: stack.resolve(v) for k, v in stack.of_type("AWS::SQS::Queue").items()}
        self.routes = []
        for rule in stack.rules():
            for target in rule["targets"]:
                queue = queue_name(target["Arn"])
                if queue not in queues:
                    raise ValueError(f"{rule['name']} targets {target['Arn']}, not a queue of the template")
                redrive = queues[queue].get("RedrivePolicy") or {}
                dead = queue_name(redrive["deadLetterTargetArn"]) if redrive.get("deadLetterTargetArn") else None
                pattern = EventPattern.load(json.dumps(rule["pattern"]))
                self.routes.append(Route(rule["name"], rule["bus"], queue, dead, pattern))
        self.mappings = EventSourceMappings(functions)
        self.buses = buses
        self.known_buses = {"default", *buses, *(route.bus for route in self.routes)}
        self._lock = threading.Lock()
        self._published: list[dict[str, Any]] = []
        self._dead_letters: list[dict[str, Any]] = []

    # ---- PutEvents ----

    def put_events(self, body: Any) -> tuple[int, dict[str, Any]]:
        entries = body.get("Entries") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            return 400, {"__type": "ValidationException", "message": "Entries must be a non-empty list of entries"}
        results = [self._put(entry) for entry in entries]
        self.mappings.run_until_idle()  # the first attempt before the answer; retries on the clock
        failed = sum(1 for result in results if "ErrorCode" in result)
        return 200, {"FailedEntryCount": failed, "Entries": results}

    def _put(self, entry: Any) -> dict[str, str]:
        """One entry, checked as PutEvents checks it; a bad one fails alone and never stops the others."""
        if not isinstance(entry, dict):
            return _entry_error("InvalidArgument", "Each entry must be an object.")
        for name in ("Source", "DetailType", "Detail"):
            if not isinstance(entry.get(name), str) or not entry[name]:
                return _entry_error(
                    "InvalidArgument", f"Parameter {name} is not valid. Reason: {name} is a required argument."
                )
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            detail = None
        if not isinstance(detail, dict):
            return _entry_error("MalformedDetail", "Detail is malformed.")
        time = (
            _event_time(entry["Time"]) if entry.get("Time") is not None else _event_time(datetime.now(UTC).isoformat())
        )
        if time is None:
            return _entry_error("InvalidArgument", "Parameter Time is not valid.")
        resources = entry.get("Resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            return _entry_error("InvalidArgument", "Parameter Resources is not valid.")
        bus = _bus_name(entry.get("EventBusName") if isinstance(entry.get("EventBusName"), str) else None)
        if bus not in self.known_buses:
            return _entry_error("ResourceNotFoundException", f"Event bus {bus} does not exist.")
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": ACCOUNT,
            "time": time,
            "region": REGION,
            "resources": resources,
            "detail": detail,
        }
        for route in self.routes:
            if route.bus == bus and route.pattern.matches_event(envelope):
                self._deliver(route, envelope)
        return {"EventId": envelope["id"]}

    def _deliver(self, route: Route, envelope: dict[str, Any]) -> None:
        """As EventBridge delivers to an SQS target: the event is the message body."""
        import boto3

        boto3.client("sqs", region_name=REGION).send_message(
            QueueUrl=queue_url(route.queue), MessageBody=json.dumps(envelope)
        )

    # ---- what came out ----

    def _drain(self, queue: str) -> list[dict[str, Any]]:
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        url = queue_url(queue)
        drained: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            messages = answer.get("Messages", [])
            if not messages:
                return drained
            drained.extend(messages)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def published(self) -> list[dict[str, Any]]:
        """Every event the service put on its buses, oldest first (kept by a catch-all rule: devserver/aws.py)."""
        from devserver.aws import published_queue

        with self._lock:
            for bus in self.buses:
                for message in self._drain(published_queue(bus)):
                    event = json.loads(message["Body"])
                    self._published.append(
                        {
                            "Source": event["source"],
                            "DetailType": event["detail-type"],
                            "Detail": event["detail"],
                            "Time": event["time"],
                            "EventBusName": bus,
                            "EventId": event["id"],
                        }
                    )
            return list(self._published)

    def dead_letters(self) -> list[dict[str, Any]]:
        """What the rules' functions could not take: malformed events, and records that failed for a day."""
        queues = sorted({q for q in (route.dead_letter_queue() for route in self.routes) if q})
        with self._lock:
            for queue in queues:
                for message in self._drain(queue):
                    try:
                        body: Any = json.loads(message["Body"])
                    except ValueError:
                        body = message["Body"]
                    attributes = {k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()}
                    self._dead_letters.append({"queue": queue, "body": body, "attributes": attributes})
            return list(self._dead_letters)


def router(local: Any) -> EventRouter:
    """The one router of a running stand-in (made on first use)."""
    with _router_lock:
        found = getattr(local, "_event_router", None)
        if found is None:
            found = EventRouter(local.functions, list(local.stack.of_type("AWS::Events::EventBus")), local.stack)
            local._event_router = found
        return found
