"""The Helm chart, rendered and linted by Helm's own Go SDK (helm-python-sdk): kinds, probes, settings, hooks, GPUs."""

import base64
import sys
from collections import Counter
from pathlib import Path

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "feedback-factory"
PRODUCTION = yaml.safe_load((CHART / "values-production.yaml").read_text())
RELEASE, NAMESPACE = "ff", "ml"
FULLNAME = "ff-feedback-factory"

try:
    from services.settings import Settings
except ImportError:  # the project is not installed (yet): import it from the checkout
    sys.path.insert(0, str(REPO))
    from services.settings import Settings

SETTINGS_ENV = {f"FF_{name.upper()}" for name in Settings.model_fields}
SECRET_ENV = {"FF_DATABASE_URL", "FF_WEBHOOK_URL", "FF_WEBHOOK_SECRET", "FF_SLACK_WEBHOOK_URL"}
VALUE_SETS = {"default": {}, "production": PRODUCTION}


@pytest.fixture(scope="module")
def chart():
    loaded = helm.Chart.load(CHART)
    yield loaded
    loaded.close()


def render(chart, values=None) -> list[dict]:
    """Every manifest the chart renders (NOTES.txt excluded), as parsed documents."""
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def one(docs, kind, name) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def is_hook(doc) -> bool:
    return "helm.sh/hook" in (doc["metadata"].get("annotations") or {})


def pod_specs(docs) -> dict[str, dict]:
    """The pod specs that must see every setting: API, consumer, drift CronJob and the training Job template."""
    training_cm = one(docs, "ConfigMap", f"{FULLNAME}-training-job")
    training_job = yaml.safe_load(training_cm["data"]["training-job.yaml"])
    return {
        "api": one(docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"],
        "consumer": one(docs, "Deployment", f"{FULLNAME}-consumer")["spec"]["template"]["spec"],
        "drift": one(docs, "CronJob", f"{FULLNAME}-drift")["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "training": training_job["spec"]["template"]["spec"],
    }


def env_names(docs, container) -> set[str]:
    """Variable names a container receives: its `env` plus the keys of rendered ConfigMaps/Secrets in `envFrom`."""
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        else:
            names |= set(one(docs, "Secret", source["secretRef"]["name"]).get("data", {}))
    return names


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_lint_strict_reports_no_errors_or_warnings(values_name):
    report = helm.lint(CHART, VALUE_SETS[values_name], strict=True, namespace=NAMESPACE)

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_values_render_the_core_kinds_only(chart):
    docs = render(chart)

    kinds = Counter(d["kind"] for d in docs)
    assert kinds == {
        "Deployment": 2,  # API, consumer
        "Service": 2,  # API, consumer metrics
        "CronJob": 1,
        "Job": 1,
        "ConfigMap": 2,  # settings, training Job template
        "Secret": 2,  # chart secrets, migration hook secret
        "ServiceAccount": 1,
        "Role": 1,
        "RoleBinding": 1,
    }
    assert is_hook(one(docs, "Job", f"{FULLNAME}-migrate"))


def test_production_values_add_hpa_servicemonitors_networkpolicies_and_storage(chart):
    docs = render(chart, PRODUCTION)

    kinds = Counter(d["kind"] for d in docs)
    assert kinds == {
        "Deployment": 2,
        "Service": 2,
        "CronJob": 1,
        "Job": 1,
        "ConfigMap": 2,
        "ServiceAccount": 1,
        "Role": 1,
        "RoleBinding": 1,
        "HorizontalPodAutoscaler": 1,
        "ServiceMonitor": 2,
        "NetworkPolicy": 3,
        "PersistentVolumeClaim": 1,
    }  # no Secret: every secret comes from an existingSecret
    hpa = one(docs, "HorizontalPodAutoscaler", f"{FULLNAME}-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{FULLNAME}-api"}
    assert hpa["spec"]["minReplicas"] == 3
    assert "replicas" not in one(docs, "Deployment", f"{FULLNAME}-api")["spec"]  # the HPA owns the count
    assert PRODUCTION["consumer"]["replicas"] <= PRODUCTION["kafka"]["partitions"] == 6
    assert one(docs, "Deployment", f"{FULLNAME}-consumer")["spec"]["replicas"] == PRODUCTION["consumer"]["replicas"]


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_api_serves_probes_on_its_named_port_as_non_root(chart, values_name):
    docs = render(chart, VALUE_SETS[values_name])
    pod = one(docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    service = one(docs, "Service", f"{FULLNAME}-api")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_services_select_their_own_pods(chart, values_name):
    docs = render(chart, VALUE_SETS[values_name])

    for component in ("api", "consumer"):
        deployment = one(docs, "Deployment", f"{FULLNAME}-{component}")
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        for service in [d for d in docs if d["kind"] == "Service"]:
            selects = service["spec"]["selector"].items() <= pod_labels.items()
            assert selects == service["metadata"]["name"].startswith(f"{FULLNAME}-{component}")
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_consumer_exposes_metrics_port_from_settings(chart):
    docs = render(chart)
    (container,) = one(docs, "Deployment", f"{FULLNAME}-consumer")["spec"]["template"]["spec"]["containers"]
    config = one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]

    assert container["args"] == ["consume"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9108, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert config["FF_KAFKA_METRICS_PORT"] == "9108"
    assert config["FF_CONSUMER_PROCESSES"] == "1"  # one member per pod by default: scale with replicas
    service = one(docs, "Service", f"{FULLNAME}-consumer-metrics")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_every_setting_reaches_api_consumer_drift_and_training_pods(chart, values_name):
    docs = render(chart, VALUE_SETS[values_name])
    config = one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]

    for component, pod in pod_specs(docs).items():
        (container,) = pod["containers"]
        missing = SETTINGS_ENV - env_names(docs, container)
        assert not missing, f"{component} pod lacks {sorted(missing)}"
        secret_refs = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        assert SECRET_ENV <= secret_refs, component
    assert not SECRET_ENV & set(config), "secrets must not land in the ConfigMap"


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_secret_references_resolve(chart, values_name):
    values = VALUE_SETS[values_name]
    docs = render(chart, values)
    rendered_secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    external = {values.get("database", {}).get("existingSecret"), values.get("alerts", {}).get("existingSecret")}

    for component, pod in pod_specs(docs).items():
        for env in pod["containers"][0]["env"]:
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                continue
            if ref["name"] in rendered_secrets:
                assert ref["key"] in rendered_secrets[ref["name"]]["data"], (component, env["name"])
            else:
                assert ref["name"] in external, (component, env["name"], ref)


def test_existing_secrets_replace_the_chart_secret(chart):
    docs = render(chart, PRODUCTION)
    (container,) = one(docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}

    assert refs["FF_DATABASE_URL"] == {"name": "feedback-factory-db", "key": "database-url"}
    assert refs["FF_WEBHOOK_SECRET"] == {"name": "feedback-factory-alerts", "key": "webhook-secret"}
    assert refs["FF_SLACK_WEBHOOK_URL"] == {"name": "feedback-factory-alerts", "key": "slack-webhook-url"}
    config = one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]
    assert config["FF_KAFKA_BOOTSTRAP_SERVERS"] == PRODUCTION["kafka"]["bootstrapServers"]


def test_kafka_bootstrap_servers_from_a_secret_leave_the_configmap(chart):
    docs = render(chart, {"kafka": {"existingSecret": "kafka-creds", "existingSecretKey": "servers"}})
    config = one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]

    assert "FF_KAFKA_BOOTSTRAP_SERVERS" not in config
    for component, pod in pod_specs(docs).items():
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        ref = env["FF_KAFKA_BOOTSTRAP_SERVERS"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "kafka-creds", "key": "servers"}, component


