"""Datasets, training jobs and the model registry."""

from pathlib import Path as FsPath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse
from sqlalchemy import func, select

from retrain import jobs, registry, snapshots
from schemas import tables as t
from schemas.errors import NotFound
from schemas.read import Page
from schemas.retrain import DatasetIn, DatasetOut, JobIn, JobOut, ModelOut, VersionName
from services import db, retraining
from services.api.deps import ObjectId, SessionDep, SettingsDep, require
from services.api.errors import ERROR_RESPONSES

# ML engineers hold `ops` (or `admin`) keys.
router = APIRouter(prefix="/v1", tags=["retrain"], dependencies=[Depends(require("ops"))])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
LOG_TAIL_BYTES = 256 * 1024


def dataset_out(row: t.DatasetVersion, *, full: bool = False, created: bool | None = None) -> DatasetOut:
    """The read shape of a dataset version (the manifest on the single read)."""
    base = f"/v1/datasets/{row.version}/download"
    downloads = {f"{split}.{fmt}": f"{base}?format={fmt}&split={split}" for split in ("train", "holdout")
                 for fmt in ("jsonl", "parquet")}
    return DatasetOut(id=row.id, version=row.version, parent_id=row.parent_id, content_hash=row.content_hash,
                      n_train=row.n_train, n_holdout=row.n_holdout, created_by=row.created_by,
                      created_at=row.created_at, created=created, manifest=row.manifest if full else None,
                      downloads=downloads)


@router.post("/datasets", status_code=201, response_model=DatasetOut, responses=ERROR_RESPONSES)
def create_dataset(body: DatasetIn, request: Request, settings: SettingsDep) -> DatasetOut:
    """Snapshot resolved, admitted, consented pairs into a dataset version (the same content returns the same one)."""
    key = request.state.key
    with db.unit_of_work(request.app.state.sessions) as session:
        snap = retraining.snapshot(session, settings, external_path=body.external_path,
                                   external_weight=body.external_weight, holdout_share=body.holdout_share,
                                   only_new=body.only_new, created_by=f"key:{key.prefix}")
        return dataset_out(snap.version, full=True, created=snap.created)


@router.get("/datasets", response_model=Page, responses=ERROR_RESPONSES)
def list_datasets(session: SessionDep, limit: Limit = 50, offset: Offset = 0) -> Page:
    """Dataset versions, newest first."""
    total = session.scalar(select(func.count()).select_from(t.DatasetVersion)) or 0
    rows = session.scalars(select(t.DatasetVersion).order_by(t.DatasetVersion.id.desc()).limit(limit).offset(offset))
    return Page(total=total, limit=limit, offset=offset, items=[dataset_out(r).model_dump(mode="json") for r in rows])


@router.get("/datasets/{version}", response_model=DatasetOut, responses=ERROR_RESPONSES)
def get_dataset(version: VersionName, session: SessionDep) -> DatasetOut:
    """One dataset version with its manifest."""
    return dataset_out(snapshots.get_version(session, version), full=True)


@router.get("/datasets/{version}/download", response_class=FileResponse, responses=ERROR_RESPONSES)
def download_dataset(version: VersionName, session: SessionDep, settings: SettingsDep,
                     format: Literal["jsonl", "parquet"] = "jsonl",
                     split: Literal["train", "holdout"] = "train") -> FileResponse:
    """One split of a dataset version as JSONL or Parquet (TRL's prompt/chosen/rejected plus provenance)."""
    row = snapshots.get_version(session, version)
    name = f"{split}.{format}"
    for folder in (FsPath(row.path), FsPath(settings.data_dir) / "datasets" / row.version):
        if (folder / name).is_file():
            media = "application/x-ndjson" if format == "jsonl" else "application/vnd.apache.parquet"
            return FileResponse(folder / name, media_type=media, filename=f"{row.version}-{name}")
    raise NotFound(f"the files of dataset version {row.version} are not on this machine")


