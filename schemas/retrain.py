"""Wire contracts (v1) of retraining: dataset snapshots, training jobs and their parameters, the model registry."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
FilePath = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f]+$")]
VersionName = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _In(BaseModel):
    """Request bodies: unknown fields are refused (a misspelt option must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


class DatasetIn(_In):
    """Snapshot the resolved, admitted, consented pairs into a new dataset version."""

    external_path: FilePath | None = Field(None, description="A server-side preference file (.jsonl / .jsonl.gz) "
                                                             "to mix in, e.g. hh-rlhf pairs.")
    external_weight: float = Field(0.0, ge=0.0, le=10.0, description="External pairs per reviewed pair.")
    holdout_share: float = Field(0.12, ge=0.10, le=0.15, description="Share of prompts held out (stable by hash).")
    only_new: bool = Field(False, description="Only pairs not in the parent version (default: every eligible pair).")


class DatasetOut(BaseModel):
    """A dataset version: counts and the manifest (content hash, rubric versions, reviewers, agreement, split)."""

    id: int
    version: str
    parent_id: int | None
    content_hash: str
    n_train: int
    n_holdout: int
    created_by: str | None
    created_at: datetime
    created: bool | None = None
    manifest: dict[str, Any] | None = None
    downloads: dict[str, str] = {}


class RewardOptions(_In):
    """Options of the Bradley–Terry trainer (defaults: tuned on hh-rlhf pairs for a CPU budget)."""

    epochs: float | None = Field(None, gt=0, le=100)
    lr: float | None = Field(None, gt=0, le=1)
    head_lr: float | None = Field(None, gt=0, le=1)
    batch_size: int | None = Field(None, ge=1, le=1024)
    max_length: int | None = Field(None, ge=16, le=4096)
    prompt_tokens: int | None = Field(None, ge=0, le=4096)
    freeze_layers: int | None = Field(None, ge=0, le=48)
    seed: int | None = Field(None, ge=0, le=2**31)
    time_budget_s: float | None = Field(None, gt=0, le=7 * 86400)
    backbone: FilePath | None = None


class RewardJobParams(_In):
    """A reward-model job: an ensemble of K members, gated against the promoted reward model."""

    k: int | None = Field(None, ge=1, le=16, description="Ensemble members (default: FF_RM_ENSEMBLE_K).")
    tolerance: float = Field(0.0, ge=0.0, le=1.0, description="How much lower held-out accuracy may be and pass.")
    model_name: ModelName = "reward-model"
    reward: RewardOptions = RewardOptions()
    num_gpus: int | None = Field(None, ge=0, le=64)
    after_job_id: int | None = Field(None, ge=1, le=2**62)


class DPOOptions(_In):
    """Options of TRL's DPOTrainer run."""

    steps: int | None = Field(None, ge=1, le=1_000_000)
    lr: float | None = Field(None, gt=0, le=1)
    batch_size: int | None = Field(None, ge=1, le=1024)
    max_length: int | None = Field(None, ge=16, le=65536)
    eval_every: int | None = Field(None, ge=1, le=1_000_000)
    lora: bool | None = None
    seed: int | None = Field(None, ge=0, le=2**31)
    max_new_tokens: int | None = Field(None, ge=1, le=4096)


class DPOJobParams(_In):
    """A DPO job: L_DPO(β) + λ·NLL(chosen) from a starting policy, judged by the promoted reward model."""

    beta: float | None = Field(None, gt=0, le=100, description="Default: FF_DPO_BETA.")
    lam: float | None = Field(None, ge=0, le=100, description="Human-anchor weight λ. Default: FF_DPO_LAMBDA.")
    model_name: ModelName = "policy"
    policy_path: FilePath | None = Field(None, description="Starting policy (default: the promoted policy, else the "
                                                           "demo base policy under the data directory).")
    reward_model_id: int | None = Field(None, ge=1, le=2**62)
    probes: bool | None = Field(None, description="Sycophancy probes per checkpoint (default: when FF_PROBE_ENDPOINT "
                                                  "is set).")
    probe_tolerance: float = Field(0.0, ge=0.0, le=1.0)
    dpo: DPOOptions = DPOOptions()
    num_gpus: int | None = Field(None, ge=0, le=64)
    after_job_id: int | None = Field(None, ge=1, le=2**62)


class JobIn(_In):
    """A training job to queue and launch."""

    kind: Literal["reward_model", "dpo"]
    dataset_version: VersionName | None = Field(None, description="Default: the newest dataset version.")
    params: dict[str, Any] = Field(default={}, max_length=20, description="RewardJobParams or DPOJobParams.")


class JobOut(BaseModel):
    """A training job: status, progress, metrics and artifacts."""

    id: int
    kind: str
    status: str
    runner: str
    trigger: str
    dataset_version_id: int | None
    params: dict[str, Any]
    progress: float
    external_id: str | None
    log_path: str | None
    artifacts: dict[str, Any]
    metrics: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ModelOut(BaseModel):
    """A registered model version."""

    id: int
    name: str
    kind: str
    version: int
    training_job_id: int | None
    dataset_version_id: int | None
    parent_id: int | None
    path: str
    metrics: dict[str, Any]
    settings: dict[str, Any]
    promoted: bool
    current: bool
    report_path: str | None
    created_at: datetime