def test_rendered_settings_are_accepted_by_the_settings_class(chart, monkeypatch):
    docs = render(chart)
    environment = dict(one(docs, "ConfigMap", f"{FULLNAME}-config")["data"])
    secret = one(docs, "Secret", f"{FULLNAME}-secrets")["data"]
    (container,) = one(docs, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]["containers"]
    for env in container["env"]:
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            environment[env["name"]] = base64.b64decode(secret[ref["key"]]).decode()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    settings = Settings(_env_file=None)

    assert settings.port == 8000 and settings.host == "0.0.0.0"
    assert settings.max_body_bytes == 8 * 1024 * 1024  # not "8.388608e+06": Helm reads YAML numbers as floats
    assert settings.agreement_threshold == pytest.approx(2 / 3)
    assert settings.job_runner == "kubernetes"
    assert settings.k8s_namespace == NAMESPACE
    assert settings.k8s_job_template == Path("/etc/feedback-factory/training-job.yaml")
    assert settings.data_dir == Path("/var/lib/feedback-factory")
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_config_values_are_settings_fields_with_their_defaults(chart):
    config = chart.values["config"]

    assert set(config) <= set(Settings.model_fields), "a `config` key is not a Settings field"
    for name, value in config.items():
        default = Settings.model_fields[name].default
        assert value == (pytest.approx(default) if isinstance(default, float) else default), name
    assert set(PRODUCTION["config"]) <= set(Settings.model_fields)


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_training_job_template_requests_a_gpu_and_is_mounted_where_settings_point(chart, values_name):
    values = VALUE_SETS[values_name]
    docs = render(chart, values)
    cm = one(docs, "ConfigMap", f"{FULLNAME}-training-job")
    job = yaml.safe_load(cm["data"]["training-job.yaml"])
    pod = job["spec"]["template"]["spec"]
    (trainer,) = pod["containers"]

    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert trainer["args"] == ["retrain", "run-job"]  # the runner appends --job-id <id>
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["restartPolicy"] == "Never"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod.get("nodeSelector", {}) == values.get("training", {}).get("nodeSelector", {})
    assert pod["securityContext"]["runAsNonRoot"] is True
    for component in ("api", "drift"):
        spec = pod_specs(docs)[component]
        volume = next(v for v in spec["volumes"] if v.get("configMap", {}).get("name") == cm["metadata"]["name"])
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
        config = one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]
        assert f"{mount['mountPath']}/training-job.yaml" == config["FF_K8S_JOB_TEMPLATE"]


