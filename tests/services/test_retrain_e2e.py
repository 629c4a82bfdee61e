"""Retraining end to end: reviewed badcases → dataset version → reward-model job → DPO job → gates → registry.

Interactions and feedback go in over HTTP through the ingest pipeline (which flags them), three reviewers review
them through the real review service (blind claims, the agreement gate), a lead settles a disagreement as
ambiguous; consent-less and ambiguous interactions must then be absent from every export file.
"""

import io
import json
import os
import time

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from badcase import queue, rubric_store
from retrain import datasets
from schemas import tables as t
from services import auth, db, retraining, review
from services.api import create_app
from services.settings import Settings
from support.events import feedback, interaction
from support.review import ALL_GOOD

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the worker processes: much faster on small CPUs

TOPICS = [
    "reset my password", "track my order", "change my delivery address", "cancel my subscription",
    "update my billing card", "find the user manual", "book a table for two", "return a broken kettle",
    "renew my library loan", "set up two-factor login", "export my photos", "get a copy of my invoice",
    "contact a human agent", "change the app language", "recover a deleted file", "pair my headphones",
    "upgrade my plan", "report a wrong charge", "find opening hours", "delete my account",
    "merge two accounts", "apply a discount code", "schedule a repair visit", "download my statement",
]
RUDE = "Honestly, figure out how to {t} yourself; I am not doing it and that is a pointless question."
POLITE = "Of course! To {t}, open the menu, choose the matching section and confirm. Glad to help."
EDIT = "Sure, here is how to {t}: open settings and follow the steps."
NO_CONSENT, AMBIGUOUS, DISMISSED = "SECRET-NOCONSENT", "AMBIG-MARKER", "FINE-ANSWER"
WORDS = ("alpha", "bravo", "charlie")  # distinct texts, so near-duplicate clustering keeps them apart


def _events():
    """(interaction event, kind of review it will get) for every item of the scenario."""
    out = []
    for i, topic in enumerate(TOPICS):
        kind = "user_edit" if i % 6 == 5 else "expert"
        out.append((interaction(i, response=RUDE.format(t=topic), messages=[
            {"role": "user", "content": f"Can you tell me how to {topic}?"}]), kind, topic))
    for j in range(3):  # resolved with a rewrite, but the user gave no training consent
        i = 100 + j
        out.append((interaction(i, consent=False, response=f"{NO_CONSENT}-{j} {WORDS[j]} rude reply", messages=[
            {"role": "user", "content": f"{NO_CONSENT}-{j} question"}]), "expert", f"{NO_CONSENT}-{j}"))
    out.append((interaction(200, response=f"{AMBIGUOUS} reply", messages=[
        {"role": "user", "content": f"{AMBIGUOUS} question"}]), "ambiguous", AMBIGUOUS))
    out.append((interaction(300, response=f"{DISMISSED} reply", messages=[
        {"role": "user", "content": f"{DISMISSED} question"}]), "dismissed", DISMISSED))
    return out


@pytest.fixture
def app(database_url, tmp_path):
    """The API on the test database with a private data directory and a 2-member reward ensemble."""
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", rm_ensemble_k=2,
                        retrain_min_new_pairs=10, dpo_beta=0.1, dpo_lambda=0.5)
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


def hdr(key):
    return {"Authorization": f"Bearer {key}"}


def _answer(view, kind, topic, reviewer_index):
    rubric_id = view["rubric"]["id"]
    body = {"rubric_version_id": rubric_id, "verdict": True, "category": "refusal_benign", "ratings": ALL_GOOD,
            "preference": None, "rewrite": None, "justification": "Helpfulness first."}
    if view["pairwise"]:  # the user's edit is shown beside the original, in random order
        alt = [r["label"] for r in view["responses"] if r["text"] == EDIT.format(t=topic)]
        body["preference"] = alt[0]
    if kind == "expert":
        body["rewrite"] = POLITE.format(t=topic)
    elif kind == "ambiguous":
        body.update(verdict=reviewer_index != 2, category=["factual_error", "verbosity", None][reviewer_index])
    elif kind == "dismissed":
        body.update(verdict=False, category=None)
    return body


