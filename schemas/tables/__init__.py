"""All SQL tables, in one home: the declarative `Base` with its naming convention, and every mapped class."""

from schemas.tables.base import Base, metadata
from schemas.tables.auth import ApiKey
from schemas.tables.badcase import BADCASE_STATUSES, Badcase, BadcaseReason
from schemas.tables.drift import Alert, AlertDelivery, AlertRule, DriftReference, DriftReport, ProbeRun
from schemas.tables.ingest import DeadLetter, PartitionOffset
from schemas.tables.interaction import Feedback, Interaction
from schemas.tables.retrain import DatasetItem, DatasetVersion, ModelVersion, TrainingJob
from schemas.tables.review import (AgreementReport, ReviewClaim, ReviewSession, ReviewSubmission, ReviewTask, Reviewer,
                                   RubricVersion)

__all__ = [
    "Base", "metadata", "ApiKey", "BADCASE_STATUSES", "Badcase", "BadcaseReason", "Alert", "AlertDelivery",
    "AlertRule", "DriftReference", "DriftReport", "ProbeRun", "DeadLetter", "PartitionOffset", "Feedback",
    "Interaction", "DatasetItem", "DatasetVersion", "ModelVersion", "TrainingJob", "AgreementReport", "ReviewClaim",
    "ReviewSession", "ReviewSubmission", "ReviewTask", "Reviewer", "RubricVersion",
]
