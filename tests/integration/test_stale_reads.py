"""The stale-reads switch itself (devserver/consistency.py): eventually consistent reads and GSI queries may see
the state of a moment ago; strongly consistent reads, writes, their conditions and TransactGetItems never do."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from devserver import consistency
from devserver.stack import REGION

CUSTOMERS = "CustomersTable"
REFERRALS = "ReferralsTable"
# Simulated time that stands still (tick 0): a write never arrives until the test moves the clock or settles.
# scope "all": these tests read through boto3 themselves, outside any function's invocation.
FROZEN = consistency.Staleness(window=1.0, lagging=1.0, seed="frozen", tick=0.0, scope="all")


@pytest.fixture
def dynamodb(aws_env):
    import boto3

    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def frozen(aws_env):
    consistency.enable(FROZEN)
    yield consistency
    consistency.disable()


def _customer(customer_id: str, name: str = "Ada") -> dict:
    return {"customerId": {"S": customer_id}, "firstName": {"S": name}}


def _referral(referee: str, referrer: str, created: str = "2031-01-01T00:00:00Z", **more: dict) -> dict:
    return {
        "pk": {"S": f"REFEREE#{referee}"},
        "sk": {"S": "REFERRAL"},
        "referrerId": {"S": referrer},
        "referrerShard": {"S": referrer},
        "createdAt": {"S": created},
        **more,
    }


def _by_referrer(dynamodb, referrer: str) -> list[str]:
    answer = dynamodb.query(
        TableName=REFERRALS,
        IndexName="ByReferrerShard",
        KeyConditionExpression="referrerShard = :r",
        ExpressionAttributeValues={":r": {"S": referrer}},
    )
    return [item["pk"]["S"] for item in answer["Items"]]


def test_a_get_right_after_a_put_misses_the_item_but_a_consistent_get_finds_it(dynamodb, frozen):
    dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("c-1"))

    assert "Item" not in dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "c-1"}})
    consistent = dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "c-1"}}, ConsistentRead=True)
    assert consistent["Item"]["firstName"] == {"S": "Ada"}
    # once the window has passed, every read sees it
    frozen.advance(1.0)
    assert "Item" in dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "c-1"}})


def test_a_deleted_item_is_still_there_and_an_updated_one_shows_its_old_attributes(dynamodb, aws_env):
    dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("gone"))
    dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("renamed"))
    consistency.enable(FROZEN)
    try:
        dynamodb.delete_item(TableName=CUSTOMERS, Key={"customerId": {"S": "gone"}})
        dynamodb.update_item(
            TableName=CUSTOMERS,
            Key={"customerId": {"S": "renamed"}},
            UpdateExpression="SET firstName = :n",
            ExpressionAttributeValues={":n": {"S": "Grace"}},
        )
        assert "Item" in dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "gone"}})
        stale = dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "renamed"}})
        assert stale["Item"]["firstName"] == {"S": "Ada"}
        scanned = {i["customerId"]["S"]: i["firstName"]["S"] for i in dynamodb.scan(TableName=CUSTOMERS)["Items"]}
        assert scanned == {"gone": "Ada", "renamed": "Ada"}
        # a strongly consistent scan sees the latest
        latest = dynamodb.scan(TableName=CUSTOMERS, ConsistentRead=True)["Items"]
        assert [(i["customerId"]["S"], i["firstName"]["S"]) for i in latest] == [("renamed", "Grace")]
        assert {(r.operation, r.key[0], r.present) for r in consistency.stale_reads()} >= {
            ("GetItem", "gone", True),
            ("Scan", "renamed", True),
        }
    finally:
        consistency.disable()


def test_a_gsi_query_right_after_a_write_misses_the_item_even_when_base_reads_are_current(dynamodb, aws_env):
    # lagging 0: base-table reads always reach an up-to-date replica; the index still lags
    consistency.enable(consistency.Staleness(window=1.0, lagging=0.0, seed="gsi", tick=0.0, scope="all"))
    try:
        dynamodb.put_item(TableName=REFERRALS, Item=_referral("friend-1", "alice"))
        assert _by_referrer(dynamodb, "alice") == []
        key = {"pk": {"S": "REFEREE#friend-1"}, "sk": {"S": "REFERRAL"}}
        assert "Item" in dynamodb.get_item(TableName=REFERRALS, Key=key)
        with pytest.raises(ClientError, match="Consistent reads are not supported on global secondary indexes"):
            dynamodb.query(
                TableName=REFERRALS,
                IndexName="ByReferrerShard",
                KeyConditionExpression="referrerShard = :r",
                ExpressionAttributeValues={":r": {"S": "alice"}},
                ConsistentRead=True,
            )
        consistency.settle()
        assert _by_referrer(dynamodb, "alice") == ["REFEREE#friend-1"]
    finally:
        consistency.disable()


def test_an_index_shows_the_old_image_of_an_item_whose_index_key_moved(dynamodb, aws_env):
    dynamodb.put_item(
        TableName=REFERRALS,
        Item=_referral("friend-2", "bob", dueShard={"N": "1"}, dueAt={"S": "2031-01-15T00:00:00Z"}),
    )
    consistency.enable(FROZEN)
    try:
        dynamodb.update_item(
            TableName=REFERRALS,
            Key={"pk": {"S": "REFEREE#friend-2"}, "sk": {"S": "REFERRAL"}},
            UpdateExpression="REMOVE dueShard, dueAt",
        )
        due = dynamodb.query(
            TableName=REFERRALS,
            IndexName="Due",
            KeyConditionExpression="dueShard = :s AND dueAt <= :t",
            ExpressionAttributeValues={":s": {"N": "1"}, ":t": {"S": "2031-02-01T00:00:00Z"}},
        )
        assert [i["pk"]["S"] for i in due["Items"]] == ["REFEREE#friend-2"]  # the index has not heard of the REMOVE
    finally:
        consistency.disable()


def test_writes_conditions_and_transactional_reads_see_the_latest(dynamodb, frozen):
    dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("c-2"))
    assert "Item" not in dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "c-2"}})
    # the condition sees the item the read missed
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        dynamodb.put_item(
            TableName=CUSTOMERS, Item=_customer("c-2", "Eve"), ConditionExpression="attribute_not_exists(customerId)"
        )
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": CUSTOMERS,
                        "Key": {"customerId": {"S": "c-2"}},
                        "ConditionExpression": "attribute_not_exists(customerId)",
                    }
                }
            ]
        )
    got = dynamodb.transact_get_items(
        TransactItems=[{"Get": {"TableName": CUSTOMERS, "Key": {"customerId": {"S": "c-2"}}}}]
    )
    assert got["Responses"][0]["Item"]["firstName"] == {"S": "Ada"}
    # and an update works on the latest image, not on the one the stale read returned
    dynamodb.update_item(
        TableName=CUSTOMERS,
        Key={"customerId": {"S": "c-2"}},
        UpdateExpression="SET visits = if_not_exists(visits, :zero) + :one",
        ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
    )
    latest = dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "c-2"}}, ConsistentRead=True)["Item"]
    assert latest["firstName"] == {"S": "Ada"} and latest["visits"] == {"N": "1"}


def test_batch_get_is_eventually_consistent_per_table_and_query_per_request(dynamodb, frozen):
    dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("c-3"))
    dynamodb.put_item(TableName=REFERRALS, Item=_referral("friend-3", "carol"))
    answer = dynamodb.batch_get_item(
        RequestItems={
            CUSTOMERS: {"Keys": [{"customerId": {"S": "c-3"}}]},
            REFERRALS: {"Keys": [{"pk": {"S": "REFEREE#friend-3"}, "sk": {"S": "REFERRAL"}}], "ConsistentRead": True},
        }
    )
    assert answer["Responses"][CUSTOMERS] == []
    assert len(answer["Responses"][REFERRALS]) == 1
    query = {
        "TableName": REFERRALS,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "REFEREE#friend-3"}},
    }
    assert dynamodb.query(**query)["Items"] == []
    assert len(dynamodb.query(**query, ConsistentRead=True)["Items"]) == 1


def test_the_same_seed_gives_the_same_stale_answers(dynamodb, aws_env):
    def run(seed: str, prefix: str) -> list[bool]:
        consistency.enable(consistency.Staleness(window=0.05, lagging=0.5, seed=seed, tick=0.01, scope="all"))
        seen = []
        for n in range(40):
            key = {"customerId": {"S": f"{prefix}-{n}"}}
            dynamodb.put_item(TableName=CUSTOMERS, Item=_customer(f"{prefix}-{n}"))
            seen.append("Item" in dynamodb.get_item(TableName=CUSTOMERS, Key=key))
        consistency.disable()
        return seen

    first, again, other = run("s", "a"), run("s", "b"), run("t", "c")
    assert first == again
    assert not all(first) and any(first)  # some reads stale, some not
    assert first != other


def test_off_unless_asked_for(dynamodb, aws_env):
    if consistency.from_environment() is not None:
        pytest.skip(f"{consistency.ENV} turns stale reads on for this run")
    assert consistency.active() is None
    dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("c-4"))
    assert "Item" in dynamodb.get_item(TableName=CUSTOMERS, Key={"customerId": {"S": "c-4"}})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", None),
        ("off", None),
        ("1", consistency.Staleness()),
        ("window=0.2,lagging=1,seed=7,tick=0.01,scope=all", consistency.Staleness(0.2, 1.0, "7", 0.01, "all")),
        ("tick=real", consistency.Staleness(tick=None)),
    ],
)
def test_settings_from_the_environment(spec, expected):
    assert consistency.parse(spec) == expected


def test_only_reads_inside_a_function_are_stale_by_default(dynamodb, aws_env, monkeypatch):
    from devserver import lambdas

    consistency.enable(consistency.Staleness(window=1.0, lagging=1.0, seed="scope", tick=0.0))
    try:
        dynamodb.put_item(TableName=CUSTOMERS, Item=_customer("c-5"))
        key = {"customerId": {"S": "c-5"}}
        assert "Item" in dynamodb.get_item(TableName=CUSTOMERS, Key=key)  # the test's own look: the truth
        monkeypatch.setattr(lambdas, "current_invocation", lambda: object(), raising=False)  # as inside a handler
        assert "Item" not in dynamodb.get_item(TableName=CUSTOMERS, Key=key)
        with consistency.latest():  # an oracle inside an invocation
            assert "Item" in dynamodb.get_item(TableName=CUSTOMERS, Key=key)
        assert "Item" not in dynamodb.get_item(TableName=CUSTOMERS, Key=key)
    finally:
        consistency.disable()
