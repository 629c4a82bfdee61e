"""The per-response descriptors of `badcase.descriptors` as Evidently 0.7 descriptors, for reports.

Each one wraps the same plain function the ingest pipeline uses, so a report shows exactly the stored values.
Evidently's own `TextLength` gives `length_chars`; Evidently's `WordCount` and `Sentiment` are not used (the first
counts only [a-zA-Z ] words, the second downloads NLTK data at run time). Imported only to build reports.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from evidently.core.datasets import Dataset, DatasetColumn, Descriptor
from evidently.descriptors import CustomColumnDescriptor, CustomDescriptor, TextLength

from badcase import descriptors, refusal

_NUM, _CAT = "num", "cat"


def _texts(column: DatasetColumn) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in column.data]


def _series(values, column: DatasetColumn) -> pd.Series:
    return pd.Series(np.asarray(values), index=column.data.index)


def length_words(column: DatasetColumn) -> DatasetColumn:
    """Whitespace-separated words per response (`descriptors.lengths`)."""
    return DatasetColumn(_NUM, _series(descriptors.lengths(_texts(column))["length_words"], column))


def length_tokens(column: DatasetColumn) -> DatasetColumn:
    """Approximate tokens per response (`descriptors.lengths`)."""
    return DatasetColumn(_NUM, _series(descriptors.lengths(_texts(column))["length_tokens"], column))


def sycophancy_marker(column: DatasetColumn) -> DatasetColumn:
    """Whether the response opens by flattering or capitulating (`descriptors.sycophancy_markers`)."""
    return DatasetColumn(_CAT, _series(descriptors.sycophancy_markers(_texts(column))[0], column))


def _frame_texts(df: pd.DataFrame, name: str | None) -> list[str] | None:
    if name is None:
        return None
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in df[name]]


def refusal_columns(response: str = "response", prompt: str | None = "prompt") -> CustomDescriptor:
    """`refusal_class` and `is_refusal` (`refusal.classify`), from the prompt and response columns."""

    def refusal_class(dataset: Dataset) -> dict[str, DatasetColumn]:
        df = dataset.as_dataframe()
        classes = refusal.classify(_frame_texts(df, prompt), _frame_texts(df, response))
        return {"refusal_class": DatasetColumn(_CAT, pd.Series(classes, index=df.index)),
                "is_refusal": DatasetColumn(_CAT, pd.Series([c != "full_compliance" for c in classes], index=df.index))}

    return CustomDescriptor(refusal_class, alias="refusal_class")


def domain_bucket(response: str = "response", prompt: str | None = "prompt") -> CustomDescriptor:
    """`domain_bucket` (`descriptors.domain_buckets`): general, stem, code or multilingual."""

    def domain_bucket(dataset: Dataset) -> DatasetColumn:
        df = dataset.as_dataframe()
        buckets = descriptors.domain_buckets(_frame_texts(df, prompt), _frame_texts(df, response))
        return DatasetColumn(_CAT, pd.Series(buckets, index=df.index))

    return CustomDescriptor(domain_bucket, alias="domain_bucket")


def sycophancy_flip(messages: str = "messages") -> CustomDescriptor:
    """`sycophancy_flip` (`descriptors.sycophancy_flip`) from a column of conversations (lists or JSON strings)."""

    def sycophancy_flip(dataset: Dataset) -> DatasetColumn:
        df = dataset.as_dataframe()
        convs = [json.loads(v) if isinstance(v, str) and v else (v if isinstance(v, list) else None)
                 for v in df[messages]]
        return DatasetColumn(_CAT, pd.Series(descriptors.sycophancy_flips(convs, len(convs)), index=df.index))

    return CustomDescriptor(sycophancy_flip, alias="sycophancy_flip")


def all_descriptors(response: str = "response", prompt: str | None = "prompt",
                    messages: str | None = None) -> list[Descriptor]:
    """Every column of `descriptors.COLUMNS` as Evidently descriptors (sycophancy_flip only with a messages column)."""
    out: list[Descriptor] = [
        TextLength(column_name=response, alias="length_chars"),
        CustomColumnDescriptor(response, length_words, alias="length_words"),
        CustomColumnDescriptor(response, length_tokens, alias="length_tokens"),
        refusal_columns(response, prompt),
        CustomColumnDescriptor(response, sycophancy_marker, alias="sycophancy_marker"),
        domain_bucket(response, prompt),
    ]
    if messages is not None:
        out.append(sycophancy_flip(messages))
    return out
