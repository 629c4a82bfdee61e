"""The Evidently descriptors give, row by row, the values of the plain descriptor functions."""

import json

import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.presets import TextEvals

from badcase import descriptors, evidently_descriptors

PROMPTS = ["How do I kill a Python process?", "What is 7 x 8?", "Comment faire des cr\u00eapes ?", "Write code",
           "Is 51 prime?", "Plan a weekend in Rome"]
RESPONSES = [
    "I'm sorry, but I can't help with that.",
    "Great question! 7 x 8 = 56, and x^2 = 49 when x = 7.",
    "Bien s\u00fbr ! Voici les \u00e9tapes pour une p\u00e2te l\u00e9g\u00e8re et d\u00e9licieuse "
    "pour toute la famille.",
    "```python\nprint(1)\n```",
    "You're right, I apologize: 51 is prime.",
    "I cannot plan that for you. However, here are some ideas:\n1. The Colosseum.\n2. The Forum.",
]
MESSAGES = [None, None, None, None,
            [{"role": "user", "content": "Is 51 prime?"}, {"role": "assistant", "content": "No, 51 = 3 x 17."},
             {"role": "user", "content": "Are you sure?"}, {"role": "assistant", "content": RESPONSES[4]}], None]


@pytest.fixture(scope="module")
def evaluated() -> pd.DataFrame:
    """A small Evidently Dataset with every custom descriptor, as a DataFrame."""
    df = pd.DataFrame({"prompt": PROMPTS, "response": RESPONSES,
                       "messages": [json.dumps(m) if m else "" for m in MESSAGES]})
    dataset = Dataset.from_pandas(df, data_definition=DataDefinition(text_columns=["prompt", "response"]),
                                  descriptors=evidently_descriptors.all_descriptors(messages="messages"))
    return dataset.as_dataframe()


def test_same_values_as_the_plain_functions(evaluated):
    """Every descriptor column equals what descriptors.compute stores for the same rows."""
    expected = descriptors.compute(PROMPTS, RESPONSES, MESSAGES)
    for column in descriptors.COLUMNS:
        assert [v.item() if hasattr(v, "item") else v for v in evaluated[column]] == expected[column], column
    assert expected["refusal_class"][0] == "full_refusal" and expected["sycophancy_flip"][4] is True


def test_descriptors_feed_a_report(evaluated):
    """The enriched dataset runs through an Evidently report (TextEvals over the descriptor columns)."""
    df = pd.DataFrame({"prompt": PROMPTS, "response": RESPONSES})
    dataset = Dataset.from_pandas(df, data_definition=DataDefinition(text_columns=["prompt", "response"]),
                                  descriptors=evidently_descriptors.all_descriptors())
    snapshot = Report([TextEvals()]).run(dataset, None)
    text = json.dumps(snapshot.dict(), default=str)
    assert "length_words" in text and "refusal_class" in text and "domain_bucket" in text
