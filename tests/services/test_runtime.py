"""The service processes' collector settings: the start-up heap is frozen, the young generation raised."""

import subprocess
import sys

CHECK = """
import gc
from services.api import served_app
from services.settings import Settings
before = gc.get_freeze_count()
served_app(Settings(database_url="sqlite://"))
print(before, gc.get_freeze_count(), gc.get_threshold()[0], gc.get_count()[0])
"""


def test_served_app_freezes_the_startup_heap():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout.split()
    before, frozen, gen0, young = map(int, out)
    assert before == 0
    assert frozen > 50_000  # the imported framework, now outside the collector's walks
    assert gen0 == 7000
    assert young < 7000
