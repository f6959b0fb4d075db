"""The stand-in's clock for SQS: wall time plus an offset a drill moves forward (`advance`).

moto's SQS reads the time for visibility timeouts (ReceiveMessage, ChangeMessageVisibility), delays, retention
and so for the redrive to the dead-letter queue after maxReceiveCount; `install` makes it read this clock. In
`make dev` the offset stays 0 (real time); a drill advances it, and a retry due at +15 minutes is due at once.
Nothing else is on it: DynamoDB, the functions' `datetime.now()` and the schedules keep the wall clock.
"""

from __future__ import annotations

import threading
import time


class SimulatedClock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, as the stand-in's SQS sees them."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


CLOCK = SimulatedClock()


def install() -> None:
    """moto's SQS on CLOCK (it imports unix_time and unix_time_millis into its models module)."""
    import moto.sqs.models as sqs_models

    if getattr(sqs_models.unix_time, "_simulated", False):
        return

    def unix_time(*_: object) -> float:
        return CLOCK.now()

    def unix_time_millis(*_: object) -> float:
        return CLOCK.now() * 1000

    unix_time._simulated = True  # type: ignore[attr-defined]
    sqs_models.unix_time = unix_time  # type: ignore[assignment]
    sqs_models.unix_time_millis = unix_time_millis  # type: ignore[assignment]
