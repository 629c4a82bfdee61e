"""Datasets, training jobs and the model registry."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["retrain"])
