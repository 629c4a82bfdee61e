"""Process settings for long-running service processes (API workers, the consumer).

CPython's cyclic garbage collector stops every thread while it runs. A service process imports a few hundred
thousand long-lived objects (SQLAlchemy, pydantic, FastAPI, numpy); left in the collector's oldest generation,
each full collection walks all of them, a pause of ~100 ms measured here under 20 reviewers — longer than the
claim-next budget. After start-up we collect once and freeze what is left (Instagram's recipe, `gc.freeze`): the
frozen objects are never walked again, so collections only see request garbage. The young-generation threshold
is raised so that a burst of requests does not trigger a collection every few hundred allocations.

Settings: `FF_GC_FREEZE` (default on) and `FF_GC_GEN0_THRESHOLD` (default 7000; CPython's is 700).
"""

import gc
import logging

from services.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup_logging(settings: Settings) -> None:
    """Log lines of every service process (the CLI's commands and the consumer's member processes)."""
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)


def tune_gc(settings: Settings) -> int:
    """Collect, freeze the survivors of start-up, raise the young-generation threshold (the older generations keep
    their defaults); the objects frozen. Does nothing with `gc_freeze` off."""
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(settings.gc_gen0_threshold, gen1, gen2)
    return gc.get_freeze_count()
