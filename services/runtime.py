"""Process settings for long-running service processes (API workers, the consumer).

CPython's cyclic garbage collector stops every thread while it runs. A service process imports a few hundred
thousand long-lived objects (SQLAlchemy, pydantic, FastAPI, numpy); left in the collector's oldest generation,
each full collection walks all of them, a pause of ~100 ms measured here under 20 reviewers — longer than the
claim-next budget. After start-up we collect once and freeze what is left (Instagram's recipe, `gc.freeze`): the
frozen objects are never walked again, so collections only see request garbage. The young-generation threshold
is raised so that a burst of requests does not trigger a collection every few hundred allocations.

The Kafka consumer's members raise it further: a member holds a polled batch and the batch being stored (about
50 tracked objects per event, ~100,000 for two batches of 1,000) until both are done, so with the API's threshold
a young collection ran every ~140 events and each walked batch structures that were still alive: 136 young and
12 middle collections per 40,000 events took ~15 µs of CPU per event (measured in the members of `consume` under
`bench/kafka_ingest.py`), a tenth of a member's CPU. At 100,000 they run once per ~2,000 events and cost ~0.3 µs.
Batch garbage is freed by reference counting when the batch ends (it forms no cycles), so the higher threshold
holds back only the few reference cycles a batch leaves.

Settings: `FF_GC_FREEZE` (default on), `FF_GC_GEN0_THRESHOLD` (default 7000; CPython's is 700) and
`FF_CONSUMER_GC_GEN0_THRESHOLD` (default 100,000, consumer members).
"""

import gc
import logging

from services.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup_logging(settings: Settings) -> None:
    """Log lines of every service process (the CLI's commands and the consumer's member processes)."""
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)


def tune_gc(settings: Settings, gen0_threshold: int | None = None) -> int:
    """Collect, freeze the survivors of start-up, raise the young-generation threshold (`gen0_threshold`, else
    `gc_gen0_threshold`; the older generations keep their defaults); the objects frozen. Does nothing with
    `gc_freeze` off."""
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold or settings.gc_gen0_threshold, gen1, gen2)
    return gc.get_freeze_count()
