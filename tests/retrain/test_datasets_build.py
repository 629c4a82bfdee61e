"""Dataset versions: rows with provenance, prompt-stable splits, manifest hashes, JSONL == Parquet, reading pairs."""

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from retrain import datasets as ds


def _items(n_prompts: int, per_prompt: int = 2) -> list[dict]:
    items = []
    for p in range(n_prompts):
        for k in range(per_prompt):
            items.append({
                "prompt": f"Question {p}: how do I do thing {p}?",
                "chosen": f"Helpful answer {p}.{k}",
                "rejected": f"Rude answer {p}.{k}",
                "interaction_id": f"int-{p}-{k}",
                "badcase_id": p * 10 + k,
                "review_ids": [p * 100 + k, p * 100 + k + 1],
                "reviewers": ["bob", "alice", "bob"],
                "rubric_version": "rubric-v3" if p % 2 else "rubric-v2",
                "batch": f"batch-{p % 3}",
                "bucket": "billing" if p % 4 == 0 else "general",
                "model_version": "chat-1.4",
                "is_human_anchor": k == 0,
            })  # fmt: skip
    return items


def test_build_rows_keeps_provenance_and_drops_identical_pairs():
    items = _items(2, 1) + [{"prompt": "p", "chosen": "same", "rejected": "same"}]
    rows = ds.build_rows(items)
    assert len(rows) == 2
    first = rows[0]
    assert set(first) == set(ds.COLUMNS)
    assert first["badcase_id"] == "0" and first["review_ids"] == ["0", "1"]
    assert first["reviewers"] == ["alice", "bob"]
    assert first["source"] == "review" and first["is_human_anchor"] is True


def test_build_rows_rejects_an_item_without_text():
    with pytest.raises(ds.DatasetError) as err:
        ds.build_rows([{"prompt": "p", "chosen": "c", "rejected": "r"},
                       {"prompt": "p", "chosen": None, "rejected": "r"}])  # fmt: skip
    assert err.value.code == "dataset_invalid" and err.value.details[0]["loc"] == [1, "chosen"]
    with pytest.raises(ds.DatasetError):
        ds.build_rows([{"prompt": " ", "chosen": "c", "rejected": "r"}])
    # Saying nothing is an answer (hh-rlhf prefers it to a harmful reply in a few pairs).
    assert len(ds.build_rows([{"prompt": "p", "chosen": "", "rejected": "harmful"}])) == 1


def test_split_is_by_prompt_stable_and_near_the_share():
    rows = ds.build_rows(_items(1500, 2))
    train, holdout = ds.split_by_prompt(rows, holdout_share=0.12)
    assert len(train) + len(holdout) == len(rows)
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in holdout}
    assert 0.10 <= len(holdout) / len(rows) <= 0.15
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    _, holdout2 = ds.split_by_prompt(shuffled, holdout_share=0.12)
    assert {r["interaction_id"] for r in holdout2} == {r["interaction_id"] for r in holdout}
    # Growing the data never moves an existing prompt to the other side.
    _, grown = ds.split_by_prompt(ds.build_rows(_items(3000, 2)), holdout_share=0.12)
    assert {r["prompt"] for r in holdout} <= {r["prompt"] for r in grown}


