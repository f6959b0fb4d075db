"""Lambda as the stand-in runs it: each function's handler in execution environments of its own.

An environment is one import of the function's module and handles one invocation at a time, as
in Lambda; concurrent invocations get more environments. Module-level state (the Powertools
resolver's current event, say) is therefore never shared between concurrent invocations.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from devserver.stack import ACCOUNT, REGION, FunctionSpec


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class FunctionError(Exception):
    """What Lambda reports when the handler raised: `errorType` and `errorMessage`."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.error_message = message


_timing = threading.local()


def time_in_functions() -> float:
    """Seconds this thread has spent inside function handlers since the last call (then reset)."""
    spent = getattr(_timing, "seconds", 0.0)
    _timing.seconds = 0.0
    return spent


class LocalFunction:
    _serial = itertools.count()

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._idle: list[ModuleType] = []
        self._lock = threading.Lock()
        self.cold_starts = 0

    def _environment(self) -> ModuleType:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        path = self.spec.code_dir / f"{self.spec.module}.py"
        name = f"_lambda_{self.spec.logical_id}_{next(self._serial)}"
        loader_spec = importlib.util.spec_from_file_location(name, path)
        assert loader_spec and loader_spec.loader
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
        self.cold_starts += 1
        return module

    def invoke(self, event: Any) -> Any:
        module = self._environment()
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.spec.logical_id}",
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.spec.timeout_s,
        )
        started = time.perf_counter()
        try:
            return getattr(module, self.spec.handler)(event, context)
        except Exception as error:
            raise FunctionError(type(error).__name__, str(error)) from error
        finally:
            _timing.seconds = getattr(_timing, "seconds", 0.0) + time.perf_counter() - started
            with self._lock:
                self._idle.append(module)
