"""The one registration barrier (reference.barrier): golden runs of each shape, no sockets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.barrier import (
    DOUBLING,
    LINEAR,
    NEWCOMER,
    AnnounceBarrier,
    Backoff,
    JoinBarrier,
    Observation,
    PairBarrier,
    RoomJoin,
    Sentinels,
)
from reference.protocol import LocalProtocolError, Relay

CONFIRMS, SENTINEL, FOREIGN = Observation.CONFIRMS, Observation.SENTINEL, Observation.FOREIGN


# -- the schedule ------------------------------------------------------------------------
def test_backoff_schedules_are_the_drivers_old_ones() -> None:
    # conformance Room.sync: 0.05 s doubling to 0.4 s; the blocking client: 0.2 s more each time.
    assert [DOUBLING.wait(n) for n in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    assert [round(LINEAR.wait(n), 6) for n in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert [Backoff(0.1).wait(n) for n in range(3)] == [0.1, 0.1, 0.1]
    assert DOUBLING.wait(10_000) == 0.4  # no overflow however long a slow server keeps us


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(LocalProtocolError):
        Backoff(0.0)
    with pytest.raises(LocalProtocolError):
        Backoff(0.1, factor=0.5)
    with pytest.raises(LocalProtocolError):
        DOUBLING.wait(-1)


def test_sentinels_share_one_numbering() -> None:
    numbers = Sentinels("~sync:", first=1)
    assert [numbers.next(), numbers.next()] == ["~sync:1", "~sync:2"]
    assert numbers.matches("~sync:99") and not numbers.matches("sync:1")
    with pytest.raises(LocalProtocolError):
        Sentinels("")


# -- a hub confirms a newcomer -----------------------------------------------------------
def test_join_golden_run() -> None:
    """Two sentinels go out, the first arrives, the drain reads up to the second."""
    barrier = JoinBarrier("ana", "sync-")
    assert barrier.last_sentinel is None and not barrier.done
    assert barrier.next_sentinel() == "sync-0"
    assert barrier.next_wait() == 0.05
    assert barrier.next_sentinel() == "sync-1"   # the driver's wait ran out
    assert barrier.next_wait() == 0.1
    assert barrier.observe(Relay("ana", "sync-0")) is CONFIRMS
    assert barrier.done and barrier.last_sentinel == "sync-1"
    assert barrier.sent == ["sync-0", "sync-1"]
    assert not barrier.drained(Relay("ana", "sync-0"))
    assert barrier.drained(Relay("ana", "sync-1"))
    # A hub may go on (readers in other processes); the drain then moves to the newest.
    assert barrier.next_sentinel() == "sync-2" and not barrier.drained(Relay("ana", "sync-1"))


def test_join_a_relay_that_is_not_ours_is_foreign() -> None:
    barrier = JoinBarrier("ana", "sync-")
    barrier.next_sentinel()
    assert barrier.observe(Relay("ana", "hello")) is FOREIGN          # the hub, not a sentinel
    assert barrier.observe(Relay("bo", "sync-0")) is FOREIGN          # a sentinel's text, wrong sender
    assert barrier.observe(Relay("anax", "sync-0")) is FOREIGN
    assert not barrier.done                                           # foreign relays prove nothing
    assert not barrier.drained(Relay("bo", "sync-0"))


def test_join_accepts_a_stale_sentinel_from_an_earlier_join() -> None:
    """The hub sent ~sync:1 for an earlier join; the server read it after this newcomer
    registered, so it reaches the newcomer first: still proof, not a failure."""
    numbers = Sentinels("~sync:", first=1)
    earlier = JoinBarrier("ana", numbers)
    earlier.next_sentinel()                          # ~sync:1, still in flight
    earlier.observe(Relay("ana", "~sync:1"))
    barrier = JoinBarrier("ana", numbers)
    assert barrier.next_sentinel() == "~sync:2"      # one numbering: never reused
    assert barrier.observe(Relay("ana", "~sync:1")) is CONFIRMS
    assert barrier.done
    assert not barrier.drained(Relay("ana", "~sync:1"))  # the drain still waits for ours
    assert barrier.drained(Relay("ana", "~sync:2"))


def test_join_with_many_readers_waits_for_each_once() -> None:
    barrier = JoinBarrier("c0", "chat-load barrier ", readers=[1, 2, 3], backoff=Backoff(0.1))
    barrier.next_sentinel()
    assert barrier.observe(Relay("c0", "chat-load barrier 0"), 2) is CONFIRMS
    assert barrier.observe(Relay("c0", "chat-load barrier 0"), 2) is SENTINEL  # a repeat: skip
    assert barrier.waiting == {1, 3}
    barrier.drop(3)                                  # the driver lost it (closed by the server)
    assert barrier.observe(Relay("c0", "chat-load barrier 7"), 1) is CONFIRMS  # another process's
    assert barrier.done


def test_a_process_that_only_watches_is_done_at_once() -> None:
    """chat-load: a worker whose only client is the hub has no reader of its own to wait for."""
    assert JoinBarrier("c0", "chat-load barrier ", readers=[]).done


def test_join_without_a_hub_knows_sentinels_by_text() -> None:
    """The load tools and the blocking client: a mislabelled sentinel still proves registration
    (the label is the sequence checker's to count), but other text never does."""
    barrier = JoinBarrier(None, "sync-")
    barrier.next_sentinel()
    assert barrier.observe(Relay("bo", "hello")) is FOREIGN
    assert barrier.observe(Relay("impostor", "sync-0")) is CONFIRMS
    assert barrier.drained(Relay("impostor", "sync-0"))


# -- one message, once -------------------------------------------------------------------
def test_announce_golden_run() -> None:
    """The newcomer's one sync reaches both members; sync traffic is skipped, the rest kept."""
    barrier = AnnounceBarrier("~sync:5", readers=["ana", "bo"], sentinels="~sync:")
    assert barrier.observe(Relay("ana", "~sync:4"), "bo") is SENTINEL   # an earlier join's
    assert barrier.observe(Relay("ana", "case text"), "bo") is FOREIGN  # the case's own: keep it
    assert barrier.observe(Relay("cy", "~sync:5"), "bo") is CONFIRMS
    assert not barrier.done and barrier.waiting == {"ana"}
    assert barrier.observe(Relay("cyx", "~sync:5"), "ana") is CONFIRMS  # the label is not ours to judge
    assert barrier.done


def test_announce_without_a_prefix_sees_everything_else_as_foreign() -> None:
    barrier = AnnounceBarrier("go", readers=["bo"], speaker="hub")
    assert barrier.observe(Relay("cy", "go"), "bo") is FOREIGN   # go from the wrong sender
    assert not barrier.drained(Relay("cy", "go"))
    assert barrier.drained(Relay("hub", "go"))


# -- two unconfirmed clients -------------------------------------------------------------
def test_pair_golden_run_one_message() -> None:
    """The newcomer's S reaches first: both confirmed, nothing else sent."""
    pair = PairBarrier("ana", "bo", Sentinels("~sync:", first=1), patience=1.0)
    assert pair.next_sentinel() == ("bo", "~sync:1")
    assert pair.next_wait() == 1.0 and pair.readers == ["ana"]
    assert pair.observe(Relay("ana", "hi"), "ana") is FOREIGN       # the case's own: keep it
    assert pair.observe(Relay("bo", "~sync:1"), "ana") is CONFIRMS and pair.done


@pytest.mark.parametrize("reader, relay", [("ana", Relay("bo", "~sync:1")),
                                           ("bo", Relay("ana", "~sync:2"))])
def test_pair_after_patience_either_direction_confirms(reader: str, relay: Relay) -> None:
    pair = PairBarrier("ana", "bo", Sentinels("~sync:", first=1))
    pair.next_sentinel()
    assert pair.next_sentinel() == ("ana", "~sync:2")                # S was slow: first sends T
    assert pair.next_wait() == math.inf and pair.readers == ["ana", "bo"]
    assert pair.observe(relay, reader) is CONFIRMS and pair.done
    with pytest.raises(LocalProtocolError):
        pair.next_sentinel()


def test_pair_ignores_its_own_echo_and_tokens_not_sent() -> None:
    pair = PairBarrier("ana", "bo", "~sync:")
    with pytest.raises(LocalProtocolError):
        pair.next_wait()
    pair.next_sentinel()
    assert pair.observe(Relay("bo", "~sync:0"), "bo") is SENTINEL     # never from oneself
    assert pair.observe(Relay("ana", "~sync:1"), "bo") is SENTINEL    # T was never sent
    assert not pair.done
    twins = PairBarrier(object(), object(), "~sync:")                   # keys are clients: names may repeat
    assert twins.next_sentinel()[1] == "~sync:0"
    with pytest.raises(LocalProtocolError):
        PairBarrier("ana", "ana", "~sync:")


# -- a room in linear rounds -------------------------------------------------------------
def test_room_golden_run() -> None:
    room = RoomJoin(["hub", "b", "c", "d"])
    assert room.first is not None and room.first.hub is None and room.go is not None
    room.first.next_sentinel()
    room.first.observe(Relay("hub", "sync-0"))
    assert [room.ready_text(i) for i in (2, 3)] == ["ready:2", "ready:3"]
    assert room.waiting_ready == {"ready:2", "ready:3"}
    assert room.observe_ready(Relay("c", "ready:9")) is FOREIGN        # no such client
    assert room.observe_ready(Relay("d", "ready:3")) is CONFIRMS
    assert room.observe_ready(Relay("d", "ready:3")) is FOREIGN        # heard already
    assert room.observe_ready(Relay("c", "ready:2")) is CONFIRMS and room.ready_done
    for reader in (1, 2, 3):
        assert not room.go.drained(Relay("d", "ready:3"))
        assert room.go.observe(Relay("hub", "go"), reader) is CONFIRMS
    assert room.go.done


def test_small_rooms_skip_the_rounds_they_do_not_need() -> None:
    alone, two = RoomJoin(["hub"]), RoomJoin(["hub", "b"])
    assert alone.first is None and alone.go is None and alone.ready_done
    assert two.first is not None and two.go is None and two.ready_done
    with pytest.raises(LocalProtocolError):
        RoomJoin([])
    twins = RoomJoin(["hub", "twin", "twin"])                           # names may repeat
    assert twins.observe_ready(Relay("twin", "ready:2")) is CONFIRMS and twins.ready_done


# -- property: whatever the server loses or interleaves, the barrier ends right ----------
@given(st.integers(min_value=1, max_value=20), st.data())
def test_join_confirms_on_the_first_arrival_and_drains_on_the_last(sent: int, data: st.DataObject) -> None:
    """The server drops the sentinels it read before the newcomer registered (a prefix of
    them, RELAY-4), relays the rest in order, and may interleave foreign relays.  The first
    sentinel to arrive confirms, exactly once; only the last one sent drains."""
    barrier = JoinBarrier("ana", "sync-")
    texts = [barrier.next_sentinel() for _ in range(sent)]
    lost = data.draw(st.integers(min_value=0, max_value=sent - 1), label="lost")
    inbox: list[Relay] = []
    for text in texts[lost:]:
        inbox += [Relay("bo", "chatter")] * data.draw(st.integers(0, 2), label="foreign")
        inbox.append(Relay("ana", text))
    seen = [(relay, barrier.observe(relay), barrier.drained(relay)) for relay in inbox]
    confirming = [relay for relay, what, _ in seen if what is CONFIRMS]
    assert confirming == [Relay("ana", texts[lost])]
    assert all(what is FOREIGN for relay, what, _ in seen if relay.sender == "bo")
    assert [relay for relay, _, drained in seen if drained] == [Relay("ana", texts[-1])]
    assert barrier.done and barrier.next_wait() == DOUBLING.wait(sent - 1)
    assert NEWCOMER not in barrier.waiting
