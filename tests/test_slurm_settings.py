"""Slurm settings under submitit's names, and how tasks are grouped into array elements:
checked without a cluster (submitit itself is the oracle for the names)."""

import time
from pathlib import Path
from typing import Annotated

import pytest
import submitit
from hypothesis import given, settings
from hypothesis import strategies as st

from depio_like import Product, Status, SubmitItExecutor, Task, task
from depio_like.errors import TaskDeclarationError
from depio_like.executors.slurm import element_minutes, group_jobs
from depio_like.resources import parse_resources, sbatch_settings

from conftest import new_pipeline

# What depio users write (depio's defaults, its README and tests), and submitit's docs.
DEPIO_STYLE = [
    {"slurm_time": 2880, "slurm_partition": "gpu", "slurm_mem": 32, "gpus_per_node": 0},
    {
        "slurm_partition": "gpu",
        "mem_gb": 12,
        "cpus_per_task": 10,
        "nodes": 1,
        "slurm_ntasks_per_node": 1,
        "gpus_per_node": 1,
        "timeout_min": 2880,
    },
    {
        "timeout_min": 30,
        "mem_gb": 0.5,
        "name": "sweep",
        "tasks_per_node": 2,
        "stderr_to_stdout": True,
        "slurm_additional_parameters": {"reservation": "lab"},
    },
    {
        "slurm_gpus_per_task": 1,
        "slurm_setup": ["module load cuda"],
        "slurm_qos": "high",
        "slurm_signal_delay_s": 30,
        "slurm_comment": "x",
        "slurm_array_parallelism": 4,
    },
    {"timeout_min": 10, "slurm_time": 20, "mem_gb": 4, "slurm_mem": "8G"},  # specific wins
    {"slurm_mem_gb": 3, "slurm_timeout_min": 7, "local_setup": ["echo local"]},
]


def submitit_parameters(tmp_path, params):
    """What submitit's own AutoExecutor makes of ``params`` on a Slurm cluster."""
    ex = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    ex.update_parameters(**params)
    got = dict(ex._executor.parameters)
    # The one documented difference: a GPU count of 0 is left out (asks for none).
    return {
        k: v
        for k, v in got.items()
        if not (k in ("gpus_per_node", "gpus_per_task", "num_gpus") and v == 0)
    }


@pytest.mark.parametrize("params", DEPIO_STYLE)
def test_submitit_names_map_as_submitit_maps_them(tmp_path, params):
    assert sbatch_settings(params, "test") == submitit_parameters(tmp_path, params)
    assert SubmitItExecutor(cluster="slurm", parameters=params).parameters == submitit_parameters(
        tmp_path, params
    )


NAMES = sorted(
    set(submitit.AutoExecutor._typed_parameters())
    | {
        f"slurm_{k}"
        for k in (
            "partition",
            "mem",
            "time",
            "qos",
            "account",
            "constraint",
            "gres",
            "comment",
            "exclusive",
            "cpus_per_gpu",
            "mem_per_cpu",
            "wckey",
        )
    }
)


@pytest.mark.filterwarnings("ignore:.*cpus_per_gpu")
@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), st.integers(1, 64), max_size=6))
def test_any_mix_of_names_maps_as_submitit_maps_it(tmp_path_factory, params):
    params = {
        k: (str(v) if k == "name" else bool(v % 2) if k == "stderr_to_stdout" else v)
        for k, v in params.items()
    }
    tmp = tmp_path_factory.mktemp("sub")
    assert sbatch_settings(params, "test") == submitit_parameters(tmp, params)


def test_an_unknown_name_is_refused_listing_both_spellings():
    with pytest.raises(ValueError) as e:
        SubmitItExecutor(cluster="slurm", parameters={"slurm_partitio": "gpu", "memory": 3})
    msg = str(e.value)
    assert "['memory', 'slurm_partitio']" in msg
    assert "partition" in msg and "'slurm_' prefix" in msg and "mem_gb" in msg
    assert "timeout_min" in msg
    with pytest.raises(ValueError, match="unknown sbatch setting"):
        SubmitItExecutor(cluster="local", parameters={"bogus": 1})  # checked on a laptop too


