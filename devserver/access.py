"""IAM enforced locally: each AWS request a function makes is allowed only if that function's role allows it.

On AWS a function's requests are signed with its execution role, and DynamoDB, SES, EventBridge and SQS refuse
what the role's policies do not allow. Locally every request would succeed, so a missing grant would show up
only once deployed. Here, while a function runs (`LocalFunction.invoke`: `make dev` and the tests alike), each
request is checked before moto sees it:

- **The policies are AWS's.** SAM's own translator (`samtranslator`, which `sam build` and CloudFormation's
  transform use) turns template.yaml into IAM roles: inline statements, SAM policy templates, managed policy
  names, and what SAM adds itself (a `DeadLetterQueue`'s `sqs:SendMessage`, `Tracing`'s X-Ray policy, the basic
  execution role). The translation is cached by the template's hash (`.aws-sam/local-iam/`); the statements are
  then resolved with the stand-in's names (devserver/stack.py). AWS managed policies come from moto's copy.
- **A request needs what AWS says it needs** (`required`): each item of `TransactWriteItems` needs the item's
  own action on its table (`Put` -> `dynamodb:PutItem`, `Update` -> `UpdateItem`, `Delete` -> `DeleteItem`,
  `ConditionCheck` -> `ConditionCheckItem`), `TransactGetItems` needs `GetItem`, `BatchGetItem` and
  `BatchWriteItem` need themselves on every table named, a `Query` or `Scan` of an index needs the index
  (`table/T/index/I`), `PutEvents` each entry's bus, an SES send the sender identity, the template and the
  configuration set, and SQS the queue (its batch operations need the single action: `sqs:SendMessage`).
- **The evaluator is moto's** (`moto.iam.access_control.IAMPolicy`): an explicit Deny wins, else any Allow,
  else the request is refused. Wildcards reach it as IAM means them (`*` and `?`, all else literal; actions
  case-insensitive); a policy using what it does not evaluate (conditions, NotResource, policy variables)
  stops the stand-in at start rather than being judged wrongly.
- **A refused request fails as AWS fails it**: the client raises botocore's `ClientError`, parsed by botocore
  from AWS's error response (DynamoDB and EventBridge `AccessDeniedException`; SQS and SES `AccessDenied`, HTTP
  403), with AWS's message: `User: arn:aws:sts::123456789012:assumed-role/ApiFunctionRole/ApiFunction is not
  authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:eu-west-1:123456789012:table/
  CodesTable because no identity-based policy allows the dynamodb:UpdateItem action`. It is not retried.

Requests made outside any function (provisioning, test set-up, the stand-in's own reads of its queues) are not
checked. `REFERRALS_LOCAL_IAM=off` turns the check off, for a moment's debugging only (docs/local.md).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from devserver.stack import ACCOUNT, REGION, ROOT, Stack

CACHE_DIR = ROOT / ".aws-sam" / "local-iam"
_PARAMS = "referrals.local-iam.params"  # where a request's own parameters wait for the check (botocore's context)
_AWS_MANAGED = "arn:aws:iam::aws:policy/"

_log = logging.getLogger(__name__)
_caller: ContextVar[str | None] = ContextVar("referrals_local_iam_caller", default=None)


class UnsupportedPolicy(ValueError):
    """A policy the local check cannot judge faithfully: it stops the stand-in rather than guess."""


# ---------- who is calling ----------


def caller() -> str | None:
    """The logical id of the function whose code is running in this thread, if any."""
    return _caller.get()


@contextlib.contextmanager
def acting_as(function: str) -> Iterator[None]:
    """AWS requests made inside run with `function`'s role (a nested invocation restores the outer one after)."""
    token = _caller.set(function)
    try:
        yield
    finally:
        _caller.reset(token)


def runs_as_role(invoke: Callable[..., Any]) -> Callable[..., Any]:
    """For `LocalFunction.invoke`: the function's init and handler both run with its role, as on Lambda."""

    @functools.wraps(invoke)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with acting_as(self.spec.logical_id):
            return invoke(self, *args, **kwargs)

    return wrapper


def enabled() -> bool:
    return os.environ.get("REFERRALS_LOCAL_IAM", "on").strip().lower() not in {"off", "0", "false", "no"}


# ---------- the roles, as SAM makes them ----------


