"""ovseg_ros.sync.ApproximateSync: the same sets as message_filters.ApproximateTimeSynchronizer on
randomised streams (jitter, drops, out-of-order arrival, repeated stamps), and its diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from ovseg_ros.sync import ApproximateSync, message_filters_available, stamp_ns

NS = 1_000_000_000


class Msg:
    """A message with a header, tagged with its stream so the sets can be checked."""

    def __init__(self, stream: int, t_ns: int) -> None:
        self.stream = stream
        self.t_ns = t_ns
        self.header = Header(stamp=Time(sec=t_ns // NS, nanosec=t_ns % NS), frame_id=f"s{stream}")


def _streams(seed: int, slop: float, n_frames: int = 300, n_streams: int = 3) -> list[Msg]:
    """Arrival-ordered messages: ~30 Hz, per-stream jitter up to 0.4 slop, 10% drops, random latency
    (reorders within and across streams), and a few repeated stamps."""
    rng = np.random.default_rng(seed)
    period = int(NS / 30)
    out = []
    for k in range(n_frames):
        base = 1_700_000_000 * NS + k * period
        for s in range(n_streams):
            if rng.random() < 0.1:
                continue
            t = base + int(rng.uniform(-0.4, 0.4) * slop * NS)
            arrival = t + int(rng.uniform(0, 3 * period))
            out.append((arrival, s, t))
            if rng.random() < 0.02:  # a repeated stamp (a driver re-publishing)
                out.append((arrival + 1, s, t))
    out.sort()
    return [Msg(s, t) for _, s, t in out]


def _run_ours(msgs, slop, queue_size, n_streams=3):
    sets = []
    sync = ApproximateSync(slop, queue_size, lambda *m: sets.append(tuple(x.t_ns for x in m)), n_streams=n_streams)
    for m in msgs:
        sync.add(m.stream, m)
    return sets, sync


def _run_message_filters(msgs, slop, queue_size, n_streams=3):
    import message_filters

    inputs = [message_filters.SimpleFilter() for _ in range(n_streams)]
    sync = message_filters.ApproximateTimeSynchronizer(inputs, queue_size, slop)
    sets = []
    sync.registerCallback(lambda *m: sets.append(tuple(x.t_ns for x in m)))
    for m in msgs:
        inputs[m.stream].signalMessage(m)
    return sets


needs_mf = pytest.mark.skipif(not message_filters_available(), reason="message_filters is not importable")


@needs_mf
@pytest.mark.parametrize("n_streams", [2, 3])
@pytest.mark.parametrize("queue_size", [1, 3, 10])
@pytest.mark.parametrize("slop", [0.005, 0.02, 0.05])
@pytest.mark.parametrize("seed", range(4))
def test_same_sets_as_message_filters(seed, slop, queue_size, n_streams):
    msgs = _streams(seed, slop, n_streams=n_streams)
    ours, sync = _run_ours(msgs, slop, queue_size, n_streams)
    theirs = _run_message_filters(msgs, slop, queue_size, n_streams)
    assert ours == theirs
    assert sync.stats()["pairs"] == len(ours)
    if queue_size >= 3:
        assert len(ours) > 100  # the streams do pair: the comparison is not vacuous


@needs_mf
def test_same_sets_with_wide_jitter_and_tight_queues():
    # jitter beyond the slop (0.4 slop per stream is 0.8 slop apart) and slop larger than the
    # frame period: many candidate combinations, where the search order matters
    for seed in range(6):
        msgs = _streams(100 + seed, 0.05)
        for slop in (0.01, 0.04, 0.1):
            ours, _ = _run_ours(msgs, slop, 2)
            assert ours == _run_message_filters(msgs, slop, 2)


@needs_mf
@pytest.mark.parametrize("seed", range(4))
def test_same_sets_on_exact_slop_boundaries(seed):
    # stamps on a 5 ms grid with a 10 ms slop: deltas of exactly the slop happen all the time,
    # where "candidate if <= slop" and "set if spread < slop" decide
    rng = np.random.default_rng(seed)
    msgs = []
    for k in range(400):
        for s in range(3):
            if rng.random() < 0.15:
                continue
            msgs.append(
                (
                    k * 33 + int(rng.integers(0, 3)) * 5 + int(rng.integers(0, 40)),
                    s,
                    k * 35_000_000 + int(rng.integers(-2, 3)) * 5_000_000,
                )
            )
    msgs = [Msg(s, NS + t) for _, s, t in sorted(msgs)]
    for queue_size in (1, 2, 5):
        ours, _ = _run_ours(msgs, 0.01, queue_size)
        assert ours == _run_message_filters(msgs, 0.01, queue_size)
        assert len(ours) > 20


def test_sets_are_within_the_slop_and_of_one_message_per_stream():
    msgs = _streams(7, 0.02)
    got = []
    sync = ApproximateSync(0.02, 5, lambda *m: got.append(m))
    for m in msgs:
        sync.add(m.stream, m)
    assert len(got) > 150
    for m in got:
        assert [x.stream for x in m] == [0, 1, 2]
        stamps = [x.t_ns for x in m]
        assert max(stamps) - min(stamps) < 0.02 * NS
    st = sync.stats()
    assert st["pairs"] == len(got)
    # every message is paired, dropped or still queued
    per_stream = [sum(1 for m in msgs if m.stream == s) for s in range(3)]
    for s in range(3):
        assert st["pairs"] + st["dropped"][s] + st["queued"][s] == per_stream[s]


def test_stream_that_never_pairs_is_counted_with_its_offset():
    got = []
    sync = ApproximateSync(0.01, 4, lambda *m: got.append(m), n_streams=2)
    for k in range(50):
        t = 100 * NS + k * NS // 30
        sync.add(0, Msg(0, t))
        sync.add(1, Msg(1, t + NS // 4))  # depth stamped 250 ms late: a clock problem
    st = sync.stats()
    assert got == [] and st["pairs"] == 0
    assert st["unpaired"] == 99  # every arrival but the very first found the other stream out of reach
    # the last arrival is on stream 1; stream 0's nearest queued message is the same frame's, 250 ms earlier
    assert st["last_offset_streams"] == (1, 0)
    assert st["last_offset_s"] == pytest.approx(-0.25, abs=1e-9)
    assert st["dropped"] == [46, 46] and st["queued"] == [4, 4]


def test_constant_offset_is_reported_exactly():
    sync = ApproximateSync(0.01, 1, lambda *m: None, n_streams=2)
    sync.add(0, Msg(0, 10 * NS))
    sync.add(1, Msg(1, 10 * NS + 30_000_000))
    st = sync.stats()
    assert st["unpaired"] == 1 and st["last_offset_s"] == pytest.approx(-0.03) and st["last_offset_streams"] == (1, 0)
    sync.add(0, Msg(0, 10 * NS + 25_000_000))  # now 5 ms from stream 1: pairs
    assert sync.stats()["pairs"] == 1 and sync.stats()["queued"] == [0, 0] and sync.stats()["dropped"] == [1, 0]


def test_slop_boundaries_match_message_filters_semantics():
    # candidates need |delta| <= slop, the emitted set a spread strictly below the slop
    got = []
    sync = ApproximateSync(0.01, 5, lambda *m: got.append([x.t_ns for x in m]), n_streams=2)
    sync.add(0, Msg(0, NS))
    sync.add(1, Msg(1, NS + 10_000_000))  # exactly the slop: a candidate, but spread == slop
    assert got == [] and sync.stats()["unpaired"] == 0
    sync.add(1, Msg(1, NS + 9_999_999))
    assert got == [[NS, NS + 9_999_999]]


def test_headerless_messages_and_bad_arguments():
    sync = ApproximateSync(0.01, 2, lambda *m: None)
    assert sync.add(0, object()) is False and sync.stats()["headerless"] == 1
    with pytest.raises(IndexError):
        sync.add(3, Msg(0, 1))
    for kwargs in ({"slop": -1, "queue_size": 1}, {"slop": 0.1, "queue_size": 0}):
        with pytest.raises(ValueError):
            ApproximateSync(callback=print, **kwargs)
    with pytest.raises(ValueError):
        ApproximateSync(0.1, 1, print, n_streams=1)
    assert stamp_ns(Msg(0, 3 * NS + 5)) == 3 * NS + 5 and stamp_ns(object()) is None


def test_callback_may_add_again():
    seen = []
    sync = ApproximateSync(0.01, 2, lambda *m: seen.append(m), n_streams=2)

    def cb(*m):
        seen.append(m)
        if len(seen) == 1:
            sync.add(0, Msg(0, 2 * NS))
            sync.add(1, Msg(1, 2 * NS))

    sync.callback = cb
    sync.add(0, Msg(0, NS))
    sync.add(1, Msg(1, NS))
    assert len(seen) == 2
