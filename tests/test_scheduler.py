"""The scheduler alone: which tasks become ready, what a failure takes down, priorities."""

import sys

import pytest

from depio_like.scheduler import Scheduler
from depio_like.status import Status


def scheduler(n, edges, priority=None):
    """A scheduler over tasks 0..n-1 where each edge (a, b) means b depends on a."""
    upstream = [[] for _ in range(n)]
    downstream = [[] for _ in range(n)]
    for a, b in edges:
        upstream[b].append(a)
        downstream[a].append(b)
    return Scheduler(upstream, downstream, priority)


def drain_ready(s):
    out = []
    while (i := s.pop_ready()) is not None:
        out.append(i)
    return out


def drain_runnable(s):
    out = []
    while (i := s.pop_runnable()) is not None:
        out.append(i)
    return out


def run_ok(s, i, status=Status.FINISHED):
    """Hand ``i`` through the whole cycle and report it ended well."""
    s.runnable(i)
    assert s.pop_runnable() == i
    s.started(i)
    return s.succeeded(i, status)


# --------------------------------------------------------------------------------------
# readiness
# --------------------------------------------------------------------------------------

def test_tasks_without_dependencies_are_ready_in_the_order_they_were_added():
    s = scheduler(4, [(0, 3)])
    assert drain_ready(s) == [0, 1, 2]
    assert s.status == [Status.PENDING, Status.PENDING, Status.PENDING, Status.WAITING]
    assert s.pop_ready() is None


def test_a_task_is_ready_only_when_every_dependency_succeeded():
    #   0   1
    #    \ /
    #     2
    s = scheduler(3, [(0, 2), (1, 2)])
    assert drain_ready(s) == [0, 1]
    assert run_ok(s, 0) == []
    assert s.status[2] is Status.WAITING
    assert s.pop_ready() is None
    assert run_ok(s, 1) == [2]
    assert s.status[2] is Status.PENDING
    assert drain_ready(s) == [2]


def test_a_skipped_dependency_counts_as_success():
    s = scheduler(3, [(0, 1), (1, 2)])
    assert drain_ready(s) == [0]
    assert s.succeeded(0, Status.SKIPPED) == [1]
    assert drain_ready(s) == [1]
    assert run_ok(s, 1) == [2]
    assert s.status[:2] == [Status.SKIPPED, Status.FINISHED]


def test_succeeded_refuses_a_status_that_is_not_success():
    s = scheduler(1, [])
    with pytest.raises(AssertionError):
        s.succeeded(0, Status.FAILED)


def test_statuses_follow_a_task_through_its_life():
    s = scheduler(2, [(0, 1)])
    assert s.status == [Status.PENDING, Status.WAITING]
    s.pop_ready()
    s.runnable(0)
    assert s.has_runnable()
    assert s.pop_runnable() == 0
    assert not s.has_runnable()
    s.started(0)
    assert s.status[0] is Status.RUNNING
    s.succeeded(0)
    assert s.status == [Status.FINISHED, Status.PENDING]


# --------------------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------------------

def test_a_failure_marks_exactly_the_transitive_downstream_depfailed():
    #     0       5
    #    / \      |
    #   1   2     6
    #    \ / \
    #     3   4
    #     |
    #     7
    s = scheduler(8, [(0, 1), (0, 2), (1, 3), (2, 3), (2, 4), (3, 7), (5, 6)])
    assert drain_ready(s) == [0, 5]
    run_ok(s, 0)
    assert drain_ready(s) == [1, 2]
    run_ok(s, 1)
    s.started(2)

    hit = s.failed(2)
    assert sorted(hit) == [3, 4, 7]  # 3 is reachable twice but counted once
    assert [s.status[i] for i in (3, 4, 7)] == [Status.DEPFAILED] * 3
    assert s.status[2] is Status.FAILED
    assert s.status[:2] == [Status.FINISHED, Status.FINISHED]
    # the independent branch is untouched and still runs
    assert s.status[5] is Status.PENDING and s.status[6] is Status.WAITING
    assert not s.done
    assert run_ok(s, 5) == [6]
    assert drain_ready(s) == [6]
    run_ok(s, 6)
    assert s.done


def test_a_diamond_below_the_failure_is_marked_once():
    #       0
    #      / \
    #     1   2
    #      \ /
    #       3
    #      / \
    #     4   5
    #      \ /
    #       6
    s = scheduler(7, [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, 6), (5, 6)])
    drain_ready(s)
    hit = s.failed(0)
    assert sorted(hit) == [1, 2, 3, 4, 5, 6]
    assert len(hit) == len(set(hit))
    assert s.done


