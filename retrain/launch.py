"""Command lines for multi-GPU training: `accelerate launch` (DDP or DeepSpeed ZeRO-2) or `torchrun`.

The trainers refuse plain `nn.DataParallel` (several GPUs visible to one process), so a multi-GPU job must start
one process per GPU through a launcher. These helpers only build argv lists; the job runner (a local process or a
Kubernetes Job in `services`) executes them. The accelerate configs shipped in `retrain/accelerate_configs/` are
TRL's own (`multi_gpu.yaml`, `zero2.yaml` → `deepspeed_zero2.yaml`); `--num_processes` on the command line
overrides the 8 written in them. Example:

    argv = accelerate_command("deepspeed_zero2", 4, module="retrain.worker", args=["--job", "42"])
    # ['accelerate', 'launch', '--config_file', '.../deepspeed_zero2.yaml', '--num_processes', '4',
    #  '-m', 'retrain.worker', '--job', '42']
    argv = torchrun_command(4, module="retrain.worker", args=["--job", "42"])
    # ['torchrun', '--nproc_per_node', '4', '--nnodes', '1', '--standalone', '-m', 'retrain.worker', '--job', '42']
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from schemas.errors import FFError

CONFIG_DIR = Path(__file__).resolve().parent / "accelerate_configs"
CONFIGS = ("multi_gpu", "deepspeed_zero2")
DEFAULT_MODULE = "retrain.worker"


class LaunchError(FFError):
    """A launch command cannot be built from the given settings."""

    code, status = "launch_invalid", 422


def config_path(name: str) -> Path:
    """Path of a shipped accelerate config by name (`multi_gpu`, `deepspeed_zero2`) or an existing YAML path."""
    if name in CONFIGS:
        return CONFIG_DIR / f"{name}.yaml"
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.resolve()
    raise LaunchError(f"unknown accelerate config {name!r}: use one of {CONFIGS} or a path to a YAML file")


def accelerate_command(
    config: str | os.PathLike,
    num_processes: int,
    *,
    module: str = DEFAULT_MODULE,
    args: Sequence[str] = (),
    num_machines: int = 1,
    machine_rank: int = 0,
    main_process_ip: str | None = None,
    main_process_port: int | None = None,
    mixed_precision: str | None = None,
    executable: str = "accelerate",
) -> list[str]:
    """argv for `accelerate launch --config_file CFG --num_processes N [...] -m MODULE ARGS`."""
    if num_processes < 1 or num_machines < 1:
        raise LaunchError("num_processes and num_machines must be at least 1")
    argv = [executable, "launch", "--config_file", str(config_path(str(config))), "--num_processes",
            str(num_processes)]  # fmt: skip
    if num_machines > 1:
        if not main_process_ip:
            raise LaunchError("a multi-node launch needs main_process_ip")
        argv += ["--num_machines", str(num_machines), "--machine_rank", str(machine_rank), "--main_process_ip",
                 main_process_ip, "--main_process_port", str(main_process_port or 29500)]  # fmt: skip
    if mixed_precision:
        argv += ["--mixed_precision", mixed_precision]
    return argv + ["-m", module, *map(str, args)]


def torchrun_command(
    nproc_per_node: int,
    *,
    module: str = DEFAULT_MODULE,
    args: Sequence[str] = (),
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
    executable: str = "torchrun",
) -> list[str]:
    """argv for `torchrun --nproc_per_node N ... -m MODULE ARGS` (standalone on one node, c10d rendezvous across)."""
    if nproc_per_node < 1 or nnodes < 1:
        raise LaunchError("nproc_per_node and nnodes must be at least 1")
    argv = [executable, "--nproc_per_node", str(nproc_per_node), "--nnodes", str(nnodes)]
    if nnodes == 1:
        argv.append("--standalone")
    else:
        if not rdzv_endpoint:
            raise LaunchError("a multi-node torchrun needs rdzv_endpoint (host:port)")
        argv += ["--node_rank", str(node_rank), "--rdzv_backend", "c10d", "--rdzv_endpoint", rdzv_endpoint]
    return argv + ["-m", module, *map(str, args)]


def launch_command(
    num_gpus: int, *, launcher: str = "accelerate", config: str = "multi_gpu", module: str = DEFAULT_MODULE,
    args: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """One process per GPU with the chosen launcher; a single GPU or CPU runs `python -m MODULE` directly."""
    if num_gpus <= 1:
        return [sys.executable, "-m", module, *map(str, args)]
    if launcher == "accelerate":
        return accelerate_command(config, num_gpus, module=module, args=args)
    if launcher == "torchrun":
        return torchrun_command(num_gpus, module=module, args=args)
    raise LaunchError(f"unknown launcher {launcher!r}: use 'accelerate' or 'torchrun'")