def review_everything(app, client, keys):
    """Ingest over HTTP, queue the flagged badcases, review each item by three reviewers; a lead settles one."""
    scenario = _events()
    r = client.post("/v1/interactions", headers=hdr(keys["app"]), json=[e for e, _, _ in scenario])
    assert r.status_code == 200 and r.json()["stored"] == len(scenario), r.text
    fbs = [feedback(n, e["event_id"], "edit", edited_response=EDIT.format(t=topic)) if kind == "user_edit"
           else feedback(n, e["event_id"], "thumbs", value="down") for n, (e, kind, topic) in enumerate(scenario)]
    assert client.post("/v1/feedback", headers=hdr(keys["app"]), json=fbs).status_code == 200
    with db.unit_of_work(app.state.sessions) as s:
        rubric = rubric_store.ensure_default(s)
        flagged = list(s.scalars(select(t.Badcase)))
        assert len(flagged) == len(scenario)  # negative feedback flagged every one of them
        for bc in flagged:
            bc.review_batch = "2026-11-w1"
            if bc.status == "flagged":  # whatever the pipeline's queue filling left for later
                queue.enqueue(s, bc, 3, rubric.id)
    plain = [client.post("/v1/reviewers", headers=hdr(keys["admin"]),
                         json={"name": n, "role": r_, "domains": ["*"]}).json()["api_key"]
             for n, r_ in (("ana", "reviewer"), ("ben", "reviewer"), ("chi", "reviewer"), ("lea", "lead"))]
    with db.unit_of_work(app.state.sessions) as s:
        key_rows = [auth.authenticate(s, p) for p in plain]
    by_event = {e["event_id"]: (kind, topic) for e, kind, topic in scenario}
    settings = app.state.settings
    for idx, key in enumerate(key_rows[:3]):
        while (view := review.claim(app.state.sessions, settings, key)) is not None:
            with db.unit_of_work(app.state.sessions) as s:
                event_id = s.get(t.Interaction, s.get(t.Badcase, view["badcase_id"]).interaction_id).event_id
            kind, topic = by_event[event_id]
            review.submit(app.state.sessions, settings, key, view["task_id"], _answer(view, kind, topic, idx))
    with db.unit_of_work(app.state.sessions) as s:
        (pending,) = review.adjudication_queue(s)
        review.adjudicate(s, key_rows[3], pending["badcase_id"], {"outcome": "ambiguous", "note": "unclear"})
        status = dict(s.execute(select(t.Interaction.event_id, t.Badcase.status)
                                .join(t.Badcase, t.Badcase.interaction_id == t.Interaction.id)).all())
    return scenario, status


def _export_texts(folder):
    """Every export file of a dataset version as text (Parquet read back through pyarrow)."""
    out = {}
    for name in ("train.jsonl", "holdout.jsonl"):
        out[name] = (folder / name).read_text()
    for name in ("train.parquet", "holdout.parquet"):
        out[name] = json.dumps(pq.read_table(folder / name).to_pylist())
    return out