def test_a_task_already_depfailed_through_another_failure_is_not_counted_again():
    #   0   1
    #    \ /
    #     2
    #     |
    #     3
    s = scheduler(4, [(0, 2), (1, 2), (2, 3)])
    assert drain_ready(s) == [0, 1]
    assert sorted(s.failed(0)) == [2, 3]
    assert not s.done  # 1 is still to be decided
    assert s.failed(1) == []
    assert s.done
    assert s.status == [Status.FAILED, Status.FAILED, Status.DEPFAILED, Status.DEPFAILED]


def test_success_of_one_parent_after_the_other_failed_does_not_revive_the_child():
    s = scheduler(3, [(0, 2), (1, 2)])
    drain_ready(s)
    assert s.failed(0) == [2]
    assert run_ok(s, 1) == []
    assert s.status[2] is Status.DEPFAILED
    assert s.pop_ready() is None
    assert s.done


def test_failed_accepts_another_final_status():
    s = scheduler(2, [(0, 1)])
    drain_ready(s)
    assert s.failed(0, Status.CANCELLED) == [1]
    assert s.status == [Status.CANCELLED, Status.DEPFAILED]


# --------------------------------------------------------------------------------------
# done and cancel
# --------------------------------------------------------------------------------------

def test_done_only_when_every_task_ended():
    s = scheduler(3, [(0, 1)])
    assert not s.done
    for i in drain_ready(s):
        run_ok(s, i)
        assert not s.done
    assert drain_ready(s) == [1]
    assert not s.done
    run_ok(s, 1)
    assert s.done
    assert all(st is Status.FINISHED for st in s.status)


def test_an_empty_graph_is_done_at_once():
    s = scheduler(0, [])
    assert s.done
    assert s.pop_ready() is None and s.pop_runnable() is None


def test_cancel_rest_cancels_what_has_not_ended_and_empties_the_queues():
    #  0 -> 1 -> 2,  3,  4,  5
    s = scheduler(6, [(0, 1), (1, 2)])
    assert drain_ready(s) == [0, 3, 4, 5]
    run_ok(s, 0)
    s.started(3)                 # running
    s.runnable(4)                # queued for dispatch
    s.failed(5)                  # already over
    assert s.status[1] is Status.PENDING  # ready, not yet looked at

    hit = s.cancel_rest()
    assert sorted(hit) == [1, 2, 3, 4]
    assert s.status == [Status.FINISHED, Status.CANCELLED, Status.CANCELLED,
                        Status.CANCELLED, Status.CANCELLED, Status.FAILED]
    assert s.done
    assert s.pop_ready() is None
    assert not s.has_runnable() and s.pop_runnable() is None
    assert s.cancel_rest() == []


# --------------------------------------------------------------------------------------
# priorities
# --------------------------------------------------------------------------------------

def test_higher_priority_pops_first_from_ready_and_runnable():
    s = scheduler(5, [], priority=[1, 5, 3, 5, -2])
    ready = drain_ready(s)
    assert ready == [1, 3, 2, 0, 4]  # ties keep the order tasks were added
    for i in reversed(ready):
        s.runnable(i)
    assert drain_runnable(s) == [1, 3, 2, 0, 4]


def test_priority_decides_among_tasks_that_become_ready_together():
    #      0
    #    / | \
    #   1  2  3
    s = scheduler(4, [(0, 1), (0, 2), (0, 3)], priority=[0, 0.5, 2.0, 1.0])
    drain_ready(s)
    run_ok(s, 0)
    assert drain_ready(s) == [2, 3, 1]


def test_runnable_is_served_by_priority_even_when_queued_in_another_order():
    s = scheduler(3, [], priority=[0, 10, 5])
    drain_ready(s)
    s.runnable(0)
    assert s.pop_runnable() == 0  # alone in the queue
    s.runnable(0)
    s.runnable(2)
    s.runnable(1)
    assert drain_runnable(s) == [1, 2, 0]


# --------------------------------------------------------------------------------------
# size
# --------------------------------------------------------------------------------------

N_CHAIN = 10_000


def test_a_long_chain_runs_to_the_end():
    s = scheduler(N_CHAIN, [(i, i + 1) for i in range(N_CHAIN - 1)])
    order = []
    while not s.done:
        (i,) = drain_ready(s)
        order.append(i)
        run_ok(s, i)
    assert order == list(range(N_CHAIN))


def test_a_failure_at_the_head_of_a_long_chain_takes_it_all_down():
    assert N_CHAIN > sys.getrecursionlimit()
    s = scheduler(N_CHAIN, [(i, i + 1) for i in range(N_CHAIN - 1)])
    assert drain_ready(s) == [0]
    hit = s.failed(0)
    assert sorted(hit) == list(range(1, N_CHAIN))
    assert s.done
