"""The one sequence checker (reference.sequence): label, pairing, loss, duplication, order."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from reference.sequence import (
    MAX_RUNS,
    RelayChecker,
    SenderTrack,
    SequenceChecker,
    SequenceFailure,
)
from reference.stamp import make_payload, parse_payload

SECOND = 1_000_000_000
NAMES = r"c(\d+)"


# -- one sender's track ------------------------------------------------------------------
def test_track_counts_duplicates_reorders_and_gaps() -> None:
    track = SenderTrack()
    verdicts = [track.add(seq) for seq in (0, 1, 3, 2, 2, 5)]
    assert verdicts == [None, None, None, SequenceFailure.REORDERED, SequenceFailure.DUPLICATED, None]
    assert (track.unique, track.duplicated, track.reordered) == (5, 1, 1)
    assert track.missing_below(6) == 1            # 4 never came
    assert track.missing_below(6, start=5) == 0
    assert track.missing_below(10, start=8) == 2  # past what was ever seen
    assert track.first == 0 and track.high == 5


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=300))
def test_track_agrees_with_a_plain_set(seqs: list[int]) -> None:
    track, seen = SenderTrack(), set()
    for seq in seqs:
        first_copy = seq not in seen
        verdict = track.add(seq)
        assert (verdict is not SequenceFailure.DUPLICATED) == first_copy
        if first_copy:
            assert (verdict is SequenceFailure.REORDERED) == (seq < max(seen, default=-1))
        seen.add(seq)
    assert track.unique == len(seen) and track.duplicated == len(seqs) - len(seen)
    for start, end in ((0, 201), (17, 90), (150, 150), (190, 400)):
        assert track.missing_below(end, start) == sum(1 for n in range(start, end) if n not in seen)
    # the runs are exactly the maximal stretches of received numbers
    assert track.runs == sum(1 for n in seen if n - 1 not in seen)


def test_a_huge_sequence_number_costs_one_run_not_memory_by_its_size() -> None:
    track = SenderTrack()
    track.add(0)
    tracemalloc.start()
    try:
        track.add(10**12)
        track.add(10**15 + 7)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000 and track.runs == 3
    assert track.missing_below(10**12, 1) == 10**12 - 1


def test_a_track_full_of_runs_stops_growing_and_says_garbled() -> None:
    track = SenderTrack()
    for seq in range(0, 2 * MAX_RUNS, 2):
        track.add(seq)
    assert track.runs == MAX_RUNS
    assert track.add(2 * MAX_RUNS + 10) is SequenceFailure.SEQUENCE_JUMP
    assert track.add(-1) is SequenceFailure.SEQUENCE_JUMP
    assert track.runs == MAX_RUNS and track.garbled == 2
    assert track.add(1) is SequenceFailure.REORDERED   # filling a hole merges, so it still fits


# -- the streaming view: gaps expire into losses ----------------------------------------------
def test_in_order_messages_pass_and_a_late_joiner_starts_anywhere() -> None:
    checker = SequenceChecker()
    assert [checker.observe("a", seq, 0) for seq in (40, 41, 42)] == [None, None, None]
    assert checker.missing == 0 and checker.flush() == 0


def test_a_gap_filled_later_is_reordered_not_lost() -> None:
    checker = SequenceChecker(loss_grace_ns=SECOND)
    assert checker.observe("a", 0, 0) is None
    assert checker.observe("a", 2, 0) is None          # 1 is missing, not yet lost
    assert checker.missing == 1
    assert checker.observe("a", 1, SECOND // 2) is SequenceFailure.REORDERED
    assert checker.overdue(10 * SECOND) == 0 and checker.flush() == 0


def test_a_gap_not_filled_within_the_grace_is_lost_then_reordered_if_it_comes() -> None:
    checker = SequenceChecker(loss_grace_ns=SECOND)
    checker.observe("a", 0, 0)
    checker.observe("a", 3, 0)                         # 1 and 2 missing
    assert checker.overdue(SECOND - 1) == 0
    assert checker.overdue(SECOND) == 2
    assert checker.observe("a", 2, 2 * SECOND) is SequenceFailure.REORDERED
    assert checker.flush() == 0                        # lost once, not twice


def test_duplicates_and_messages_older_than_the_first_seen() -> None:
    checker = SequenceChecker()
    checker.observe("a", 5, 0)
    checker.observe("a", 6, 0)
    assert checker.observe("a", 6, 0) is SequenceFailure.DUPLICATED
    assert checker.observe("a", 4, 0) is SequenceFailure.REORDERED
    assert checker.observe("a", 4, 0) is SequenceFailure.DUPLICATED


def test_senders_are_checked_apart_and_flush_counts_what_is_missing() -> None:
    checker = SequenceChecker()
    checker.observe("a", 0, 0)
    checker.observe("b", 7, 0)
    checker.observe("a", 4, 0)                         # a: 1, 2, 3 missing
    assert checker.observe("b", 8, 0) is None
    assert checker.flush() == 3 and checker.missing == 0


def test_a_huge_jump_is_one_failure_not_ten_thousand_losses() -> None:
    checker = SequenceChecker()
    checker.observe("a", 0, 0)
    assert checker.observe("a", 1_000_000, 0) is SequenceFailure.SEQUENCE_JUMP
    assert checker.missing == 0
    assert checker.observe("a", 1_000_001, 0) is None


def test_failure_kinds_are_recognised_from_their_error_text() -> None:
    for kind in SequenceFailure:
        assert SequenceFailure.from_error_text(repr(kind.error())) is kind
    assert SequenceFailure.from_error_text("ConnectionRefusedError(111, 'refused')") is None


# -- whole relays: label and pairing ------------------------------------------------------------
def _msg(sender: int, seq: int) -> str:
    return make_payload(sender, seq, 1)


def test_a_rightly_labelled_relay_passes_and_returns_its_stamp() -> None:
    checker = RelayChecker(NAMES, own=0)
    stamp, failures = checker.check("c3", _msg(3, 0), 0)
    assert stamp == parse_payload(_msg(3, 0)) and failures == []
    assert checker.summary() == {kind.value: 0 for kind in SequenceFailure}


def test_a_relay_labelled_with_another_client_is_mislabelled_but_delivered() -> None:
    checker = RelayChecker(NAMES, own=0)
    for seq in range(3):
        _, failures = checker.check("c4", _msg(3, seq), 0)   # the server names the wrong sender
        assert failures == [SequenceFailure.MISLABELLED]
    _, failures = checker.check("server", _msg(3, 3), 0)    # or no client at all
    assert failures == [SequenceFailure.MISLABELLED]
    assert checker.summary()["mislabelled"] == 4
    assert checker.flush() == 0                              # nothing is lost: all four arrived


def test_interleaved_frames_are_unpaired_not_lost() -> None:
    """Frames name(a), name(b), msg(a), msg(b) decode as two relays, both unpaired."""
    checker = RelayChecker(NAMES, own=0)
    checker.check("c1", _msg(1, 0), 0)
    checker.check("c2", _msg(2, 0), 0)
    stamp, failures = checker.check("c1", "c2", 0)          # a username where the message belongs
    assert stamp is None and failures == [SequenceFailure.UNPAIRED]
    _, failures = checker.check(_msg(1, 1), _msg(2, 1), 0)  # a message where the username belongs
    assert failures == [SequenceFailure.UNPAIRED]
    assert checker.summary()["unpaired"] == 2
    assert checker.flush() == 0 and checker.summary()["lost"] == 0


def test_echo_sequence_and_foreign_text_through_the_relay_checker() -> None:
    checker = RelayChecker(NAMES, own=0, loss_grace_ns=SECOND)
    assert checker.check("c0", _msg(0, 0), 0)[1] == [SequenceFailure.ECHOED]
    assert checker.check("c5", _msg(5, 0), 0)[1] == []
    assert checker.check("c5", _msg(5, 0), 0)[1] == [SequenceFailure.DUPLICATED]
    assert checker.check("c5", _msg(5, 3), 0)[1] == []      # 1 and 2 missing
    assert checker.check("ana", "hello", 0) == (None, [])   # someone else in the room
    assert checker.unstamped == 1
    assert checker.overdue(SECOND) == 2
    assert checker.summary() | {"lost": 2} == checker.summary()
    assert checker.summary()["echoed"] == 1 and checker.summary()["duplicated"] == 1


def test_stamps_with_signs_or_absurd_lengths_are_not_stamps() -> None:
    assert parse_payload("1:-5:7:") is None
    assert parse_payload("1:5:" + "9" * 21 + ":") is None
    assert parse_payload("1:" + "9" * 11 + ":7:") is None
    assert parse_payload("١:5:7:") is None                   # a non-ASCII digit
    assert parse_payload(make_payload(12, 34, 56, 64)) is not None


def test_a_server_inventing_usernames_cannot_grow_the_label_cache_without_bound() -> None:
    checker = RelayChecker(NAMES)
    for i in range(10_000):
        checker.check(f"x{i}", _msg(1, i), 0)
    assert len(checker._ids) <= 4096
    assert checker.summary()["mislabelled"] == 10_000


_RELAYS = st.one_of(
    st.tuples(st.integers(0, 3), st.integers(0, 12)).map(lambda t: (f"c{t[0]}", _msg(*t))),   # right label
    st.tuples(st.integers(0, 3), st.integers(0, 12)).map(lambda t: (f"c{t[0] + 1}", _msg(*t))),  # wrong
    st.tuples(st.integers(0, 3), st.integers(0, 12)).map(lambda t: (_msg(*t), f"c{t[0]}")),   # swapped
    st.sampled_from([("c1", "hello"), ("c2", "chat-load barrier 7"), ("c1", "1:2"), ("c1", "-1:0:5:x"),
                     ("c1", "1:0:99999999999999999999:x"), ("c\u0661", "1:0:0:x"), ("c1", "\u0661:0:0:x")]),
)


@given(st.lists(_RELAYS, max_size=60))
def test_in_order_then_check_counts_exactly_as_check_alone(relays: list[tuple[str, str]]) -> None:
    """The load tools' fast path (``in_order``, then ``check`` when it says None) changes no count."""
    plain, fast = RelayChecker(NAMES, own=0), RelayChecker(NAMES, own=0)
    for label, text in relays:
        stamp, _ = plain.check(label, text, 0)
        hit = fast.in_order(label.encode(), text.encode())  # as the codec hands them over
        if hit is None:
            fast_stamp, _ = fast.check(label, text, 0)
            assert fast_stamp == stamp
        else:
            assert stamp is not None and hit == (stamp.sender, stamp.seq, stamp.sent_ns)
    assert fast.summary() == plain.summary() and fast.delivered == plain.delivered
    assert fast.flush() == plain.flush()


def test_in_order_takes_only_the_next_rightly_labelled_message() -> None:
    checker = RelayChecker(NAMES, own=0)
    def in_order(label: str, text: str) -> tuple[int, int, int] | None:
        return checker.in_order(label.encode(), text.encode())  # the relay's payloads, as they came

    assert in_order("c3", _msg(3, 0)) is None      # first from c3: check() learns label and track
    checker.check("c3", _msg(3, 0), 0)
    assert in_order("c3", _msg(3, 1)) == (3, 1, parse_payload(_msg(3, 1)).sent_ns)
    assert in_order("c3", _msg(3, 3)) is None      # a gap: check() records it
    assert in_order("c3", _msg(3, 1)) is None      # a duplicate
    assert in_order("c4", _msg(3, 2)) is None      # mislabelled
    assert checker.delivered == 2
