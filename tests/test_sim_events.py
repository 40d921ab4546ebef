"""The simulated event recorder follows client-go's EventCorrelator: identical Events are
counted, similar ones aggregated from the 10th distinct message, a source's Events about one
object rate-limited (25, then one per 5 minutes). Found by the kubectl differential test."""

from __future__ import annotations

import pytest

from tests.cluster.events import COMBINED_PREFIX, EventRecorder
from tests.cluster.simulation import ManualClock
from tests.cluster.store import Store

NS = "shop"
DEPLOYMENT = {"kind": "Deployment", "apiVersion": "apps/v1",
              "metadata": {"name": "backend", "namespace": NS, "uid": "u1"}}  # fmt: skip


@pytest.fixture
def world():
    clock = ManualClock()
    store = Store(clock=clock)
    return clock, store, EventRecorder(store, clock)


def scaled(recorder, n: int) -> None:
    recorder.record(DEPLOYMENT, "Normal", "ScalingReplicaSet", f"Scaled up to {n}",
                    component="deployment-controller")  # fmt: skip


def messages(store) -> list[tuple[str, int]]:
    events = sorted(store.list("events", NS), key=lambda e: e["metadata"]["name"])
    return [(e["message"], e["count"]) for e in events]


def test_the_tenth_distinct_message_starts_one_combined_event(world):
    clock, store, recorder = world
    for n in range(1, 10):
        scaled(recorder, n)
        clock.advance(1)
    assert messages(store) == [(f"Scaled up to {n}", 1) for n in range(1, 10)]
    scaled(recorder, 10)
    clock.advance(1)
    scaled(recorder, 11)
    *plain, combined = messages(store)
    assert len(plain) == 9
    assert combined == (COMBINED_PREFIX + "Scaled up to 11", 2)


def test_similar_events_are_counted_afresh_after_ten_quiet_minutes(world):
    clock, store, recorder = world
    for n in range(1, 10):
        scaled(recorder, n)
    clock.advance(601)
    scaled(recorder, 10)
    assert messages(store)[-1] == ("Scaled up to 10", 1)


def test_identical_events_are_counted_not_repeated(world):
    clock, store, recorder = world
    for _ in range(3):
        scaled(recorder, 1)
        clock.advance(1)
    assert messages(store) == [("Scaled up to 1", 3)]


def test_a_source_may_say_25_things_about_an_object_then_one_per_five_minutes(world):
    clock, store, recorder = world
    pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": NS,
                                                           "uid": "u2"}}  # fmt: skip

    def back_off() -> None:
        recorder.record(pod, "Warning", "BackOff", "Back-off restarting failed container",
                        component="kubelet", host="n1")  # fmt: skip

    for _ in range(30):
        back_off()
    assert messages(store) == [("Back-off restarting failed container", 25)]
    clock.advance(300)
    back_off()
    back_off()
    assert messages(store) == [("Back-off restarting failed container", 26)]
    recorder.record(pod, "Normal", "Pulled", "already present", component="kubelet", host="n1")
    assert len(messages(store)) == 2  # another type has its own budget