@dataclass(frozen=True)
class Role:
    function: str
    name: str
    documents: tuple[dict[str, Any], ...]

    @property
    def principal(self) -> str:
        """Who AWS names in a refusal: the role's session, which Lambda names after the function."""
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.name}/{self.function}"

    @functools.cached_property
    def _policies(self) -> list[Any]:
        from moto.iam.access_control import IAMPolicy

        return [IAMPolicy(json.dumps(_for_moto(document))) for document in self.documents]

    def decide(self, action: str, resource: str) -> str:
        """'allow', 'deny' (an explicit Deny) or 'implicit' (nothing allows it), as IAM evaluates one role."""
        from moto.iam.access_control import PermissionResult

        allowed = False
        for policy in self._policies:
            result = policy.is_action_permitted(action.lower(), resource)
            if result == PermissionResult.DENIED:
                return "deny"
            allowed = allowed or result == PermissionResult.PERMITTED
        return "allow" if allowed else "implicit"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str) -> str:
    """An IAM wildcard pattern as moto's matcher must get it: it only turns `*` into `.*` and reads a regex."""
    return "".join(c if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _for_moto(document: dict[str, Any]) -> dict[str, Any]:
    prepared = []
    for statement in _as_list(document.get("Statement", [])):
        statement = dict(statement)
        for key in ("Action", "NotAction"):
            if key in statement:
                statement[key] = [_glob(str(action).lower()) for action in _as_list(statement[key])]
        statement["Resource"] = [_glob(str(resource)) for resource in _as_list(statement["Resource"])]
        prepared.append(statement)
    return {"Version": document.get("Version", "2012-10-17"), "Statement": prepared}


def _check_supported(function: str, document: dict[str, Any]) -> None:
    for statement in _as_list(document.get("Statement", [])):
        where = f"{function}'s role, statement {statement.get('Sid') or statement}"
        unsupported = {"Condition", "NotResource", "Principal", "NotPrincipal"} & set(statement)
        if unsupported:
            raise UnsupportedPolicy(f"{where}: the local IAM check does not evaluate {sorted(unsupported)}")
        if "Resource" not in statement or not ({"Action", "NotAction"} & set(statement)):
            raise UnsupportedPolicy(f"{where}: a statement needs Action (or NotAction) and Resource")
        if statement.get("Effect") not in {"Allow", "Deny"}:
            raise UnsupportedPolicy(f"{where}: Effect must be Allow or Deny")
        values = _as_list(statement["Resource"]) + _as_list(statement.get("Action", statement.get("NotAction")))
        for value in values:
            if not isinstance(value, str) or "${" in value:
                raise UnsupportedPolicy(f"{where}: cannot evaluate {value!r} (unresolved, or a policy variable)")


def translated(stack: Stack) -> dict[str, Any]:
    """The IAM part of SAM's translation of the template (functions' roles, roles, policies), cached by hash."""
    import samtranslator

    source = json.dumps([stack.document, samtranslator.__version__, ACCOUNT, REGION], sort_keys=True, default=str)
    cached = CACHE_DIR / f"{hashlib.sha256(source.encode()).hexdigest()[:24]}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    kept = _translate(stack)
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{uuid.uuid4().hex}.tmp")
        partial.write_text(json.dumps(kept))
        os.replace(partial, cached)  # atomic: concurrent test workers never read half a file
    except OSError:
        pass  # a read-only tree still works, only slower
    return kept


def _translate(stack: Stack) -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(stack.document)
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for name in ("CodeUri", "ContentUri"):  # as `sam package` leaves them: the code is not the policies' concern
            if isinstance(properties.get(name), str):
                properties[name] = f"s3://local/{properties[name]}"
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": "local"}
    # The region comes from the session; the managed-policy names SAM bundles suffice (an empty map: never ask IAM)
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    output = translator.translate(document, parameter_values=pseudo, get_managed_policy_map=dict)
    kinds = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
    kept: dict[str, Any] = {}
    managed: dict[str, Any] = {}
    for name, resource in output["Resources"].items():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Lambda::Function":
            kept[name] = {"Type": resource["Type"], "Properties": {"Role": properties.get("Role")}}
        elif resource["Type"] in kinds:
            kept[name] = {"Type": resource["Type"], "Properties": properties}
        for arn in properties.get("ManagedPolicyArns") or []:
            arn = stack.resolve(arn)
            found = _aws_managed().get(arn.rsplit("/", 1)[-1]) if arn.startswith(_AWS_MANAGED) else None
            if found:  # AWS's own, from moto's copy; kept with the translation (reading them all takes a while)
                managed[arn] = found["Document"]
    return {"Resources": kept, "AwsManagedPolicies": managed}


@functools.cache
def _aws_managed() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def _managed_policy(arn: str, translation: dict[str, Any], stack: Stack, function: str) -> dict[str, Any]:
    resources = translation["Resources"]
    if resources.get(arn, {}).get("Type") == "AWS::IAM::ManagedPolicy":  # a !Ref to one the template declares
        return stack.resolve(resources[arn]["Properties"]["PolicyDocument"])
    if arn in translation["AwsManagedPolicies"]:
        return translation["AwsManagedPolicies"][arn]
    raise UnsupportedPolicy(f"{function}'s role: cannot read managed policy {arn} locally")


def roles(stack: Stack) -> dict[str, Role]:
    """Each function's role: its name and its policy documents, resolved with the stand-in's names."""
    translation = translated(stack)
    resources = translation["Resources"]
    found: dict[str, Role] = {}
    for function, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_ref = resource["Properties"].get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            raise UnsupportedPolicy(f"{function}: its role is not one the template declares ({role_ref!r})")
        role_id = role_ref["Fn::GetAtt"][0]
        role = resources[role_id]["Properties"]
        documents = [stack.resolve(policy["PolicyDocument"]) for policy in role.get("Policies") or []]
        for arn in role.get("ManagedPolicyArns") or []:
            documents.append(_managed_policy(stack.resolve(arn), translation, stack, function))
        for policy in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
            if {"Ref": role_id} in (policy.get("Roles") or []):
                documents.append(stack.resolve(policy["PolicyDocument"]))
        for document in documents:
            _check_supported(function, document)
        found[function] = Role(function, stack.resolve(role.get("RoleName")) or role_id, tuple(documents))
    return found


_roles: dict[str, Role] | None = None


def enforce(stack: Stack) -> None:
    """Check functions' requests against this stack's roles from now on (the stand-in calls it as it provisions)."""
    global _roles
    _roles = roles(stack)
    for each in _roles.values():
        each.decide("sts:GetCallerIdentity", "*")  # evaluators ready now, not on the first request


def role(function: str) -> Role:
    if _roles is None:
        enforce(Stack())
    assert _roles is not None
    # A function the template does not declare has no role, so nothing it asks is allowed
    return _roles.get(function) or Role(function, f"{function}Role", ())


# ---------- what a request needs ----------


def _table(name: str, region: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"


def _queue(url_or_name: str, region: str) -> str:
    if url_or_name.startswith("arn:"):
        return url_or_name
    parts = url_or_name.rstrip("/").split("/")
    account, name = (parts[-2], parts[-1]) if "://" in url_or_name else (ACCOUNT, parts[-1])
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _bus(name: str | None, region: str) -> str:
    name = name or "default"
    return name if name.startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{name}"


_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
# SQS authorises a batch with the single action: SendMessageBatch needs sqs:SendMessage
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_SES_SENDS = {"SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail"}


def required(service: str, operation: str, params: dict[str, Any], region: str = REGION) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs a request needs, in the request's order; each must be allowed."""
    needs: list[tuple[str, str]] = []
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                for kind, request in item.items():
                    needs.append((f"dynamodb:{_TRANSACT_WRITE[kind]}", _table(request["TableName"], region)))
        elif operation == "TransactGetItems":
            needs += [
                ("dynamodb:GetItem", _table(i["Get"]["TableName"], region)) for i in params.get("TransactItems", [])
            ]
        elif operation in {"BatchGetItem", "BatchWriteItem"}:
            needs += [(f"dynamodb:{operation}", _table(table, region)) for table in params.get("RequestItems", {})]
        elif "TableName" in params:
            table = _table(params["TableName"], region)
            index = params.get("IndexName") if operation in {"Query", "Scan"} else None
            needs.append((f"dynamodb:{operation}", f"{table}/index/{index}" if index else table))
        else:
            needs.append((f"dynamodb:{operation}", "*"))
    elif service == "sqs":
        target = params.get("QueueUrl") or params.get("QueueName")
        needs.append((f"sqs:{_SQS_BATCH.get(operation, operation)}", _queue(target, region) if target else "*"))
    elif service == "events" and operation == "PutEvents":
        needs += [("events:PutEvents", _bus(entry.get("EventBusName"), region)) for entry in params.get("Entries", [])]
    elif service == "ses" and operation in _SES_SENDS:
        ses = f"arn:aws:ses:{region}:{ACCOUNT}"
        sender = parseaddr(params.get("Source", ""))[1]
        needs.append((f"ses:{operation}", params.get("SourceArn") or f"{ses}:identity/{sender}"))
        if params.get("Template") or params.get("TemplateArn"):
            needs.append((f"ses:{operation}", params.get("TemplateArn") or f"{ses}:template/{params['Template']}"))
        if params.get("ConfigurationSetName"):
            needs.append((f"ses:{operation}", f"{ses}:configuration-set/{params['ConfigurationSetName']}"))
    elif service == "cognito-idp" and "UserPoolId" in params:  # a pool's control plane: on the pool
        needs.append(
            (f"cognito-idp:{operation}", f"arn:aws:cognito-idp:{region}:{ACCOUNT}:userpool/{params['UserPoolId']}")
        )
    elif service == "lambda" and operation == "Invoke":  # the HTTP door invoking a resolver's function
        name = str(params.get("FunctionName", ""))
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        needs.append(("lambda:InvokeFunction", arn))
    elif service == "appsync" and "apiId" in params:  # an API's control plane (UpdateApiKey): on the API
        needs.append((f"appsync:{operation}", f"arn:aws:appsync:{region}:{ACCOUNT}:apis/{params['apiId']}"))
    else:  # nothing the functions call: judged on "*", as an action without resource-level permissions is
        needs.append((f"{service}:{operation}", "*"))
    return list(dict.fromkeys(needs))


# ---------- the check, in botocore ----------


class Body(io.BytesIO):
    """A response body botocore can read and stream (a refusal's, a local invocation's)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def refusal(role: Role, action: str, resource: str, explicit: bool, service: str) -> str:
    """AWS's words for a refused request, as each service puts them."""
    if service == "ses":
        return f"User `{role.principal}' is not authorized to perform `{action}' on resource `{resource}'"
    shown = action.lower() if service == "sqs" else action  # SQS names the action in lower case
    if explicit:
        why = "with an explicit deny in an identity-based policy"
    else:
        why = f"because no identity-based policy allows the {shown} action"
    return f"User: {role.principal} is not authorized to perform: {shown} on resource: {resource} {why}"


def _denied(model: Any, url: str, message: str) -> tuple[Any, dict[str, Any]]:
    """The response AWS sends for a refused request, parsed by botocore's own parser for the protocol."""
    from botocore.awsrequest import AWSResponse
    from botocore.endpoint import convert_to_response_dict
    from botocore.parsers import create_parser

    service = model.service_model
    protocol = getattr(service, "resolved_protocol", None) or service.protocol
    request_id = str(uuid.uuid4())
    if protocol in {"query", "ec2", "rest-xml"}:
        status, headers = 403, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{xml_escape(message)}"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    else:
        status, code = 400, "AccessDeniedException"
        headers = {
            "x-amzn-ErrorType": code,
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": request_id,
        }
        if service.metadata.get("awsQueryCompatible") is not None:  # SQS answers with its query-era code
            status, headers["x-amzn-query-error"] = 403, "AccessDenied;Sender"
        body = json.dumps({"__type": f"com.amazon.coral.service#{code}", "Message": message}).encode()
    http = AWSResponse(url, status, headers, Body(body))
    parsed = create_parser(protocol).parse(convert_to_response_dict(http, model), model.output_shape)
    return http, parsed


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS] = params


def check(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
    """AWS's refusal when the running function's role does not allow the request, else None."""
    function = _caller.get()
    if function is None or not enabled():
        return None
    acting = role(function)
    service = model.service_model.service_name
    region = context.get("client_region") or REGION
    for action, resource in required(service, model.name, context.get(_PARAMS) or {}, region):
        verdict = acting.decide(action, resource)
        if verdict != "allow":
            message = refusal(acting, action, resource, verdict == "deny", service)
            _log.warning("refused %s: %s", model.name, message)  # the stand-in's log says what to grant
            return _denied(model, params.get("url", ""), message)
    return None


def install() -> None:
    """Register the check with botocore's built-in handlers, so every client made from now on is checked.

    It runs last among the `before-call` handlers, so the tests' call counter and fault drills still see a
    refused request as a call, as AWS counts one."""
    from botocore.handlers import BUILTIN_HANDLERS, REGISTER_LAST

    if any(spec[1] is check for spec in BUILTIN_HANDLERS):
        return
    BUILTIN_HANDLERS.append(("before-parameter-build", _remember_params))
    BUILTIN_HANDLERS.append(("before-call", check, REGISTER_LAST))
