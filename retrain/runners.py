"""Job runners: start a training job as a local process (default) or as a Kubernetes Job requesting GPUs.

A runner only starts the job's worker (`--job-id N` appended to a command) and returns an external id; the worker
records status, progress and results in the database itself, so the same status endpoint serves both runners.
The Kubernetes runner builds the Job from the Helm chart's training-job template (a batch/v1 Job with
`generateName`), sets `metadata.name` and a job-id label, appends `--job-id N` to the first container's args,
sets the `nvidia.com/gpu` limit, and creates it with the `kubernetes` client.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from schemas.errors import FFError

GPU = "nvidia.com/gpu"
JOB_ID_LABEL = "feedback-factory.io/training-job-id"


class RunnerError(FFError):
    """A job could not be handed to its runner."""

    code, status = "runner_failed", 502


@dataclass
class Launched:
    """What a runner started: an id to find it by (pid or Job name) and where its log goes."""

    external_id: str
    log_path: str | None = None
    manifest: dict[str, Any] | None = None


@dataclass
class LocalProcessRunner:
    """Starts `command + ["--job-id", N]` as a detached process with the given environment, output to the log."""

    command: Sequence[str] = (sys.executable, "-m", "retrain.worker")
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "local"

    def launch(self, job_id: int, log_path: str | os.PathLike, *, gpus: int | None = None) -> Launched:
        """Spawn the worker; it outlives this call (and the API request that made it). GPUs: the worker decides."""
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with open(path, "ab") as out:
            try:
                proc = subprocess.Popen([*self.command, "--job-id", str(job_id)], stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True)  # fmt: skip
            except OSError as exc:
                raise RunnerError(f"could not start the training worker: {exc}") from exc
        return Launched(external_id=f"pid:{proc.pid}", log_path=str(path))


def load_template(path: str | os.PathLike) -> dict[str, Any]:
    """The Job manifest of the chart's training-job template (a YAML file mounted from its ConfigMap)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RunnerError(f"cannot read the training Job template {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "Job":
        raise RunnerError(f"{path} is not a Kubernetes Job manifest")
    return doc


def _name(prefix: str, job_id: int) -> str:
    """A DNS-1123 Job name: the template's prefix, the job id and a short random suffix (a re-run gets a new one)."""
    suffix = f"{job_id}-{secrets.token_hex(3)}"
    prefix = re.sub(r"[^a-z0-9-]", "-", prefix.lower()).strip("-")[: 63 - len(suffix) - 1] or "ff-train"
    return f"{prefix}-{suffix}"


def build_job(template: dict[str, Any], job_id: int, *, gpus: int | None = None,
              env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Job to create for a training job: named, labelled, `--job-id N` appended, the GPU limit set."""
    job = copy.deepcopy(template)
    meta = job.setdefault("metadata", {})
    meta["name"] = _name(meta.pop("generateName", None) or meta.get("name") or "ff-train", job_id)
    meta.setdefault("labels", {})[JOB_ID_LABEL] = str(job_id)
    pod = job.setdefault("spec", {}).setdefault("template", {})
    pod.setdefault("metadata", {}).setdefault("labels", {})[JOB_ID_LABEL] = str(job_id)
    containers = pod.setdefault("spec", {}).get("containers") or []
    if not containers:
        raise RunnerError("the training Job template has no container")
    first = containers[0]
    first["args"] = [*(first.get("args") or []), "--job-id", str(job_id)]
    resources = first.setdefault("resources", {})
    limits = resources.setdefault("limits", {})
    wanted = gpus if gpus is not None else int(limits.get(GPU, 1))
    if wanted > 0:
        limits[GPU] = wanted
    else:
        limits.pop(GPU, None)
    for group in ("limits", "requests"):  # quantities are strings in the API (YAML reads `2` as a number)
        if isinstance(resources.get(group), dict):
            resources[group] = {k: str(v) for k, v in resources[group].items()}
    if env:
        given = {e.get("name") for e in first.get("env") or []}
        first["env"] = [*(first.get("env") or []), *({"name": k, "value": v} for k, v in env.items() if k not in given)]
    return job


@dataclass
class KubernetesJobRunner:
    """Creates the training Job in a namespace with the `kubernetes` client (in-cluster config, else kubeconfig)."""

    template_path: str | os.PathLike
    namespace: str = "default"
    api_client: Any = None
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "kubernetes"

    def _client(self):
        from kubernetes import client, config

        if self.api_client is not None:
            return client.BatchV1Api(self.api_client)
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return client.BatchV1Api()

    def launch(self, job_id: int, log_path: str | os.PathLike | None = None, *, gpus: int | None = None) -> Launched:
        """Create the Job; its name is the external id (logs: `kubectl logs job/<name>` and the job's log file)."""
        from kubernetes.client.exceptions import ApiException

        body = build_job(load_template(self.template_path), job_id, gpus=gpus, env=self.env)
        try:
            created = self._client().create_namespaced_job(namespace=self.namespace, body=body)
        except ApiException as exc:
            raise RunnerError(f"Kubernetes refused the training Job: {exc.status} {exc.reason}") from exc
        except Exception as exc:  # connection errors, missing config: the job stays queued with the error logged
            raise RunnerError(f"could not reach the Kubernetes API: {type(exc).__name__}: {exc}") from exc
        name = getattr(getattr(created, "metadata", None), "name", None) or body["metadata"]["name"]
        return Launched(external_id=f"k8s:{self.namespace}/{name}", log_path=str(log_path) if log_path else None,
                        manifest=body)
