"""The stand-in is driven by template.yaml: every resource type there is either made locally or named as left
out, with why (devserver/aws.py), and provisioning says in one line what it left out, never silently."""

from __future__ import annotations

from devserver import aws
from devserver.stack import Stack


def test_every_resource_type_is_emulated_or_named_as_left_out():
    kinds = {props["Type"] for props in Stack().resources.values()}
    undecided = kinds - aws.EMULATED - set(aws.NOT_EMULATED)
    assert undecided == set(), f"decide for each: emulate it, or say in NOT_EMULATED why not: {sorted(undecided)}"
    assert all(reason for reason in aws.NOT_EMULATED.values())


def test_provisioning_names_what_it_left_out_in_one_line(aws_env, capsys):
    aws._say_what_is_not_emulated(aws_env)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("local stand-in: not emulated: ")
    assert "AWS::CloudWatch::Alarm" in lines[0] and "AWS::WAFv2::WebACL" in lines[0]
