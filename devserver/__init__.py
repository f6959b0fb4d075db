"""The local stand-in for AWS: moto for the services, plus what moto lacks (AppSync, EventBridge to Lambda).

Everything it serves is derived from `template.yaml` and `schema.graphql`; see docs/local.md.
"""
