"""How many group members `feedback-factory consume` runs."""

import os

from services import consume
from services.settings import Settings


def test_available_cpus_honours_a_cgroup_quota(tmp_path):
    cores = len(os.sched_getaffinity(0))
    limit = tmp_path / "cpu.max"
    limit.write_text("max 100000\n")
    assert consume.available_cpus(str(limit)) == cores
    limit.write_text("50000 100000\n")  # half a core: still one member
    assert consume.available_cpus(str(limit)) == 1
    limit.write_text(f"{(cores + 4) * 100000} 100000\n")  # a quota above the affinity mask does not add cores
    assert consume.available_cpus(str(limit)) == cores
    assert consume.available_cpus(str(tmp_path / "absent")) == cores


def test_processes_default_to_cpus_plus_one_within_the_partitions(monkeypatch):
    monkeypatch.setattr(consume, "available_cpus", lambda: 2)
    assert consume.processes(Settings(consumer_processes=0, kafka_partitions=6)) == 3
    assert consume.processes(Settings(consumer_processes=0, kafka_partitions=2)) == 2
    assert consume.processes(Settings(consumer_processes=5, kafka_partitions=6)) == 5
    assert consume.processes(Settings(consumer_processes=9, kafka_partitions=6)) == 6
    assert consume.processes(Settings(consumer_processes=1, kafka_partitions=6)) == 1