def test_two_spellings_of_one_setting_with_different_values_are_refused():
    with pytest.raises(ValueError, match="time=5 and slurm_time=6 set the same"):
        SubmitItExecutor(cluster="slurm", parameters={"time": 5, "slurm_time": 6})


def test_command_line_text_values_are_converted(tmp_path):
    # --slurm mem_gb=0.5 --slurm timeout_min=30 arrive as text.
    got = sbatch_settings({"mem_gb": "0.5", "timeout_min": "30", "stderr_to_stdout": "true"}, "t")
    assert got == submitit_parameters(
        tmp_path, {"mem_gb": 0.5, "timeout_min": 30, "stderr_to_stdout": True}
    )
    with pytest.raises(ValueError, match="mem_gb must be float"):
        sbatch_settings({"mem_gb": "lots"}, "t")


def test_resources_slurm_takes_submitit_names_and_raw_sbatch_options():
    r = parse_resources(
        {"cpus": 2, "slurm": {"slurm_partition": "gpu", "timeout_min": 90, "mail-type": "END"}},
        "task 'x'",
    )
    assert r.cpus == 2 and r.time_min == 90
    assert dict(r.slurm) == {"partition": "gpu", "mail-type": "END"}
    with pytest.raises(TaskDeclarationError, match="slurm_bogus"):
        parse_resources({"slurm": {"slurm_bogus": 1}}, "task 'x'")


def test_internal_executor_gives_its_folder_and_parameters(tmp_path):
    inner = submitit.AutoExecutor(folder=tmp_path / "slurm" / "%j", cluster="slurm")
    inner.update_parameters(
        slurm_partition="debug", slurm_mem="1G", gpus_per_node=0, timeout_min=5, cpus_per_task=2
    )
    ex = SubmitItExecutor(internal_executor=inner)
    assert ex.cluster == "slurm"
    assert ex.folder == tmp_path / "slurm"  # the part before "%j"
    assert ex.parameters == {"partition": "debug", "mem": "1G", "time": 5, "cpus_per_task": 2}
    # depio's positional order (folder, internal_executor, parameters); parameters win.
    ex = SubmitItExecutor(tmp_path / "other", inner, {"slurm_partition": "gpu"})
    assert ex.folder == tmp_path / "other"
    assert ex.parameters["partition"] == "gpu" and ex.parameters["time"] == 5
    with pytest.raises(TypeError, match="internal_executor"):
        SubmitItExecutor(internal_executor=object())


