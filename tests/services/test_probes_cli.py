"""`probes run` against the local fake LLM, and `drift check` on two JSONL files, through the real CLI."""

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from drift import fake_llm
from schemas import tables as t
from services import db
from services.cli import app
from services.settings import get_settings
from support.events import interaction

runner = CliRunner()


def invoke(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, list(args))
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout  # one JSON object, nothing else on stdout
    return result.exit_code, json.loads(lines[0])


@pytest.fixture
def configured(database_url, tmp_path, monkeypatch):
    """The CLI's settings point at the test database (get_settings is cached: clear it around the test)."""
    monkeypatch.setenv("FF_DATABASE_URL", database_url)
    monkeypatch.setenv("FF_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


@pytest.fixture
def fake():
    servers = []

    def start(rate):
        server, url = fake_llm.serve(sycophancy_rate=rate)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_probe_rates_follow_the_setting_and_the_sycophantic_version_alerts(configured, fake):
    code, honest = invoke("probes", "run", "--endpoint", fake(0.0), "--model", "fake", "--model-version", "v-honest",
                          "--max-probes", "300")
    assert code == 0 and honest["stored"] is True and honest["errors"] == 0
    assert honest["rate"] == 0.0 and all(f["rate"] == 0.0 for f in honest["families"].values())
    assert set(honest["families"]) == {"perez_political", "pushback", "false_premise"}
    assert honest["families"]["perez_political"]["n"] == 300 and honest["families"]["pushback"]["n"] >= 20

    code, syco = invoke("probes", "run", "--endpoint", fake(0.4), "--model", "fake", "--model-version", "v-syco")
    assert code == 0 and syco["stored"] is True
    assert abs(syco["rate"] - 0.4) <= 0.05 and abs(syco["families"]["perez_political"]["rate"] - 0.4) <= 0.05
    assert syco["alerts"][0]["outcome"] == "opened"
    # the same version probed again: still one open alert (dedupe)
    code, again = invoke("probes", "run", "--endpoint", fake(0.4), "--model", "fake", "--model-version", "v-syco",
                         "--max-probes", "100")
    assert again["alerts"][0] == {"rule": "probe_sycophancy_rate_high", "outcome": None, "open": True}

    engine = db.make_engine(configured)
    with engine.connect() as conn:
        alerts = conn.execute(select(t.Alert.model_version, t.Alert.signal, t.Alert.severity, t.Alert.status)).all()
        runs = conn.execute(select(t.ProbeRun.model_version, t.ProbeRun.overall_rate).order_by(t.ProbeRun.id)).all()
    engine.dispose()
    assert alerts == [("v-syco", "probe_sycophancy_rate", "critical", "open")]
    assert [r.model_version for r in runs] == ["v-honest", "v-syco", "v-syco"] and runs[0].overall_rate == 0.0


def test_probes_without_a_database_still_report(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("FF_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        code, out = invoke("probes", "run", "--endpoint", fake(0.0), "--model", "fake", "--max-probes", "5")
    finally:
        get_settings.cache_clear()
    assert code == 0 and out["stored"] is False and "db_error" in out
    assert {f: v["n"] for f, v in out["families"].items()} == {"perez_political": 5, "pushback": 5, "false_premise": 5}
    # an endpoint that does not answer: nothing scored, nothing stored, a failing exit code
    code, out = invoke("probes", "run", "--endpoint", "http://127.0.0.1:9", "--model", "fake", "--max-probes", "1")
    assert code == 1 and out["overall"]["n"] == 0 and out["errors"] == 3 and out["stored"] is False


def write_jsonl(path, start, n, scale):
    """n interactions with response lengths cycling through the same values, times `scale`."""
    with path.open("w") as fh:
        for i in range(start, start + n):
            length = int((200 + (i * 37) % 300) * scale)
            words = ("please open the settings page and follow the steps shown there " * 40)[:length]
            fh.write(json.dumps(interaction(i, response=words)) + "\n")
    return path


def test_drift_check_on_two_files(tmp_path):
    reference = write_jsonl(tmp_path / "reference.jsonl", 0, 300, 1.0)
    same = write_jsonl(tmp_path / "same.jsonl", 300, 300, 1.0)
    shifted = write_jsonl(tmp_path / "shifted.jsonl", 300, 300, 1.5)

    code, out = invoke("drift", "check", "--reference", str(reference), "--current", str(shifted))
    assert code == 0 and out["drift_detected"] is True and out["drifted"] == ["length_chars"]
    length = out["signals"]["length_chars"]
    assert (length["test"], length["threshold"], length["drift_detected"]) == ("wasserstein", 0.1, True)
    assert set(out["signals"]) == {"length_chars", "is_refusal", "sycophancy_marker", "sycophancy_flip",
                                   "negative_feedback"} and out["skipped"] == ["rm_score"]
    binary = [s for k, s in out["signals"].items() if k != "length_chars"]
    assert all(s["test"] == "z" and s["drift_detected"] is False for s in binary)

    code, out = invoke("drift", "check", "--reference", str(reference), "--current", str(same))
    assert code == 0 and out["drift_detected"] is False and out["drifted"] == []

    bad = tmp_path / "bad.jsonl"
    bad.write_text(reference.read_text().splitlines()[0] + "\n" + '{"event_id": "x"}\n')
    code, out = invoke("drift", "check", "--reference", str(reference), "--current", str(bad))
    assert code == 2 and out["error"]["code"] == "drift_check_invalid" and ":2:" in out["error"]["message"]
