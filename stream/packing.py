"""Several ``embedded`` records in one Kafka message.

Why: the cluster worker is the pipeline's bound, and most of its time per article went to Faust and
aiokafka handling one message (fetch, deserialise, sensors, acknowledgement), not to clustering.
The embed stage publishes each micro-batch's records as a few messages instead of one per
article. Each record keeps its own ``input`` reference (``topic/partition/offset`` of the line it
came from); the message is acknowledged once every article in it is decided and published.

>>> msgs = list(pack_records([b'{"id": "a"}', b'{"id": "b"}', b'{"id": "c"}'], max_bytes=25))
>>> msgs
[b'[{"id": "a"},{"id": "b"}]', b'[{"id": "c"}]']
>>> [r["id"] for m in msgs for r in unpack_records(__import__("json").loads(m))]
['a', 'b', 'c']
>>> unpack_records({"id": "x"})  # one record per message, as earlier versions wrote
[{'id': 'x'}]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

MAX_PACKED_BYTES = 256 * 1024  # well under Kafka's default 1 MB message limit

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Packed(Generic[E]):
    """What the cluster step holds per article: the message it came in, and the input line it is."""

    event: E
    input: str | None


def pack_records(records: Sequence[bytes], max_bytes: int = MAX_PACKED_BYTES) -> Iterator[bytes]:
    """JSON arrays of the encoded records, in order, each at most ``max_bytes`` (or one record)."""
    chunk: list[bytes] = []
    size = 2
    for record in records:
        if chunk and size + len(record) + 1 > max_bytes:
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 2
        size += len(record) + (1 if chunk else 0)  # a comma before all but the first
        chunk.append(record)
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"


def unpack_records(value: Any) -> list[dict[str, Any]]:
    """The records of one ``embedded`` message (a list, or a single record from earlier versions)."""
    return list(value) if isinstance(value, list) else [value]