def training_job(docs) -> dict:
    return yaml.safe_load(one(docs, "ConfigMap", f"{FULLNAME}-training-job")["data"]["training-job.yaml"])


def test_production_training_pods_land_on_gpu_nodes(chart):
    pod = training_job(render(chart, PRODUCTION))["spec"]["template"]["spec"]

    assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert pod["volumes"][1]["persistentVolumeClaim"]["claimName"] == f"{FULLNAME}-data"


def test_cpu_training_drops_the_gpu_limit(chart):
    job = training_job(render(chart, {"training": {"gpus": 0}}))

    assert "nvidia.com/gpu" not in job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


@pytest.mark.parametrize("values_name", VALUE_SETS)
def test_migration_job_is_a_pre_install_pre_upgrade_hook_independent_of_release_resources(chart, values_name):
    docs = render(chart, VALUE_SETS[values_name])
    job = one(docs, "Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) == 0
    assert set(annotations["helm.sh/hook-delete-policy"].split(",")) == {"before-hook-creation", "hook-succeeded"}
    assert container["args"] == ["db", "upgrade"]
    # hooks run before the release's own resources exist: reference none of them
    assert "envFrom" not in container and "serviceAccountName" not in pod
    ref = next(e for e in container["env"] if e["name"] == "FF_DATABASE_URL")["valueFrom"]["secretKeyRef"]
    hook_secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret" and is_hook(d)}
    if ref["name"] in hook_secrets:
        secret_annotations = hook_secrets[ref["name"]]["metadata"]["annotations"]
        assert secret_annotations["helm.sh/hook"] == annotations["helm.sh/hook"]
        assert int(secret_annotations["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
        assert ref["key"] in hook_secrets[ref["name"]]["data"]
    else:
        assert ref["name"] == VALUE_SETS[values_name]["database"]["existingSecret"]


def test_drift_cronjob_runs_one_evaluation_at_a_time(chart):
    cron = one(render(chart), "CronJob", f"{FULLNAME}-drift")

    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["drift", "run"]


def test_job_runner_may_manage_jobs_and_read_pod_logs_in_its_namespace_only(chart):
    docs = render(chart)
    role = one(docs, "Role", f"{FULLNAME}-job-runner")
    binding = one(docs, "RoleBinding", f"{FULLNAME}-job-runner")
    rules = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }

    assert rules[("batch", "jobs")] >= {"create", "get", "list", "watch", "delete"}
    assert "get" in rules[("", "pods/log")]
    assert "get" in rules[("", "pods")]
    assert role["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    service_account = one(docs, "ServiceAccount", FULLNAME)["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}]
    specs = pod_specs(docs)
    assert specs["api"]["serviceAccountName"] == specs["drift"]["serviceAccountName"] == service_account


def test_servicemonitors_scrape_metrics_of_existing_services(chart):
    docs = render(chart, PRODUCTION)
    services = [d for d in docs if d["kind"] == "Service"]

    for monitor in [d for d in docs if d["kind"] == "ServiceMonitor"]:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        selector = monitor["spec"]["selector"]["matchLabels"].items()
        matched = [s for s in services if selector <= s["metadata"]["labels"].items()]
        assert len(matched) == 1 and endpoint["port"] in {p["name"] for p in matched[0]["spec"]["ports"]}


def test_network_policies_open_only_the_serving_ports(chart):
    docs = render(chart, PRODUCTION)
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}

    api_ports = {p["port"] for rule in policies[f"{FULLNAME}-api"]["ingress"] for p in rule["ports"]}
    consumer_ports = {p["port"] for rule in policies[f"{FULLNAME}-consumer"]["ingress"] for p in rule["ports"]}
    assert api_ports == {"http"} and consumer_ports == {"metrics"}
    assert policies[f"{FULLNAME}-batch"]["ingress"] == []


def test_consumer_replicas_beyond_partitions_fail_rendering(chart):
    members = r"consumer.replicas x consumer.processes \((\d+)\) must not exceed kafka.partitions \(6\)"
    with pytest.raises(helm.HelmRenderError, match=members.replace(r"(\d+)", "7")):
        render(chart, {"consumer": {"replicas": 7}, "kafka": {"partitions": 6}})
    with pytest.raises(helm.HelmRenderError, match=members.replace(r"(\d+)", "8")):
        render(chart, {"consumer": {"replicas": 4, "processes": 2}, "kafka": {"partitions": 6}})

    docs = render(chart, {"consumer": {"replicas": 3, "processes": 2}, "kafka": {"partitions": 6}})
    assert one(docs, "Deployment", f"{FULLNAME}-consumer")["spec"]["replicas"] == 3
    assert one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]["FF_CONSUMER_PROCESSES"] == "2"
