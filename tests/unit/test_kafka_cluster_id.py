"""The embedded Apache Kafka's cluster ids: what `kafka-storage format -t` accepts (a CI run once drew one starting
with '-', which the tool's argument parser took for an option)."""

import base64

from monitor.devstack.embedded.apache_kafka import cluster_id


def test_cluster_ids_are_kafka_uuids_that_never_start_with_a_dash():
    ids = [cluster_id() for _ in range(5000)]  # about 78 would start with '-' if drawn without the rule
    assert not [i for i in ids if i.startswith("-")]
    assert {len(i) for i in ids} == {22} and len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