def test_limits_are_checked():
    for bad in (
        {"max_jobs_queued": 0},
        {"max_jobs_pending": -1},
        {"tasks_per_job": 0},
        {"target_seconds": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SubmitItExecutor(cluster="local", **bad)


def test_task_slurm_parameters_with_an_unknown_name_fail_when_declared():
    with pytest.raises(
        TaskDeclarationError,
        match=r"task 'made': slurm_parameters: unknown "
        r"sbatch setting\(s\) \['slurm_gpus_per_tsk'\] \('slurm_gpus_per_tsk': "
        r"did you mean 'slurm_gpus_per_task'\?\)",
    ):
        Task("made", print, slurm_parameters={"slurm_gpus_per_tsk": 1})
    with pytest.raises(TaskDeclarationError, match="slurm_bogus"):

        @task("t", slurm_bogus=1)
        def t():
            pass


def test_task_slurm_parameters_with_an_unknown_name_fail_before_anything_runs(project):
    def make(out: Annotated[Path, Product]):
        Path(out).write_text("x")

    p = new_pipeline(SubmitItExecutor(cluster="local"))
    t = p.add_task(Task("made", make, ["m.txt"]))
    t.slurm_parameters = {"slurm_gpus_per_tsk": 1}  # changed after it was declared
    with pytest.raises(
        TaskDeclarationError,
        match=r"task \[1\] 'made': slurm_parameters: "
        r"unknown sbatch setting\(s\) "
        r"\['slurm_gpus_per_tsk'\]",
    ):
        p.run()
    assert not Path("m.txt").exists()


# -- grouping tasks into array elements ----------------------------------------------------


def test_short_tasks_with_known_durations_fill_elements_of_about_the_target():
    groups = group_jobs(list(range(5000)), [0.05] * 5000, None, 60, 256)
    assert [len(g) for g in groups] == [1250] * 4  # 250 s of work: about 60 s each
    assert [j for g in groups for j in g] == list(range(5000))  # all, in order


def test_long_tasks_each_get_their_own_element():
    assert group_jobs(["a", "b", "c"], [300.0, 90.0, 61.0], None, 60, 256) == [["a"], ["b"], ["c"]]


def test_a_small_total_is_still_spread_over_the_slots_while_worth_it():
    # 50 s of work, 2 CPUs: two elements of 25 s rather than one of 50 s.
    assert [len(g) for g in group_jobs(list(range(5000)), [0.01] * 5000, None, 60, 8, 2)] == [
        2500,
        2500,
    ]
    # 10 s of work: not worth a second Python start (under a quarter of the target each).
    assert len(group_jobs(list(range(1000)), [0.01] * 1000, None, 60, 8, 2)) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(0, 500)), max_size=300),
    st.floats(1, 120),
    st.integers(1, 64),
)
def test_grouping_keeps_every_job_once_in_order_and_bounds_elements(secs, target, par):
    jobs = list(range(len(secs)))
    groups = group_jobs(jobs, secs, None, target, par * 4, par)
    assert [j for g in groups for j in g] == jobs and all(groups)
    if all(s is None for s in secs):  # a first run: at most array_parallelism * 4 elements
        assert len(groups) <= par * 4
    else:
        known = [s for s in secs if s is not None]
        mean = sum(known) / len(known)
        each = [mean if s is None else s for s in secs]
        by_target = round(sum(each) / target)
        worth = min(par, int(sum(each) // (target / 4)))
        n = max(1, min(len(jobs), max(by_target, worth)))
        assert len(groups) <= n  # about target seconds each, or filling the slots
        if n > 1:  # and equal: none more than one job above the mean group
            for g in groups:
                assert sum(each[j] for j in g) <= sum(each) / n + max(each) + 1e-6


def test_an_element_time_limit_adds_up_its_tasks_and_trusts_known_durations():
    assert element_minutes(2, [None, None, None]) == 6  # unknown: the limits added up
    assert element_minutes(60, [0.05] * 1250) == 60  # 62 s known: one task's limit
    assert element_minutes(10, [300.0] * 10) == 100  # 4 x 50 min > the sum: the sum
    assert element_minutes(10, [120.0] * 10) == 80  # 4 x what 20 min took
    assert element_minutes(10, [300.0, None]) == 20  # one never timed: the sum


def test_fixed_tasks_per_job_wins():
    assert group_jobs(list(range(7)), [0.01] * 7, 3, 60, 256) == [[0, 1, 2], [3, 4, 5], [6]]


def test_max_jobs_queued_keeps_the_rest_in_the_driver(project):
    def stamp(out: Annotated[Path, Product], n: int):
        Path(f"start{n}").write_text(str(time.time()))
        time.sleep(1)  # (without the limit, the three would overlap)
        Path(out).write_text(str(time.time()))

    p = new_pipeline(SubmitItExecutor(cluster="local", max_jobs_queued=1))
    for n in range(3):
        p.add_task(Task(f"s{n}", stamp, [f"end{n}", n]))
    assert p.run() == 0, p.stream.getvalue()
    assert {t.status for t in p.tasks} == {Status.FINISHED}
    spans = sorted(
        (float(Path(f"start{n}").read_text()), float(Path(f"end{n}").read_text())) for n in range(3)
    )
    # One job at a time: each starts after the one before it ended.
    assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:])), spans
