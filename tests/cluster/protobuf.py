"""Just enough Kubernetes protobuf to read the one body kubectl sends that way.

kubectl's typed clients send some request bodies as `application/vnd.kubernetes.protobuf`
(notably `kubectl auth can-i`'s SelfSubjectAccessReview) and do not fall back to JSON on 415.
This decodes the protobuf wire format and that one message into the JSON shape (pure).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProtobufError", "decode_self_subject_access_review"]

_MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a protobuf message we understand."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> dict[int, list[Any]]:
    """Field number -> values (ints for varints, bytes for length-delimited)."""
    fields: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    fields = _fields(data)
    return {
        name: fields[number][-1].decode() for number, name in names.items() if fields.get(number)
    }


def decode_self_subject_access_review(body: bytes) -> dict:
    """A protobuf SelfSubjectAccessReview (with the `k8s\\0` envelope) as its JSON dict."""
    if not body.startswith(_MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    envelope = _fields(body[len(_MAGIC) :])
    type_meta = _strings(envelope.get(1, [b""])[-1], {1: "apiVersion", 2: "kind"})
    if type_meta.get("kind") != "SelfSubjectAccessReview":
        raise ProtobufError(f"cannot decode {type_meta.get('kind')!r} from protobuf")
    review = _fields(envelope.get(2, [b""])[-1])
    spec_fields = _fields(review.get(2, [b""])[-1])
    spec: dict[str, Any] = {}
    if spec_fields.get(1):
        names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource",
                 6: "subresource", 7: "name"}  # fmt: skip
        spec["resourceAttributes"] = _strings(spec_fields[1][-1], names)
    if spec_fields.get(2):
        spec["nonResourceAttributes"] = _strings(spec_fields[2][-1], {1: "path", 2: "verb"})
    return {**type_meta, "metadata": {}, "spec": spec}