@router.post("/jobs", status_code=201, response_model=JobOut, responses=ERROR_RESPONSES)
def create_job(body: JobIn, request: Request, settings: SettingsDep) -> JobOut:
    """Queue a reward-model or DPO job on a dataset version and launch it (after a prerequisite job, if named)."""
    with db.unit_of_work(request.app.state.sessions) as session:
        if body.dataset_version is not None:
            dataset = snapshots.get_version(session, body.dataset_version)
        else:
            dataset = snapshots.latest(session)
            if dataset is None:
                raise NotFound("no dataset version yet: POST /v1/datasets first")
        job_id = retraining.create_job(session, settings, kind=body.kind, dataset_version_id=dataset.id,
                                       params=body.params).id
    retraining.dispatch(request.app.state.sessions, settings)
    with db.unit_of_work(request.app.state.sessions) as session:
        return JobOut(**jobs.as_dict(jobs.get(session, job_id)))


@router.get("/jobs", response_model=Page, responses=ERROR_RESPONSES)
def list_jobs(session: SessionDep, status: Literal["queued", "running", "succeeded", "failed"] | None = None,
              kind: Literal["reward_model", "dpo"] | None = None, limit: Limit = 50, offset: Offset = 0) -> Page:
    """Training jobs, newest first, filtered by status and kind."""
    total, rows = jobs.list_jobs(session, status=status, kind=kind, limit=limit, offset=offset)
    return Page(total=total, limit=limit, offset=offset,
                items=[JobOut(**jobs.as_dict(j)).model_dump(mode="json") for j in rows])


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERROR_RESPONSES)
def get_job(job_id: ObjectId, session: SessionDep) -> JobOut:
    """A job's status, progress, metrics and artifacts."""
    return JobOut(**jobs.as_dict(jobs.get(session, job_id)))


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse, responses=ERROR_RESPONSES)
def get_job_logs(job_id: ObjectId, session: SessionDep,
                 tail_bytes: Annotated[int, Query(ge=1, le=LOG_TAIL_BYTES)] = LOG_TAIL_BYTES) -> PlainTextResponse:
    """The end of a job's log (for a Kubernetes Job also `kubectl logs job/<name>`)."""
    job = jobs.get(session, job_id)
    path = FsPath(job.log_path) if job.log_path else None
    if path is None or not path.is_file():
        raise NotFound(f"no log of job {job_id} on this machine yet")
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - tail_bytes))
        return PlainTextResponse(fh.read().decode("utf-8", errors="replace"))


@router.get("/models", response_model=Page, responses=ERROR_RESPONSES)
def list_models(session: SessionDep, kind: Literal["reward_model", "policy"] | None = None,
                promoted: bool | None = None, limit: Limit = 50, offset: Offset = 0) -> Page:
    """Registered model versions, newest first; `current` marks the promoted one in use per kind."""
    total, rows = registry.list_models(session, kind=kind, promoted=promoted, limit=limit, offset=offset)
    current = registry.current_ids(session)
    return Page(total=total, limit=limit, offset=offset,
                items=[ModelOut(**registry.as_dict(m, current)).model_dump(mode="json") for m in rows])


@router.get("/models/{model_id}", response_model=ModelOut, responses=ERROR_RESPONSES)
def get_model(model_id: ObjectId, session: SessionDep) -> ModelOut:
    """One model version with its evaluation and settings."""
    return ModelOut(**registry.as_dict(registry.get(session, model_id), registry.current_ids(session)))


@router.get("/models/{model_id}/lineage", responses=ERROR_RESPONSES)
def get_lineage(model_id: ObjectId, session: SessionDep,
                items_limit: Annotated[int, Query(ge=0, le=100_000)] = 1000) -> dict:
    """Model → job → dataset version → rows → badcases → reviews → rubric versions (and the judging reward model)."""
    return registry.lineage(session, model_id, items_limit=items_limit)


@router.get("/models/{model_id}/report", response_class=PlainTextResponse, responses=ERROR_RESPONSES)
def get_report(model_id: ObjectId, session: SessionDep) -> PlainTextResponse:
    """The generated hand-off report (markdown) of a model version."""
    row = registry.get(session, model_id)
    path = FsPath(row.report_path) if row.report_path else None
    if path is None or not path.is_file():
        raise NotFound(f"no report of model version {model_id} on this machine")
    return PlainTextResponse(path.read_text(encoding="utf-8"), media_type="text/markdown")
