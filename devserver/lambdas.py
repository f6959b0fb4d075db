"""Lambda as the stand-in runs it: each function's handler in execution environments of its own.

An environment is one import of the function's module and handles one invocation at a time, as
in Lambda. The rest of the process is one, though: the layer's `referrals` package and its caches,
Powertools' loggers (one per service name, their appended keys with them) and metrics (one set per
process). Lambda never shares those between concurrent invocations, so here only one invocation runs
in the process at a time (`_one_at_a_time`); AWS requests were already applied one at a time
(devserver/aws.py). Concurrent callers wait their turn.

An invocation ends as on Lambda when it runs past the function's Timeout (template.yaml, Globals
included): the first AWS request it makes after its deadline raises `InvocationTimedOut` (a
BaseException, so the function's own `except Exception` cannot keep it going) before the request is
sent, and the caller gets Lambda's `Sandbox.Timedout` error, `Task timed out after N.00 seconds`. What
it wrote before stays written. Its environment is discarded, as Lambda resets one after a timeout. A
fault drill may make an AWS call take longer than it does (`elapse`, tests/faults.py `slow`).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from devserver.access import runs_as_role
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
    invocation: Invocation | None = None

    def get_remaining_time_in_millis(self) -> int:
        if self.invocation is not None:
            return max(0, int(self.invocation.remaining() * 1000))
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class InvocationTimedOut(BaseException):
    """Lambda stopped the invocation at its deadline. Raised into the function's code at its first AWS request
    after the deadline; a BaseException, so `except Exception` in the function cannot swallow it."""


@dataclass
class Invocation:
    """The invocation running in this thread: whose, and until when (monotonic seconds)."""

    function_name: str
    request_id: str
    timeout_s: int
    deadline: float
    extra_seconds: float = 0.0  # time AWS calls took beyond the clock's (a drill's `slow` fault)

    def remaining(self) -> float:
        return self.deadline - (time.monotonic() + self.extra_seconds)


_current: ContextVar[Invocation | None] = ContextVar("referrals_local_invocation", default=None)
# One invocation in the process at a time: see the module's docstring. Re-entrant, should a function ever
# invoke another in-process.
_one_at_a_time = threading.RLock()


def current_invocation() -> Invocation | None:
    return _current.get()


def elapse(seconds: float) -> bool:
    """The current invocation's AWS call took `seconds` longer (a drill's slow call); False outside one."""
    invocation = _current.get()
    if invocation is None:
        return False
    invocation.extra_seconds += seconds
    return True


def _stop_at_deadline(request: Any = None, **_: Any) -> None:
    """botocore `before-send`, ahead of every other handler (moto's included): nothing after the deadline is sent."""
    invocation = _current.get()
    if invocation is not None and invocation.remaining() <= 0:
        raise InvocationTimedOut(f"{invocation.function_name} {invocation.request_id}")


def _install_deadline() -> None:
    from botocore.handlers import BUILTIN_HANDLERS

    if not any(spec[1] is _stop_at_deadline for spec in BUILTIN_HANDLERS):
        BUILTIN_HANDLERS.insert(0, ("before-send", _stop_at_deadline))


_install_deadline()  # before any client exists: clients copy the built-in handlers when made


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

    @runs_as_role  # its AWS requests are checked against its role in template.yaml (devserver/access.py)
    def invoke(self, event: Any) -> Any:
        waiting = time.perf_counter()
        with _one_at_a_time:
            # The wait for its turn is other invocations' handler time: counted with the functions' (bench)
            _timing.seconds = getattr(_timing, "seconds", 0.0) + time.perf_counter() - waiting
            return self._invoke(event)

    def _invoke(self, event: Any) -> Any:
        module = self._environment()
        request_id = str(uuid.uuid4())
        invocation = Invocation(
            self.spec.logical_id, request_id, self.spec.timeout_s, time.monotonic() + self.spec.timeout_s
        )
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.spec.logical_id}",
            aws_request_id=request_id,
            deadline=invocation.deadline,
            invocation=invocation,
        )
        started = time.perf_counter()
        token = _current.set(invocation)
        answer: Any = None
        failure: Exception | None = None
        stopped = False
        try:
            answer = getattr(module, self.spec.handler)(event, context)
        except InvocationTimedOut:
            stopped = True
        except Exception as error:
            failure = error
        finally:
            _current.reset(token)
            _timing.seconds = getattr(_timing, "seconds", 0.0) + time.perf_counter() - started
        # Past the deadline, Lambda had stopped it: a late answer or a late error never reaches the caller
        if stopped or invocation.remaining() <= 0:
            raise FunctionError("Sandbox.Timedout", _timed_out_message(invocation)) from failure
        with self._lock:
            self._idle.append(module)
        if failure is not None:
            raise FunctionError(type(failure).__name__, str(failure)) from failure
        return answer


# The functions Lambda's Invoke API reaches locally (`serve_invocations`), by name.
_invocable: dict[str, LocalFunction] = {}


def serve_invocations(functions: dict[str, LocalFunction]) -> None:
    """Lambda's Invoke API for the stack's functions, in this process: a function that invokes another (the HTTP
    door invoking a resolver's function) reaches the other's LocalFunction, with its Timeout, its role and one
    invocation at a time, as Lambda runs it. The caller's role must allow lambda:InvokeFunction on it
    (devserver/access.py checks it first, as Lambda would)."""
    from botocore.handlers import BUILTIN_HANDLERS

    _invocable.clear()
    _invocable.update(functions)
    if not any(spec[1] is _invoke_locally for spec in BUILTIN_HANDLERS):
        BUILTIN_HANDLERS.append(("before-parameter-build.lambda.Invoke", _remember_invocation))
        BUILTIN_HANDLERS.append(("before-call.lambda.Invoke", _invoke_locally))


_INVOCATION = "referrals.local-invoke"  # where the request's own parameters wait (botocore's request context)


def _remember_invocation(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_INVOCATION] = dict(params)


def _invoke_locally(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
    """botocore `before-call` for lambda.Invoke: answers from the local function instead of sending the request."""
    import json

    from botocore.awsrequest import AWSResponse
    from botocore.endpoint import convert_to_response_dict
    from botocore.parsers import create_parser

    from devserver import access

    request = context.get(_INVOCATION) or {}
    function = _invocable.get(str(request.get("FunctionName", "")).rsplit(":", 1)[-1])
    if function is None:
        return None  # not one of the stack's: moto answers (ResourceNotFoundException)
    refused = access.check(model, params, context)  # the caller's role, as Lambda checks it before running
    if refused is not None:
        return refused
    headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
    try:
        payload: Any = function.invoke(json.loads(request.get("Payload") or b"null"))
    except FunctionError as error:
        headers["X-Amz-Function-Error"] = "Unhandled"
        payload = {"errorType": error.error_type, "errorMessage": error.error_message}
    http = AWSResponse(params.get("url", ""), 200, headers, access.Body(json.dumps(payload, default=str).encode()))
    parsed = create_parser(model.service_model.resolved_protocol).parse(
        convert_to_response_dict(http, model), model.output_shape
    )
    return http, parsed


def _timed_out_message(invocation: Invocation) -> str:
    """Lambda's words: `2024-05-01T10:00:03.012Z <request id> Task timed out after 3.00 seconds`."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{now} {invocation.request_id} Task timed out after {invocation.timeout_s:.2f} seconds"
