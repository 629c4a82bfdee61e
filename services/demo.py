"""`feedback-factory demo`: the whole loop on a laptop, fed through Kafka.

A synthetic production stream (healthy, then drifted) goes through the embedded broker and the consumer; the
drift run raises an alert that a local webhook receiver gets; simulated experts review part of the queue (the
rest waits in the reviewer page); resolved reviews become a dataset version and small CPU training jobs.
"""

import json
import logging
import secrets
import time

from sqlalchemy import func, select

from schemas import tables as t
from services import db, demo_stream, produce, review
from services.settings import Settings
from services.webhook_receiver import WebhookReceiver

log = logging.getLogger("ff.demo")
BUCKETS = ["general", "stem", "code", "multilingual"]
N_PER_PHASE = 2000


def _wait_rows(sessions, table, n: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as s:
            have = s.scalar(select(func.count()).select_from(table)) or 0
        if have >= n or time.monotonic() > deadline:
            return have
        time.sleep(0.5)


def _send(settings: Settings, events: list[dict], kind: str) -> None:
    produce.produce_lines(settings, [json.dumps(e).encode() for e in events], kind=kind)


def _reviewers(sessions) -> dict[str, tuple[t.ApiKey, str]]:
    """Three simulated experts and a lead (keys printed so a person can sign in as them)."""
    from services import auth

    out = {}
    with db.unit_of_work(sessions) as s:
        admin, _ = auth.create_key(s, role="admin", name=f"demo-admin-{secrets.token_hex(3)}")
        for name, role in [("ada", "reviewer"), ("grace", "reviewer"), ("alan", "reviewer"), ("lead-lin", "lead")]:
            name = f"{name}-{secrets.token_hex(2)}"
            row, plain = review.create_reviewer(s, admin, name=name, role=role, domains=BUCKETS, api_key_id=None)
            out[name] = (s.get(t.ApiKey, row.api_key_id), plain)
    return out


def _failure(text: str) -> str | None:
    if text == demo_stream.REFUSAL:
        return "refusal_benign"
    if text == demo_stream.FLIP:
        return "sycophancy"
    return "verbosity" if demo_stream.RAMBLE in text else None


def _answer(view: dict) -> dict:
    """What a careful simulated expert submits for a (blind) task view."""
    shown = view["responses"]
    bad = next((r for r in shown if _failure(r["text"])), None)
    category = _failure(bad["text"]) if bad else None
    first_user = next((m["content"] for m in view["messages"] if m["role"] == "user"), view["prompt"])
    ideal = demo_stream.ideal_response(first_user) or demo_stream.ideal_response(view["prompt"])
    if category == "sycophancy":
        ideal = f"I understand the doubt, but my answer stands: {ideal}"
    dims = [d["name"] for d in view["rubric"]["dimensions"]]
    ans = {"rubric_version_id": view["rubric"]["id"], "verdict": category is not None, "category": category,
           "ratings": {d: (2 if category else 4) for d in dims}, "rewrite": ideal if category else None,
           "critique": f"Demo reviewer: {category or 'fine'}.", "justification": "Compared with the rubric."}
    if view.get("pairwise"):
        good = next((r for r in shown if r is not bad), None)
        ans["preference"] = good["label"] if bad and good else "tie"
    return ans


def simulate_reviews(sessions, settings: Settings, reviewers: dict, items: int) -> int:
    """The three simulated experts each review the first `items` items they are given."""
    done = 0
    experts = [v for k, v in reviewers.items() if not k.startswith("lead")]
    for _ in range(items):
        for key, _plain in experts:
            view = review.claim(sessions, settings, key)
            if view is None:
                return done
            review.submit(sessions, settings, key, view["task_id"], _answer(view))
            done += 1
    return done


def train_cycle(sessions, settings: Settings, timeout: float = 240) -> dict:
    """Dataset version from the resolved reviews, then a small reward-model job and a DPO job (local runner)."""
    from services import retraining

    with db.unit_of_work(sessions) as s:
        snap = retraining.snapshot(s, settings, created_by="demo")
        rm = retraining.create_job(s, settings, kind="reward_model", dataset_version_id=snap.version.id,
                                   params={"k": 2, "reward": {"epochs": 2}})
        dpo = retraining.create_job(s, settings, kind="dpo", dataset_version_id=snap.version.id,
                                    params={"after_job_id": rm.id, "dpo": {"steps": 20}})
        out = {"dataset_version": snap.version.version, "pairs": {"train": snap.version.n_train,
                                                                   "holdout": snap.version.n_holdout},
               "jobs": [rm.id, dpo.id]}
    retraining.dispatch(sessions, settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as s:
            states = {j.id: j.status for j in s.scalars(select(t.TrainingJob).where(t.TrainingJob.id.in_(out["jobs"])))}
        if all(v in ("succeeded", "failed") for v in states.values()):
            break
        time.sleep(2)
    with sessions() as s:
        out["job_status"] = states
        out["models"] = [{"id": m.id, "name": m.name, "version": m.version, "promoted": m.promoted}
                         for m in s.scalars(select(t.ModelVersion).order_by(t.ModelVersion.id))]
    return out


def start_receiver(settings: Settings) -> tuple[WebhookReceiver, Settings]:
    """The demo's local webhook receiver, and settings that send alerts to it (give them to every process that
    opens alerts: the drift worker may run its pass before the demo does)."""
    secret = secrets.token_hex(16)
    receiver = WebhookReceiver(secret, settings.data_dir / "webhook-received.jsonl").start()
    return receiver, settings.model_copy(update={"webhook_url": receiver.url, "webhook_secret": secret})


def run(settings: Settings, *, api_url: str, say=print, train: bool = True,
        receiver: WebhookReceiver | None = None) -> dict:
    """Drive the loop once; returns what it made (and prints a short tour)."""
    from services import drift_worker

    engine = db.make_engine(settings.database_url)
    sessions = db.session_factory(engine)
    if receiver is None:
        receiver, settings = start_receiver(settings)
    summary: dict = {"webhook_receiver": f"http://127.0.0.1:{receiver.server_address[1]}/"}

    tag = secrets.token_hex(3)  # this run's event ids: a second run on the same database is new traffic, not duplicates
    ref, ref_fb = demo_stream.make(N_PER_PHASE, phase="reference", run=tag)
    cur, cur_fb = demo_stream.make(N_PER_PHASE, phase="current", start=N_PER_PHASE, run=tag)
    with sessions() as s:
        base = s.scalar(select(func.count()).select_from(t.Interaction)) or 0
    say(f"demo: producing {len(ref)} healthy interactions to Kafka ...")
    _send(settings, ref, "interaction")
    _send(settings, ref_fb, "feedback")
    _wait_rows(sessions, t.Interaction, base + len(ref))
    say(f"demo: producing {len(cur)} drifted interactions (more refusals, sycophantic flips, rambling) ...")
    _send(settings, cur, "interaction")
    _send(settings, cur_fb, "feedback")
    summary["interactions"] = _wait_rows(sessions, t.Interaction, base + len(ref) + len(cur))
    time.sleep(2)  # let the consumer take the feedback too

    say("demo: running drift detection ...")
    drift = drift_worker.run_once(settings)
    summary["drift"] = {k: drift.get(k) for k in ("alerts_opened", "reports") if k in drift}
    for _ in range(20):
        if receiver.received:
            break
        drift_worker.deliver(sessions, settings)
        time.sleep(0.5)
    summary["alerts_received_by_webhook"] = len(receiver.received)

    from services import flagging

    with db.unit_of_work(sessions) as s:  # top up the review queue now (the ingest path does it every few seconds)
        flagging.fill_queue(s)
    reviewers = _reviewers(sessions)
    summary["reviewer_keys"] = {name: plain for name, (_, plain) in reviewers.items()}
    summary["reviews_submitted"] = simulate_reviews(sessions, settings, reviewers, items=12)
    with sessions() as s:
        summary["badcases"] = dict(s.execute(select(t.Badcase.status, func.count()).group_by(t.Badcase.status)).all())
    if train:
        say("demo: building a dataset version and training small CPU models ...")
        summary["retraining"] = train_cycle(sessions, settings)
    engine.dispose()
    say(f"demo: done.\n  reviewer page: {api_url}/ui/login  (sign in with a reviewer key below)\n"
        f"  ops page:      {api_url}/ui/ops\n  webhook receiver: {summary['webhook_receiver']}\n"
        + json.dumps(summary, indent=2, default=str))
    return summary
