"""GPU names (--gpus, CUDA_VISIBLE_DEVICES, nvidia-smi rows) and node provenance."""

from __future__ import annotations

import pytest

from harness.common.errors import UserError
from harness.executors.gpus import parse_gpu_list, select_gpus, visible_from_env
from harness.executors.local import local_lanes
from harness.executors.node import differences, fingerprint, local_node, parse_nvidia_smi


def test_gpu_lists() -> None:
    assert parse_gpu_list("0, 1") == ["0", "1"] and parse_gpu_list(None) is None and parse_gpu_list("") is None
    with pytest.raises(UserError, match="twice"):
        parse_gpu_list("1,1")
    assert visible_from_env(None) is None and visible_from_env("") == []
    assert visible_from_env("2,3,-1,4") == ["2", "3"]  # CUDA stops at the first invalid entry
    assert select_gpus(["0", "1", "2"], None) == ["0", "1", "2"]
    assert select_gpus(["0", "1", "2"], ["2", "0"]) == ["2", "0"]
    with pytest.raises(UserError, match="5 not visible here"):
        select_gpus(["0", "1"], ["5"])


def test_gpus_picks_the_lanes_of_a_run() -> None:
    lanes = local_lanes(level="run", device="cuda", gpus=["1", "3"], visible=lambda: ["0", "1", "2", "3"], cores=[0, 1])
    assert [lane.name for lane in lanes if lane.kind == "gpu"] == ["gpu:1", "gpu:3"]
    every = local_lanes(level="run", device="cuda", gpus=None, visible=lambda: ["0", "1"], cores=[0, 1])
    assert [lane.gpu for lane in every if lane.kind == "gpu"] == ["0", "1"]
    # A GPU torch sees that nvidia-smi does not list: one unpinned lane, runs still one at a time.
    assert [lane.name for lane in local_lanes(level="run", device="cuda", gpus=None, visible=lambda: [],
                                              cores=[0])] == ["cpu-timing:0", "gpu:default"]
    assert all(lane.kind != "gpu" for lane in local_lanes(level="compile", device="cuda", gpus=None,
                                                          visible=lambda: ["0"], cores=[0]))


def test_nvidia_smi_rows() -> None:
    text = ("0, GPU-aaa, NVIDIA H100 80GB HBM3, 580.95.05, 9.0\n"
            "1, GPU-bbb, NVIDIA H100 80GB HBM3, 580.95.05, 9.0\n")
    gpus = parse_nvidia_smi(text)
    assert [(g.index, g.uuid, g.compute_cap) for g in gpus] == [("0", "GPU-aaa", "9.0"), ("1", "GPU-bbb", "9.0")]
    node = local_node().model_copy(update={"gpus": gpus})
    assert node.gpu("1").uuid == "GPU-bbb" and node.gpu("GPU-aaa").index == "0" and node.gpu(None) is None


def test_provenance_of_this_machine_and_the_match_rule() -> None:
    me = local_node("n1")
    assert me.host and me.python and me.machine and me.torch and me.kernelgrade
    other = me.model_copy(update={"torch": "2.11.0+cu130", "node_id": "n2", "driver": "other"})
    assert fingerprint(me) != fingerprint(other)
    assert any(d.startswith("torch 2.11.0+cu130 differs") for d in differences(other, me))
    same_but_driver = me.model_copy(update={"driver": "999.1", "node_id": "n3"})
    assert differences(same_but_driver, me) == [] and fingerprint(same_but_driver) == fingerprint(me)