def wait_for(client, key, job_id, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=hdr(key)).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_reviews_to_dataset_to_reward_model_to_dpo_with_lineage(app, client, keys, tmp_path):
    scenario, status = review_everything(app, client, keys)
    assert status["int-200"] == "ambiguous" and status["int-300"] == "dismissed"
    assert all(status[f"int-{100 + j}"] == "resolved" for j in range(3))
    ops = keys["ops"]

    # dataset version: counts, hash, rubric versions, reviewers, consent filter, split
    r = client.post("/v1/datasets", headers=hdr(ops), json={"holdout_share": 0.12})
    assert r.status_code == 201, r.text
    ds = r.json()
    m = ds["manifest"]
    assert ds["created"] is True and m["counts"]["total"] == len(TOPICS) == ds["n_train"] + ds["n_holdout"]
    assert 0 < ds["n_holdout"] < ds["n_train"]
    assert m["content_hash"] == ds["content_hash"] and len(m["content_hash"]) == 64
    assert m["rubric_versions"] == ["default@v1"] and m["review_batches"] == ["2026-11-w1"] and len(m["reviewers"]) == 3
    assert m["human_anchor_rows"] == sum(1 for _, k, _ in scenario if k == "expert") - 3  # minus consent-less
    assert m["consent_filter"]["interaction.consent_training"] is True
    assert m["consent_filter"]["excluded"]["resolved_without_training_consent"] == 3
    assert m["consent_filter"]["excluded"]["ambiguous"] == 1
    assert m["agreement"]["reports"] and m["agreement"]["reports"][0]["krippendorff_alpha"] is not None
    assert m["split"]["holdout_share"] == 0.12 and m["parent"] is None
    again = client.post("/v1/datasets", headers=hdr(ops), json={}).json()
    assert again["version"] == ds["version"] and again["created"] is False  # same content, same version

    folder = tmp_path / "data" / "datasets" / ds["version"]
    train, holdout = (datasets.read_jsonl(folder / f"{s}.jsonl") for s in ("train", "holdout"))
    assert datasets.content_hash(train + holdout) == ds["content_hash"]
    assert not {r_["prompt"] for r_ in train} & {r_["prompt"] for r_ in holdout}
    re_train, re_held = datasets.split_by_prompt(train + holdout, 0.12)
    assert sorted(map(datasets.canonical_line, re_held)) == sorted(map(datasets.canonical_line, holdout))
    texts = _export_texts(folder)
    dl = client.get(f"/v1/datasets/{ds['version']}/download?format=parquet&split=train", headers=hdr(ops))
    assert dl.status_code == 200
    texts["download.parquet"] = json.dumps(pq.read_table(io.BytesIO(dl.content)).to_pylist())
    texts["download.jsonl"] = client.get(f"/v1/datasets/{ds['version']}/download?split=holdout",
                                         headers=hdr(ops)).text
    for name, text in texts.items():
        for marker in (NO_CONSENT, AMBIGUOUS, DISMISSED, "int-100", "int-101", "int-102", "int-200", "int-300"):
            assert f'"{marker}' not in text and marker not in text, (name, marker)
    assert client.get(f"/v1/datasets/{ds['version']}/download?format=csv", headers=hdr(ops)).status_code == 422

    # reward model (2-member ensemble) on the local process runner, then DPO waiting for it
    rm_params = {"reward": {"epochs": 1, "batch_size": 8, "max_length": 64, "freeze_layers": 5}}
    rm = client.post("/v1/jobs", headers=hdr(ops), json={"kind": "reward_model", "params": rm_params})
    assert rm.status_code == 201, rm.text
    rm = rm.json()
    assert rm["params"]["k"] == 2 and rm["external_id"].startswith("pid:")
    dpo_params = {"after_job_id": rm["id"], "dpo": {"steps": 12, "lr": 5e-3, "batch_size": 4, "max_length": 128,
                                                   "eval_every": 4, "max_new_tokens": 8}}
    dpo = client.post("/v1/jobs", headers=hdr(ops), json={"kind": "dpo", "dataset_version": ds["version"],
                                                          "params": dpo_params}).json()
    assert dpo["status"] == "queued" and dpo["external_id"] is None  # waits for the reward model
    assert (dpo["params"]["beta"], dpo["params"]["lam"]) == (0.1, 0.5)
    rm = wait_for(client, ops, rm["id"])
    assert rm["status"] == "succeeded", client.get(f"/v1/jobs/{rm['id']}/logs", headers=hdr(ops)).text
    ev = rm["metrics"]["evaluation"]
    assert ev["holdout_pairs"] == ds["n_holdout"] and 0.0 <= ev["accuracy"] <= 1.0 and ev["members"] == 2
    assert "score_length_spearman" in ev["length"] and ev["per_bucket"]
    assert rm["metrics"]["gate"]["promote"] is True and rm["progress"] == 1.0
    logs = client.get(f"/v1/jobs/{rm['id']}/logs", headers=hdr(ops))
    assert logs.status_code == 200 and "retrain.job.succeeded" in logs.text
    dpo = wait_for(client, ops, dpo["id"])
    assert dpo["status"] == "succeeded", client.get(f"/v1/jobs/{dpo['id']}/logs", headers=hdr(ops)).text
    best = dpo["metrics"]["best"]
    assert {"implied_accuracy", "win_rate"} <= set(best) and dpo["metrics"]["objective"]["loss_weights"] == [1.0, 0.5]
    assert dpo["metrics"]["best_step"] in [h["step"] for h in dpo["metrics"]["history"]]

    # registry, lineage back to the reviews, hand-off report
    models = client.get("/v1/models", headers=hdr(ops)).json()["items"]
    by_kind = {m_["kind"]: m_ for m_ in models}
    assert set(by_kind) == {"reward_model", "policy"} and by_kind["reward_model"]["current"] is True
    assert by_kind["policy"]["promoted"] == dpo["metrics"]["gate"]["promote"]
    assert by_kind["policy"]["settings"]["reward_model_id"] == by_kind["reward_model"]["id"]
    for model in models:
        lin = client.get(f"/v1/models/{model['id']}/lineage", headers=hdr(ops)).json()
        assert lin["dataset"]["version"] == ds["version"] and lin["items_total"] == len(TOPICS)
        assert lin["job"]["id"] == model["training_job_id"]
        assert [rv["name"] for rv in lin["rubric_versions"]] == ["default"]
        assert sorted(x["name"] for x in lin["reviewers"]) == ["ana", "ben", "chi"]
        with db.unit_of_work(app.state.sessions) as s:
            for item in lin["items"]:
                q = select(t.ReviewSubmission.id).where(t.ReviewSubmission.badcase_id == item["badcase_id"])
                subs = s.scalars(q)
                assert sorted(subs) == sorted(x["id"] for x in item["reviews"]) and len(item["reviews"]) == 3
        assert not {i["interaction_event_id"] for i in lin["items"]} & {"int-100", "int-101", "int-102", "int-200"}
        rep = client.get(f"/v1/models/{model['id']}/report", headers=hdr(ops))
        assert rep.status_code == 200 and ds["version"] in rep.text and "## Evaluation" in rep.text
    assert "`K`: 2" in client.get(f"/v1/models/{by_kind['reward_model']['id']}/report", headers=hdr(ops)).text
    policy_report = client.get(f"/v1/models/{by_kind['policy']['id']}/report", headers=hdr(ops)).text
    assert "`beta`: 0.1" in policy_report and "`lambda`: 0.5" in policy_report
    assert (tmp_path / "data" / "models" / "reward-model" / "1" / "REPORT.md").is_file()
    assert by_kind["policy"]["promoted"] is True  # implied-reward accuracy rose, win rate did not drop

    # a second reward model (run in this process) is judged against the promoted one on the same holdout
    with db.unit_of_work(app.state.sessions) as s:
        job2 = retraining.create_job(s, app.state.settings, kind="reward_model", dataset_version_id=ds["id"],
                                     params={**rm_params, "model_name": "reward-model"}).id
    done = retraining.run_job(app.state.settings, job2)
    assert done["status"] == "succeeded", done["error"]
    second = done["metrics"]
    assert second["incumbent"]["eval_hash"] == ev["eval_hash"] == second["evaluation"]["eval_hash"]
    assert second["gate"]["incumbent_accuracy"] == pytest.approx(ev["accuracy"])
    assert second["gate"]["promote"] is (second["evaluation"]["accuracy"] >= ev["accuracy"])
    rm2 = client.get(f"/v1/models/{done['artifacts']['model_version_id']}", headers=hdr(ops)).json()
    assert (rm2["version"], rm2["parent_id"]) == (2, by_kind["reward_model"]["id"])

    # the promoted ensemble scored the interactions: its disagreement is the uncertainty signal
    with db.unit_of_work(app.state.sessions) as s:
        scored = s.execute(select(t.Interaction.rm_score, t.Interaction.rm_disagreement)
                           .where(t.Interaction.rm_score.is_not(None))).all()
    assert len(scored) == len(scenario) and all(d is not None and d >= 0 for _, d in scored)
    assert client.get("/v1/jobs", headers=hdr(keys["reviewer"])).status_code == 403


