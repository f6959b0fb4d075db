"""Reads template.yaml: the resources, functions, events and environment the local stand-in recreates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
# Ids AWS makes up when it creates a resource, as the stand-in's moto made them (devserver/aws.py provision):
# (logical id, attribute) -> value. Without an entry, a resource's attribute is its logical id.
PHYSICAL: dict[tuple[str, str], str] = {}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags turned into their long form."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class FunctionEvent:
    type: str
    expression: str | None = None
    pattern: dict[str, Any] | None = None
    input: str | None = None
    bus: str | None = None
    # Where the rule puts events it could not deliver (its DeadLetterConfig), as an ARN.
    dead_letter: str | None = None
    # An SQS event source: the queue's ARN, the batch size and whether the function reports failed items.
    queue: str | None = None
    batch_size: int = 10
    report_failures: bool = False
    # An HttpApi route: its path, method and authorizer (`JWT`, `AWS_IAM` or `NONE`).
    path: str | None = None
    method: str | None = None
    authorizer: str | None = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"type": self.type}
        if self.expression is not None:
            described["expression"] = self.expression
        if self.pattern is not None:
            described["pattern"] = self.pattern
        if self.path is not None:
            described.update(path=self.path, method=self.method, authorizer=self.authorizer)
        return described


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int
    events: list[FunctionEvent] = field(default_factory=list)
    dead_letter_queue: str | None = None
    # Lambda retries an asynchronous invocation that raised this many times (EventInvokeConfig; default 2).
    async_retries: int = 2


class Stack:
    """template.yaml, with intrinsic functions resolved to local names (a resource's name is its logical id)."""

    def __init__(self, parameters: dict[str, str] | None = None, path: Path = TEMPLATE) -> None:
        self.document: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
        self.resources: dict[str, Any] = self.document["Resources"]
        self.directory = path.resolve().parent
        defaults = {k: str(v.get("Default", "")) for k, v in self.document.get("Parameters", {}).items()}
        self.parameters = {**defaults, **(parameters or {})}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v.get("Properties", {}) for k, v in self.resources.items() if v["Type"] == kind}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self._get_att(*arg)
            if key == "Fn::Sub":
                # The long form, [text, {name: value}], is what SAM's policy templates expand to
                text, names = (arg, {}) if isinstance(arg, str) else arg
                values = {name: self.resolve(v) for name, v in names.items()}
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(values[m.group(1)] if m.group(1) in values else self._sub_name(m.group(1))),
                    text,
                )
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self._condition(condition) else when_false)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
            if key == "Fn::Transform" and arg.get("Name") == "AWS::Include":
                return self.resolve(self.include(arg["Parameters"]["Location"]))
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def include(self, location: str) -> Any:
        """A snippet AWS::Include names by a local path (sam package uploads it; we read it in place)."""
        path = (self.directory / location).resolve()
        if not path.is_relative_to(self.directory):
            raise ValueError(f"AWS::Include of {location} reaches outside the project")
        return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass

    def _condition(self, name: str) -> bool:
        return self._holds(self.document.get("Conditions", {})[name])

    def _holds(self, definition: dict[str, Any]) -> bool:
        """A condition's value: Fn::Equals, Fn::Not, Fn::And, Fn::Or, or another condition by name."""
        ((key, arg),) = definition.items()
        if key == "Fn::Equals":
            left, right = arg
            return bool(self.resolve(left) == self.resolve(right))
        if key == "Fn::Not":
            return not self._holds(arg[0])
        if key == "Fn::And":
            return all(self._holds(part) for part in arg)
        if key == "Fn::Or":
            return any(self._holds(part) for part in arg)
        if key == "Condition":
            return self._condition(arg)
        raise ValueError(f"the stand-in does not evaluate {key} in a condition")

    def _ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": "local"}
        if name in pseudo:
            return pseudo[name]
        kind = self.resources.get(name, {}).get("Type")
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind == "AWS::AppSync::ApiKey":  # Ref is the key's ARN
            api = self.resolve(self.resources[name]["Properties"]["ApiId"])
            return f"arn:aws:appsync:{REGION}:{ACCOUNT}:apis/{api}/apikey/{self._get_att(name, 'ApiKeyId')}"
        return name

    def _get_att(self, name: str, attribute: str) -> str:
        kind = self.resources.get(name, {}).get("Type", "")  # SAM-generated resources are not in the file
        if (name, attribute) in PHYSICAL:
            return PHYSICAL[(name, attribute)]
        if kind == "AWS::AppSync::GraphQLApi" and attribute == "Arn":
            return f"arn:aws:appsync:{REGION}:{ACCOUNT}:apis/{self._get_att(name, 'ApiId')}"
        if attribute == "Arn":
            service = {
                "AWS::SQS::Queue": "sqs",
                "AWS::Serverless::Function": "lambda",
                "AWS::Events::EventBus": "events",
                "AWS::Events::Rule": "events",
            }
            prefix = service.get(kind, "dynamodb")
            events = f"rule/{name}" if kind == "AWS::Events::Rule" else f"event-bus/{name}"
            resource = {"sqs": name, "lambda": f"function:{name}", "events": events}.get(prefix, f"table/{name}")
            return f"arn:aws:{prefix}:{REGION}:{ACCOUNT}:{resource}"
        return name

    def _sub_name(self, expression: str) -> str:
        if "." in expression:
            return self._get_att(*expression.split(".", 1))
        return self._ref(expression)

    # ---- what the stand-in needs ----

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.document.get("Globals", {}).get("Function", {})
        shared_env = self.resolve(globals_.get("Environment", {}).get("Variables", {}))
        found: dict[str, FunctionSpec] = {}
        for logical_id, props in self.of_type("AWS::Serverless::Function").items():
            module, handler = props["Handler"].rsplit(".", 1)
            env = {**shared_env, **self.resolve(props.get("Environment", {}).get("Variables", {}))}
            dlq = props.get("DeadLetterQueue")
            found[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=ROOT / props["CodeUri"],
                module=module,
                handler=handler,
                environment={k: str(v) for k, v in env.items()},
                memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                timeout_s=int(props.get("Timeout", globals_.get("Timeout", 3))),
                events=[self._event(e) for e in (props.get("Events") or {}).values()],
                dead_letter_queue=self.resolve(dlq["TargetArn"]) if dlq else None,
                async_retries=int((props.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts", 2)),
            )
        return found

    def _event(self, event: dict[str, Any]) -> FunctionEvent:
        kind = event["Type"]
        props = self.resolve(event.get("Properties", {}))
        if kind == "Schedule":
            return FunctionEvent(kind, expression=props["Schedule"], input=props.get("Input"))
        if kind == "ScheduleV2":
            return FunctionEvent(kind, expression=props["ScheduleExpression"], input=props.get("Input"))
        if kind in {"EventBridgeRule", "CloudWatchEvent"}:
            dead_letter = (props.get("DeadLetterConfig") or {}).get("Arn")
            return FunctionEvent(kind, pattern=props["Pattern"], bus=props.get("EventBusName"), dead_letter=dead_letter)
        if kind == "SQS":
            return FunctionEvent(
                kind,
                queue=props["Queue"],
                batch_size=int(props.get("BatchSize", 10)),
                report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            )
        if kind == "HttpApi":
            return FunctionEvent(
                kind,
                path=props["Path"],
                method=str(props.get("Method", "ANY")).upper(),
                authorizer=self._http_authorizer(props.get("ApiId"), (props.get("Auth") or {}).get("Authorizer")),
            )
        return FunctionEvent(kind)

    def _http_authorizer(self, api: Any, name: str | None) -> str:
        """What checks a route's caller: `AWS_IAM`, `NONE`, or `JWT` for an authorizer with a JwtConfiguration
        (the API's DefaultAuthorizer when the route names none, as SAM applies it)."""
        auth = (self.resources.get(str(api), {}).get("Properties") or {}).get("Auth") or {}
        name = name or auth.get("DefaultAuthorizer") or "NONE"
        if name in {"AWS_IAM", "NONE"}:
            return name
        authorizer = (auth.get("Authorizers") or {}).get(name)
        if authorizer is None or "JwtConfiguration" not in authorizer:
            raise ValueError(f"the stand-in serves JWT, AWS_IAM and NONE routes only, not authorizer {name}")
        return "JWT"

    def http_routes(self) -> dict[tuple[str, str], tuple[str, FunctionEvent]]:
        """(method, path) -> (function, its HttpApi event): the routes of the HTTP API door (template.yaml)."""
        return {
            (event.method or "ANY", event.path): (name, event)
            for name, spec in self.functions().items()
            for event in spec.events
            if event.type == "HttpApi" and event.path
        }

    def rules(self) -> list[dict[str, Any]]:
        """The AWS::Events::Rule resources, resolved: name, bus, pattern and targets."""
        return [
            {
                "name": logical_id,
                "bus": props.get("EventBusName") or "default",
                "pattern": props.get("EventPattern"),
                "targets": props.get("Targets") or [],
            }
            for logical_id, props in ((k, self.resolve(v)) for k, v in self.of_type("AWS::Events::Rule").items())
        ]

    def layer_dirs(self) -> list[Path]:
        return [ROOT / p["ContentUri"] for p in self.of_type("AWS::Serverless::LayerVersion").values()]

    def environment(self) -> dict[str, str]:
        """All functions' variables; they must agree, since locally they share one process."""
        merged: dict[str, str] = {}
        for spec in self.functions().values():
            for key, value in spec.environment.items():
                if merged.get(key, value) != value:
                    raise ValueError(f"functions disagree on {key}; the local stand-in shares one environment")
                merged[key] = value
        return merged

    def resolvers(self) -> dict[tuple[str, str], str]:
        """(type, field) -> the function logical id its data source invokes."""
        sources = self.of_type("AWS::AppSync::DataSource")
        by_name = {self.resolve(p["Name"]): p for p in sources.values()}
        found = {}
        for props in self.of_type("AWS::AppSync::Resolver").values():
            source_name = props["DataSourceName"]
            if isinstance(source_name, dict):  # !GetAtt X.Name
                source_name = self.resolve(sources[source_name["Fn::GetAtt"][0]]["Name"])
            arn = by_name[source_name]["LambdaConfig"]["LambdaFunctionArn"]
            found[(props["TypeName"], props["FieldName"])] = arn["Fn::GetAtt"][0]
        return found

    def api_settings(self) -> dict[str, Any]:
        (props,) = self.of_type("AWS::AppSync::GraphQLApi").values()
        return self.resolve(props)

    def schema_path(self) -> Path:
        (props,) = self.of_type("AWS::AppSync::GraphQLSchema").values()
        return ROOT / props["DefinitionS3Location"]


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
