"""Runtime settings: one pydantic-settings class, every field read from an `FF_*` environment variable."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All knobs of the service; every command and worker reads the same ones."""

    model_config = SettingsConfigDict(env_prefix="FF_", env_file=".env", extra="ignore")

    # storage
    database_url: str = "sqlite:///./var/feedback_factory.db"
    data_dir: Path = Path("./var")

    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # uvicorn worker processes of `serve` (ingest is CPU-bound Python: one per core)
    # API and consumer processes: freeze the start-up heap out of the garbage collector (services.runtime)
    gc_freeze: bool = True
    gc_gen0_threshold: int = 7000
    consumer_gc_gen0_threshold: int = 100_000  # the consumer keeps whole batches alive (`services.runtime`)
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_items: int = 1000
    log_level: str = "INFO"

    # Kafka (empty bootstrap servers: `make run` starts the embedded Tansu broker)
    kafka_bootstrap_servers: str = ""
    kafka_interactions_topic: str = "ff.interactions"
    kafka_feedback_topic: str = "ff.feedback"
    kafka_dlq_topic: str = "ff.dlq"
    kafka_group_id: str = "feedback-factory"
    kafka_max_poll_records: int = 1000
    kafka_session_timeout_ms: int = 6000
    kafka_heartbeat_interval_ms: int = 1000
    kafka_max_poll_interval_ms: int = 5000
    kafka_metrics_port: int = 9108
    kafka_partitions: int = 6
    consumer_processes: int = 0  # group members `consume` runs; 0: available CPUs + 1 (at most the partitions)

    # review
    reviewers_per_item: int = 3
    agreement_threshold: float = Field(2 / 3, description="share of reviewers that must agree for an item to resolve")
    gold_share: float = 0.07
    lease_seconds: int = 900
    session_cap_minutes: int = 90
    disagreement_policy: str = "adjudication"  # or "ambiguous"

    # badcase routing
    exploration_share: float = 0.05
    review_capacity: int = 200  # items queued or in review at once; the rest wait, flagged, by priority

    # drift and alerts
    drift_window_rows: int = 2000
    drift_interval_seconds: int = 300
    webhook_url: str = ""
    webhook_secret: str = ""
    slack_webhook_url: str = ""
    alertmanager_url: str = ""

    # retraining
    job_runner: str = "local"  # or "kubernetes"
    k8s_namespace: str = "default"
    k8s_job_template: Path = Path("/etc/feedback-factory/training-job.yaml")
    retrain_min_new_pairs: int = 200
    retrain_alert_severity: str = "critical"
    dpo_beta: float = 0.1
    dpo_lambda: float = 1.0
    rm_ensemble_k: int = 3
    probe_endpoint: str = ""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
