"""The service processes' collector settings: the start-up heap is frozen, the young generation raised."""

import subprocess
import sys

CHECK = """
import gc, sys
from services.api import served_app
from services.settings import Settings
before = gc.get_freeze_count()
served_app(Settings(database_url="sqlite://", **dict(a.split("=") for a in sys.argv[1:])))
print(before, gc.get_freeze_count(), gc.get_threshold()[0], gc.get_count()[0])
"""


def run(*settings: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", CHECK, *settings], capture_output=True, text=True, check=True)
    return list(map(int, out.stdout.split()))


def test_served_app_freezes_the_startup_heap():
    before, frozen, gen0, young = run()
    assert before == 0
    assert frozen > 50_000  # the imported framework, now outside the collector's walks
    assert gen0 == 7000
    assert young < 7000


def test_the_collector_settings_can_be_turned_off_or_changed():
    assert run("gc_freeze=false")[1:3] == [0, 700]  # CPython's defaults kept
    assert run("gc_gen0_threshold=20000")[2] == 20000


def test_consumer_members_get_their_own_young_generation_threshold():
    code = ("import gc; from services import runtime; from services.settings import Settings; "
            "s = Settings(database_url='sqlite://'); runtime.tune_gc(s, s.consumer_gc_gen0_threshold); "
            "print(gc.get_freeze_count() > 0, gc.get_threshold()[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "100000"]
