"""The output producer on the real local broker: batched records arrive whole, in order, with their
headers, and a broker that is gone makes the delivery fail instead of hanging or passing silently."""

from __future__ import annotations

import asyncio

import pytest
from kafka import KafkaConsumer, TopicPartition

from stream.broker import LocalBroker, free_port
from stream.outputs import Outputs, delivered, encode
from stream.topics import ASSIGNMENTS, ensure_topics


def read_all(bootstrap: str, topic: str, n: int) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    records = []
    for record in consumer:
        records.append(record)
        if len(records) >= n:
            break
    consumer.close()
    return records


def test_a_batch_of_outputs_arrives_whole_and_in_order():
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, 4)
        values = [{"id": f"a{i}", "story_id": f"s{i % 7}", "score": i / 100} for i in range(300)]

        async def send() -> None:
            outputs = Outputs(broker.bootstrap, linger_ms=5)
            futures = [
                await outputs.send(ASSIGNMENTS, v["id"].encode(), encode(v), [("storywire-n", str(i).encode())])
                for i, v in enumerate(values)
            ]
            await delivered(futures)
            await outputs.on_stop()

        asyncio.run(send())
        records = read_all(broker.bootstrap, ASSIGNMENTS, len(values))
    assert [r.key.decode() for r in records] == [v["id"] for v in values]
    assert [r.value for r in records] == [encode(v) for v in values]
    assert [dict(r.headers)["storywire-n"] for r in records] == [str(i).encode() for i in range(300)]


def test_an_unreachable_broker_fails_the_delivery():
    async def send() -> None:
        outputs = Outputs(f"127.0.0.1:{free_port()}", linger_ms=5)
        try:
            await asyncio.wait_for(outputs.send(ASSIGNMENTS, b"k", b"{}"), timeout=30)
        finally:
            await outputs.on_stop()

    with pytest.raises(Exception) as failure:
        asyncio.run(send())
    assert not isinstance(failure.value, asyncio.TimeoutError)  # it says so, it does not hang