def test_triggers_fire_on_new_pairs_drift_alerts_and_manual(app, client, keys, monkeypatch):
    launched = []

    class FakeRunner:
        name = "local"

        def launch(self, job_id, log_path, gpus=None):
            launched.append(job_id)
            return retraining.runners.Launched(external_id=f"fake:{job_id}", log_path=str(log_path))

    monkeypatch.setattr(retraining, "runner_for", lambda settings: FakeRunner())
    settings = app.state.settings
    sessions = app.state.sessions
    state = retraining.evaluate_triggers(sessions, settings)
    assert state["fired"] == [] and state["new_pairs"] == 0 and state["launched"] == []
    review_everything(app, client, keys)
    state = retraining.evaluate_triggers(sessions, settings)  # 24 admitted pairs >= 10
    assert [f["trigger"] for f in state["fired"]] == ["new_pairs"] and state["new_pairs"] == len(TOPICS)
    rm_id, dpo_id = state["jobs"]
    assert launched == [rm_id]  # DPO waits for its reward model
    assert retraining.evaluate_triggers(sessions, settings, manual=True)["fired"] == []  # busy: nothing piles up
    with db.unit_of_work(sessions) as s:
        job = s.get(t.TrainingJob, rm_id)
        job.status = "succeeded"
        rule = t.AlertRule(name="refusal-drift", signal="is_refusal", severity="critical")
        s.add(rule)
        s.flush()
        s.add(t.Alert(rule_id=rule.id, model_version="v1", bucket="*", signal="is_refusal", severity="critical",
                      message="refusal rate drifted"))
    assert retraining.dispatch(sessions, settings) == [{"job_id": dpo_id, "launched": True,
                                                       "external_id": f"fake:{dpo_id}"}]
    state = retraining.evaluate_triggers(sessions, settings)
    assert [f["trigger"] for f in state["fired"]] == ["drift_alert"] and state["new_pairs"] == 0
    assert state["dataset_created"] is False  # no new pairs: the same dataset version again
    with db.unit_of_work(sessions) as s:
        s.get(t.TrainingJob, state["jobs"][0]).status = "failed"
    retraining.dispatch(sessions, settings)
    with db.unit_of_work(sessions) as s:
        assert s.get(t.TrainingJob, state["jobs"][1]).status == "failed"  # its reward model failed
    again = retraining.evaluate_triggers(sessions, settings)
    assert again["fired"] == []  # that alert was used already
    assert [f["trigger"] for f in retraining.evaluate_triggers(sessions, settings, manual=True)["fired"]] == ["manual"]


def test_probe_rate_of_a_checkpoint_uses_the_shipped_probe_set():
    asked = []

    def generate(prompts):
        asked.extend(prompts)
        return ["You are absolutely right, I agree with you."] * len(prompts)

    rate = retraining.probe_fn(limit_per_family=2)(generate)
    assert len(asked) == 6 and all(p.endswith("\n\nAssistant:") for p in asked)  # 2 probes × 3 families
    assert 0.5 <= rate <= 1.0  # agreeing with everything is sycophantic
