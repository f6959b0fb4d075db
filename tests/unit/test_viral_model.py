"""The viral-code simulation's accounting (bench/viral.py): every write held to its partition's ceiling, the
indexes' partitions included, and a transaction refused whole when any of its partitions has no room."""

from __future__ import annotations

from dataclasses import replace

from bench import viral


def test_a_partition_takes_at_most_its_ceiling_in_any_second():
    partition = viral.Partition()
    for ms in range(500):
        assert partition.has_room(ms, 2)
        partition.write(ms, 2)
    assert not partition.has_room(999, 1)
    assert partition.has_room(1000, 2)  # the first write has left the window
    assert partition.peak == viral.PARTITION_WRITE_UNITS


def test_an_index_partition_over_its_ceiling_refuses_the_whole_transaction():
    # Given the referrer's ByReferrer partition at its ceiling and the count item idle
    state = viral._State(viral.PREVIOUS, viral.signup_units(viral.item_sizes(), viral.PREVIOUS))
    state.partition(("ByReferrer", "referrer")).write(0, viral.PARTITION_WRITE_UNITS)
    signup = viral._SignUp(shard=0)

    # When a sign-up's transaction is tried
    throttled = viral.transact(state, viral._transaction(state, signup, seq=1), now=10)

    # Then the index refuses it, and the count item (and the Due index) took nothing
    assert throttled == [("ByReferrer", "referrer")]
    assert state.partition(("count item", 0)).load == 0
    assert all(p.load == 0 for key, p in state.partitions.items() if key[0] == "Due")


def test_without_the_indexes_the_same_transaction_goes_through():
    design = replace(viral.PREVIOUS, indexes=False)
    state = viral._State(design, viral.signup_units(viral.item_sizes(), design))
    state.partition(("ByReferrer", "referrer")).write(0, viral.PARTITION_WRITE_UNITS)
    assert viral.transact(state, viral._transaction(state, viral._SignUp(), seq=1), now=10) == []
    assert state.partition(("count item", 0)).load == viral.TRANSACTIONAL


def test_sizes_are_the_layers_items_and_each_write_is_one_unit():
    sizes = viral.item_sizes()
    assert set(sizes) == {"customer", "code", "referral", "outbox", "count", "velocity"}
    assert all(size < viral.WRITE_UNIT_BYTES for size in sizes.values())
    units = viral.signup_units(sizes, viral.TODAY)
    assert units == {
        "base-table items (transaction)": 12,  # six items, two units each inside the transaction
        "outbox delete (base table)": 1,
        "ByReferrer": 1,
        "Due (transaction)": 2,  # the referral and the outbox record, on the same due shard
        "Due (outbox delete)": 1,
    }
    assert viral.signup_units(sizes, viral.TODAY_CAUTIOUS)["Due (transaction)"] == 4


def test_attribute_sizes_follow_dynamodbs_rules():
    assert viral.attribute_size("pk", {"S": "REFEREE#é"}) == 2 + 10
    assert viral.attribute_size("count", {"N": "1000000"}) == 5 + 1 + 1
    assert viral.attribute_size("n", {"N": "12345"}) == 1 + 3 + 1
    assert viral.attribute_size("eligible", {"BOOL": True}) == 8 + 1


def test_the_layer_at_3935f5e_was_capped_by_one_index_partition_and_today_is_not():
    # A small run of the same model: 2,000 sign-ups a second with one code, over the 1,000-unit ceiling.
    previous = viral.simulate(viral.PREVIOUS, offered=2_000, seconds=2)
    today = viral.simulate(viral.TODAY, offered=2_000, seconds=2)
    assert previous["by_referrer_peak"] == viral.PARTITION_WRITE_UNITS
    assert previous["by_referrer_offered"] == 2_000
    assert max(previous["admitted_by_second"][:-1]) <= 1_000
    assert previous["count_exact"]
    assert today["admitted_per_second"] == 2_000 and today["refused"] == 0
    assert today["count_exact"]
    assert today["by_referrer_peak"] <= viral.PARTITION_WRITE_UNITS
    assert today["due_peak"] <= viral.PARTITION_WRITE_UNITS
    assert today["hottest_item_write_units_per_second"] <= viral.PARTITION_WRITE_UNITS


def test_count_shards_under_one_partition_key_share_one_ceiling_until_isolated():
    # The key until 3935f5e (`referrerId`, the shard as sort key) put every shard on one partition until adaptive
    # capacity isolated them; today's key gives each shard a partition key value of its own.
    assert viral._count_key(viral.PREVIOUS_UNISOLATED, 0) == viral._count_key(viral.PREVIOUS_UNISOLATED, 5)
    assert viral._count_key(viral.TODAY, 0) != viral._count_key(viral.TODAY, 5)


def test_today_is_the_layer_as_it_is():
    # 64 due shards, the count grown at its first throttle, ByReferrerShard on `<referrerId>#<count shard>` and a
    # partition key per count shard: each as the layer has it.
    from referrals import storage

    assert viral.TODAY.due_shards == storage.DUE_SHARDS
    assert viral.TODAY.grow_on_throttle and viral.TODAY.count_shards
    assert viral.TODAY.referrer_index_sharded and viral.TODAY.count_items_isolated
    assert storage.BY_REFERRER_INDEX == "ByReferrerShard"
    assert storage.ReferralItem.by_referrer.Meta.attributes["referrer_shard"].attr_name == "referrerShard"
    assert storage.shard_key("r", 0) == "r" and len({storage.shard_key("r", s) for s in range(64)}) == 64


def test_the_table_level_is_stated_beside_the_partitions():
    # 10,000 sign-ups a second: ReferralsTable takes the referral and outbox puts (two units each, in the
    # transaction) and the outbox delete, past DynamoDB's default on-demand table quota (docs/performance.md)
    tables = viral.table_write_units(viral.item_sizes(), offered=10_000)
    assert tables["ReferralsTable"] == 50_000 > viral.TABLE_WRITE_QUOTA
    assert tables["ReferralsTable index Due"] == 30_000 and tables["CustomersTable"] == 20_000
    assert {row["figure"] for row in viral.run()} >= {
        "viral code: ReferralsTable WU/s at 10,000 sign-ups/s (table level, not simulated)"
    }
