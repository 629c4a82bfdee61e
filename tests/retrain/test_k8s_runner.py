"""Kubernetes runner: the chart's training-job template, submitted with the kubernetes client to a fake API server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from retrain import runners

CHART = Path(__file__).resolve().parents[2] / "helm" / "feedback-factory"


@pytest.fixture(scope="module")
def template_file(tmp_path_factory) -> Path:
    """The training Job template exactly as the chart renders it into its ConfigMap."""
    chart = helm.Chart.load(CHART)
    try:
        manifests = chart.render({"training": {"gpus": 2}}, name="ff", namespace="ml")
    finally:
        chart.close()
    texts = [text for path, text in manifests.items() if not path.endswith("NOTES.txt")]
    docs = [d for text in texts for d in yaml.safe_load_all(text) if d]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-training-job")]
    path = tmp_path_factory.mktemp("k8s") / "training-job.yaml"
    path.write_text(cm["data"]["training-job.yaml"])
    return path


@pytest.fixture
def fake_api():
    """A tiny Kubernetes API server that accepts Job creation and records each request body."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "body": body, "content_type": self.headers["Content-Type"]})
            ok = self.path.startswith("/apis/batch/v1/namespaces/") and self.path.endswith("/jobs")
            reply = {**body, "metadata": {**body.get("metadata", {}), "uid": "u-1"}} if ok else {"kind": "Status"}
            data = json.dumps(reply).encode()
            self.send_response(201 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _client(host: str):
    from kubernetes import client

    config = client.Configuration()
    config.host = host
    return client.ApiClient(config)


def test_the_fake_api_receives_a_named_gpu_job_with_the_job_id(template_file, fake_api):
    host, seen = fake_api
    runner = runners.KubernetesJobRunner(template_file, namespace="ml", api_client=_client(host))
    launched = runner.launch(42, "/data/jobs/42/log.txt")
    (req,) = seen
    assert req["path"] == "/apis/batch/v1/namespaces/ml/jobs"
    job = req["body"]
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    name = job["metadata"]["name"]
    assert "generateName" not in job["metadata"] and len(name) <= 63
    assert name.startswith("ff-feedback-factory-train-42-")
    assert job["metadata"]["labels"][runners.JOB_ID_LABEL] == "42"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["retrain", "run-job", "--job-id", "42"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"  # from the chart's `training.gpus`
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert launched.external_id == f"k8s:ml/{name}"


def test_gpus_of_the_job_override_the_template_and_zero_removes_the_request(template_file):
    template = runners.load_template(template_file)
    four = runners.build_job(template, 7, gpus=4)
    cpu = runners.build_job(template, 7, gpus=0)
    assert four["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert "nvidia.com/gpu" not in cpu["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert runners.build_job(template, 7)["metadata"]["name"] != runners.build_job(template, 7)["metadata"]["name"]
    assert template["spec"]["template"]["spec"]["containers"][0]["args"] == ["retrain", "run-job"]  # not mutated


def test_refusals_and_bad_templates_are_runner_errors(template_file, fake_api, tmp_path):
    bad = tmp_path / "not-a-job.yaml"
    bad.write_text("kind: ConfigMap\n")
    with pytest.raises(runners.RunnerError):
        runners.load_template(bad)
    host, _ = fake_api
    runner = runners.KubernetesJobRunner(template_file, namespace="ml", api_client=_client("http://127.0.0.1:9"))
    with pytest.raises(runners.RunnerError):
        runner.launch(1)
