"""Multi-GPU launch helpers: argv lists for accelerate and torchrun, shipped configs."""

import sys

import pytest
import yaml

from retrain import launch


def test_accelerate_command_uses_the_shipped_config():
    argv = launch.accelerate_command("deepspeed_zero2", 4, args=["--job", 42])
    cfg = launch.CONFIG_DIR / "deepspeed_zero2.yaml"
    assert argv == ["accelerate", "launch", "--config_file", str(cfg), "--num_processes", "4",
                    "-m", "retrain.worker", "--job", "42"]  # fmt: skip
    assert yaml.safe_load(cfg.read_text())["deepspeed_config"]["zero_stage"] == 2
    assert yaml.safe_load(launch.config_path("multi_gpu").read_text())["distributed_type"] == "MULTI_GPU"


def test_multi_node_commands_need_a_rendezvous():
    argv = launch.accelerate_command("multi_gpu", 8, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1",
                                     mixed_precision="no")  # fmt: skip
    assert argv[argv.index("--machine_rank") + 1] == "1" and argv[argv.index("--mixed_precision") + 1] == "no"
    with pytest.raises(launch.LaunchError):
        launch.accelerate_command("multi_gpu", 8, num_machines=2)
    with pytest.raises(launch.LaunchError):
        launch.torchrun_command(4, nnodes=2)
    argv = launch.torchrun_command(4, nnodes=2, node_rank=1, rdzv_endpoint="head:29400", module="m")
    assert argv[:4] == ["torchrun", "--nproc_per_node", "4", "--nnodes"] and argv[-2:] == ["-m", "m"]


def test_launch_command_picks_the_launcher():
    assert launch.launch_command(1, args=["x"]) == [sys.executable, "-m", "retrain.worker", "x"]
    assert launch.launch_command(2, launcher="torchrun")[:3] == ["torchrun", "--nproc_per_node", "2"]
    assert launch.launch_command(2)[:2] == ["accelerate", "launch"]
    with pytest.raises(launch.LaunchError):
        launch.launch_command(2, launcher="mpirun")
    with pytest.raises(launch.LaunchError):
        launch.config_path("zero9")
