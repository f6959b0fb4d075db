"""The AppSync stand-in: the shared GraphQL engine (layers/referrals/graphql_engine.py) with each field's resolver
the local function its data source names in template.yaml, invoked as Lambda runs it (devserver/lambdas.py)."""

from __future__ import annotations

from graphql import GraphQLSchema
from graphql_engine import (
    APPSYNC_PRELUDE,
    GraphQLEngine,
    RequestContext,
    ResolverError,
    load_schema,
    source_ips,
)

from devserver.lambdas import LocalFunction

__all__ = ["APPSYNC_PRELUDE", "AppSyncStandIn", "RequestContext", "ResolverError", "load_schema", "source_ips"]


class AppSyncStandIn(GraphQLEngine):
    def __init__(
        self,
        schema: GraphQLSchema,
        resolvers: dict[tuple[str, str], LocalFunction],
        limits: dict[str, int],
        introspection: bool = True,
        default_auth: str = "AMAZON_COGNITO_USER_POOLS",
    ) -> None:
        super().__init__(
            schema,
            {key: function.invoke for key, function in resolvers.items()},
            limits,
            introspection=introspection,
            default_auth=default_auth,
        )
        self.resolvers = resolvers  # the local functions, by field: drills invoke one directly