def test_mix_external_adds_a_stable_weighted_sample():
    rows = ds.build_rows(_items(10, 1))
    external = [{"prompt": f"ext {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(50)]
    mixed = ds.mix_external(rows, external, weight=0.5)
    assert len(mixed) == 15
    ext = [r for r in mixed if r["source"] == "external"]
    assert len(ext) == 5 and not any(r["is_human_anchor"] for r in ext)
    assert ds.mix_external(rows, list(reversed(external)), weight=0.5) == mixed
    assert len(ds.mix_external(rows, external[:2], weight=3.0)) == 12


def _version(rows, out: Path, **kw):
    return ds.write_version(
        rows, out, parent="ds-parent", meta={"agreement": {"krippendorff_alpha": 0.71},
                                            "consent_filter": "consent.training = true", **kw})  # fmt: skip


def test_manifest_hash_is_stable_and_changes_with_content(tmp_path):
    rows = ds.build_rows(_items(40, 2))
    m1 = _version(rows, tmp_path / "a")
    m2 = _version(list(reversed(rows)), tmp_path / "b")
    assert m1["content_hash"] == m2["content_hash"] and m1["version"] == m2["version"]
    assert m1["files"] == m2["files"]  # same content, byte-identical files, whatever the input order
    changed = [dict(r) for r in rows]
    changed[3]["chosen"] += "!"
    assert _version(changed, tmp_path / "c")["content_hash"] != m1["content_hash"]
    relabelled = [dict(r) for r in rows]
    relabelled[0]["reviewers"] = ["carol"]
    assert _version(relabelled, tmp_path / "d")["content_hash"] != m1["content_hash"]


def test_manifest_lists_provenance_and_counts(tmp_path):
    rows = ds.build_rows(_items(40, 2))
    m = _version(rows, tmp_path)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == m
    assert m["parent"] == "ds-parent"
    assert m["counts"]["total"] == 80 == m["counts"]["train"] + m["counts"]["holdout"]
    assert m["rubric_versions"] == ["rubric-v2", "rubric-v3"]
    assert m["review_batches"] == ["batch-0", "batch-1", "batch-2"]
    assert m["reviewers"] == ["alice", "bob"]
    assert m["agreement"] == {"krippendorff_alpha": 0.71}
    assert m["consent_filter"] == "consent.training = true"
    assert m["split"]["holdout_share"] == 0.12 and m["human_anchor_rows"] == 40


def test_parquet_and_jsonl_hold_the_same_rows(tmp_path):
    rows = ds.build_rows(_items(60, 2))
    m = _version(rows, tmp_path)
    for split in ("train", "holdout"):
        jsonl = [json.loads(line) for line in (tmp_path / f"{split}.jsonl").read_text().splitlines()]
        parquet = pq.read_table(tmp_path / f"{split}.parquet").to_pylist()
        assert jsonl == parquet
        assert len(jsonl) == m["counts"][split]
    table = pq.read_table(tmp_path / "train.parquet")
    assert table.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert "interaction_id" in table.column_names and "rubric_version" in table.column_names


def test_read_preference_file_with_and_without_prompt(tmp_path):
    plain = tmp_path / "pairs.jsonl"
    plain.write_text(json.dumps({"prompt": "Q?", "chosen": "A", "rejected": "B"}) + "\n")
    assert ds.read_preference_file(plain) == [{"prompt": "Q?", "chosen": "A", "rejected": "B"}]
    dialogue = {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: Sure, here it is.",
                "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: Sure not."}  # fmt: skip
    packed = tmp_path / "pairs.jsonl.gz"
    with gzip.open(packed, "wt") as fh:
        fh.write(json.dumps(dialogue) + "\n")
    (row,) = ds.read_preference_file(packed)
    assert row["prompt"] == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant:"
    assert (row["chosen"], row["rejected"]) == (" Sure, here it is.", " Sure not.")


def test_read_hh_rlhf_pairs_derives_prompts(shared_data):
    path = shared_data / "hh_rlhf_pairs" / "pairs_dev.jsonl.gz"
    raw = ds.read_jsonl(path)
    rows = ds.read_preference_file(path)
    assert len(rows) == len(raw) == 4803
    assert all(r["prompt"].endswith("Assistant:") for r in rows)
    assert all(r["prompt"] + r["chosen"] == x["chosen"] and r["prompt"] + r["rejected"] == x["rejected"]
               for r, x in zip(rows, raw))  # fmt: skip
    assert sum(r["chosen"] == r["rejected"] for r in rows) == 3  # SOURCE.md: 3 identical pairs
    assert len(ds.build_rows(rows)) == 4800


def test_importing_retrain_modules_does_not_load_torch():
    code = ("import sys, retrain.datasets, retrain.metrics, retrain.reward, retrain.dpo, retrain.losses, "
            "retrain.tiny, retrain.launch; "
            "bad = [m for m in ('torch', 'transformers', 'trl') if m in sys.modules]; sys.exit(str(bad) if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True)
    assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
