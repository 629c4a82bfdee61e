"""Agreement metrics against published reference values and against krippendorff / statsmodels / scikit-learn."""

import csv
import json
import os
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats import inter_rater

from badcase import agreement

LEVELS = ("nominal", "ordinal", "interval", "ratio")
ABUSE_LEVELS = (1, 0, -1, -2, -3)  # ConvAbuse is_abuse scale: 1 not abusive ... -3 very strongly abusive


def shared_data() -> Path:
    """The shared real-data folder: FF_SHARED_DATA, else <repo>/../shared/data."""
    root = Path(os.environ.get("FF_SHARED_DATA") or Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    if not root.is_dir():
        pytest.fail(f"shared data not found at {root} (set FF_SHARED_DATA)")
    return root


def read_rows(path: Path) -> list[list[str]]:
    """A small CSV as rows of strings, header dropped."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))[1:]


def coders_matrix(path: Path) -> np.ndarray:
    """Coders x units CSV (first column = coder, blank = missing) as floats with NaN."""
    return np.array([[float(v) if v.strip() else np.nan for v in row[1:]] for row in read_rows(path)])


def numbers_table(path: Path) -> np.ndarray:
    """A counts / contingency CSV without its header row and label column."""
    return np.array([[float(v) for v in row[1:]] for row in read_rows(path)])


def computed_reference(name: str, path: Path) -> dict[str, float]:
    """Every figure this module can compute for one reference file, named as reference_values.json names them."""
    if name.startswith("krippendorff"):
        data = coders_matrix(path)
        out = {f"alpha_{lv}": agreement.krippendorff_alpha(data, lv) for lv in LEVELS}
        out.update({lv: out[f"alpha_{lv}"] for lv in LEVELS})
        if data.shape[0] == 2:
            out["cohen_kappa_sklearn"] = agreement.cohen_kappa(data[0], data[1])
        return out
    table = numbers_table(path)
    if name.startswith("fleiss"):
        return {
            "fleiss_kappa": agreement.fleiss_kappa(table),
            "randolph_free_marginal_kappa": agreement.fleiss_kappa(table, method="randolph"),
        }
    plain, linear = agreement.cohen_kappa_stats(table), agreement.cohen_kappa_stats(table, weights="linear")
    return {
        "kappa": plain.kappa,
        "p_observed": plain.p_observed,
        "p_expected": plain.p_expected,
        "ase": plain.ase,
        "ci95": [plain.ci_low, plain.ci_high],
        "ase_h0": plain.ase_h0,
        "z": plain.z,
        "weighted_kappa_linear_weights_0_1_2": linear.kappa,
        "weighted_ase": linear.ase,
        "weighted_ci95": [linear.ci_low, linear.ci_high],
    }


def reference_cases() -> list[tuple[str, str, str, float]]:
    """(file, section, key, published value) for every number in reference_values.json."""
    refs = json.loads((shared_data() / "agreement_reference" / "reference_values.json").read_text())
    cases = []
    for name, entry in refs.items():
        for section, values in entry.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    for i, v in enumerate(value if isinstance(value, list) else [value]):
                        cases.append((name, section, key if not isinstance(value, list) else f"{key}[{i}]", v))
    return cases


def decimals(value: float) -> int:
    """How many decimals a published figure was given with."""
    text = repr(float(value))
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


@pytest.mark.parametrize(("name", "section", "key", "published"), reference_cases())
def test_published_reference_value(name, section, key, published):
    """Each published figure is met to its own precision, and never to less than 3 decimals."""
    ours = computed_reference(name, shared_data() / "agreement_reference" / name)
    base, _, index = key.partition("[")
    assert base in ours, f"no computation for {name}:{key}"
    value = ours[base][int(index[:-1])] if index else ours[base]
    assert abs(value - published) <= 0.5 * 10 ** -max(3, decimals(published)), (name, section, key, value)


def test_reference_values_cover_every_file():
    """Every CSV in the reference folder has published values checked above."""
    folder = shared_data() / "agreement_reference"
    names = {name for name, *_ in reference_cases()}
    assert names == {p.name for p in folder.glob("*.csv")}


# --- ConvAbuse: real multi-annotator data ----------------------------------------------------------


def load_convabuse(split: str) -> np.ndarray:
    """Annotators x items is_abuse labels (NaN = not annotated), as SOURCE.md defines them (the column equal to "1")."""
    path = shared_data() / "convabuse_multiannotator" / f"ConvAbuseEMNLP{split}.csv"
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    labels = np.full((8, len(rows)), np.nan)
    for j, row in enumerate(rows):
        for a in range(8):
            hits = [v for v in ABUSE_LEVELS if row[f"Annotator{a + 1}_is_abuse.{v}"] == "1"]
            assert len(hits) <= 1
            if hits:
                labels[a, j] = hits[0]
    return labels


@pytest.fixture(scope="module", params=["train", "valid"])
def convabuse(request):
    """(split, annotators x items labels)."""
    return request.param, load_convabuse(request.param)


# Computed values from convabuse_multiannotator/SOURCE.md: annotations, alpha nominal, interval, binary, Fleiss binary.
CONVABUSE_SOURCE = {
    "train": (2501, 7199, 0.4288, 0.7286, 0.6513, 0.6552, 1466),
    "valid": (831, 2385, 0.4599, 0.7420, 0.6353, 0.6531, 496),
}


def binary(labels: np.ndarray) -> np.ndarray:
    """Abusive (label < 0) vs not, keeping NaN."""
    return np.where(np.isnan(labels), np.nan, labels < 0)


def exactly_k_items(labels: np.ndarray, k: int) -> np.ndarray:
    """Items x k array of the labels of items with exactly k annotators."""
    rated = ~np.isnan(labels)
    keep = rated.sum(axis=0) == k
    return labels.T[keep][rated.T[keep]].reshape(-1, k)


def test_convabuse_matches_source_figures(convabuse):
    """Our loader and metrics reproduce the figures SOURCE.md computed."""
    split, labels = convabuse
    items, annotations, nominal, interval, nominal_binary, fleiss_binary, fleiss_items = CONVABUSE_SOURCE[split]
    assert labels.shape == (8, items)
    assert int((~np.isnan(labels)).sum()) == annotations
    assert round(agreement.krippendorff_alpha(labels, "nominal"), 4) == nominal
    assert round(agreement.krippendorff_alpha(labels, "interval"), 4) == interval
    assert round(agreement.krippendorff_alpha(binary(labels), "nominal"), 4) == nominal_binary
    three = exactly_k_items(binary(labels), 3)
    assert three.shape[0] == fleiss_items
    counts, _ = agreement.rating_counts(three.T)
    assert round(agreement.fleiss_kappa(counts), 4) == fleiss_binary


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_krippendorff_package(convabuse, level):
    """Alpha equals the krippendorff package to 1e-9 on real data with missing values, 5-level and binary."""
    _, labels = convabuse
    for data in (labels, binary(labels)):
        assert agreement.krippendorff_alpha(data, level) == pytest.approx(
            krippendorff.alpha(data, level_of_measurement=level), abs=1e-9
        )


def test_fleiss_equals_statsmodels(convabuse):
    """Fleiss' kappa equals statsmodels on ConvAbuse items with exactly 3 and exactly 2 annotators."""
    _, labels = convabuse
    for k in (2, 3):
        for data in (labels, binary(labels)):
            items = exactly_k_items(data, k)
            table, _ = inter_rater.aggregate_raters(items)
            ours, _ = agreement.rating_counts(items.T)
            for method in ("fleiss", "randolph"):
                assert agreement.fleiss_kappa(ours, method=method) == pytest.approx(
                    inter_rater.fleiss_kappa(table, method=method), abs=1e-9
                )


def test_cohen_equals_sklearn_and_statsmodels(convabuse):
    """Cohen's kappa (plain, linear, quadratic) equals scikit-learn and statsmodels for every annotator pair."""
    _, labels = convabuse
    domain = sorted(ABUSE_LEVELS)
    checked = 0
    for i in range(8):
        for j in range(i + 1, 8):
            both = ~np.isnan(labels[i]) & ~np.isnan(labels[j])
            if both.sum() < 30:
                continue
            a, b = labels[i, both], labels[j, both]
            table = agreement.contingency_table(labels[i], labels[j], labels=domain)
            assert table.sum() == both.sum()
            for weights in (None, "linear", "quadratic"):
                expected = cohen_kappa_score(a, b, labels=domain, weights=weights)
                assert agreement.cohen_kappa(labels[i], labels[j], weights=weights, labels=domain) == pytest.approx(
                    expected, abs=1e-9
                )
                assert agreement.cohen_kappa_from_table(table, weights=weights) == pytest.approx(expected, abs=1e-9)
            assert agreement.cohen_kappa_from_table(table) == pytest.approx(inter_rater.cohens_kappa(table).kappa)
            checked += 1
    assert checked >= 5


def test_pairwise_kappa_is_mean_of_sklearn_pairs(convabuse):
    """Per-annotator agreement is the mean of scikit-learn's pairwise kappas over items both rated."""
    _, labels = convabuse
    rated = ~np.isnan(labels)
    expected = []
    for i in range(8):
        kappas = []
        for j in range(8):
            both = rated[i] & rated[j]
            if j != i and both.sum() >= 2:
                a, b = labels[i, both], labels[j, both]
                if len(np.unique(np.concatenate([a, b]))) > 1:  # sklearn warns and gives NaN otherwise
                    kappas.append(cohen_kappa_score(a, b))
        expected.append(np.mean(kappas) if kappas else np.nan)
    np.testing.assert_allclose(agreement.pairwise_kappa(labels), expected, atol=1e-9)


# --- Paths and edge cases --------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_sparse_path_for_continuous_scores(level, monkeypatch):
    """Many distinct values (continuous scores) take the sparse path and still equal the package."""
    rng = np.random.default_rng(7)
    truth = rng.gamma(4.0, 1.0, size=150)
    # One decimal keeps the package's units x values x values array small; forcing the path does the rest.
    data = np.round(truth + rng.normal(0, 0.8, size=(6, 150)), 1).clip(0.1)
    data[rng.random(data.shape) < 0.3] = np.nan
    expected = krippendorff.alpha(data, level_of_measurement=level)
    assert agreement.krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-9)
    monkeypatch.setattr(agreement, "_DENSE_MAX_CELLS", 0)
    assert agreement.krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-9)


def test_alpha_accepts_string_labels_and_none():
    """Nominal alpha takes string labels with None as missing, and gives what the numeric codes give."""
    words = [["ok", "toxic", None, "ok"], ["ok", "toxic", "wrong", "toxic"], [None, "toxic", "wrong", "ok"]]
    codes = [[0, 1, np.nan, 0], [0, 1, 2, 1], [np.nan, 1, 2, 0]]
    assert agreement.krippendorff_alpha(words) == pytest.approx(agreement.krippendorff_alpha(codes), abs=1e-12)
    assert agreement.krippendorff_alpha(codes) == pytest.approx(krippendorff.alpha(codes, level_of_measurement="nominal"))
    for level in ("ordinal", "interval", "ratio"):
        with pytest.raises(ValueError):
            agreement.krippendorff_alpha(words, level)


def test_undefined_coefficients_are_nan():
    """No variation or no pairable unit gives NaN, not a made-up number."""
    assert np.isnan(agreement.krippendorff_alpha([[1, 1, 1], [1, 1, 1]]))
    assert np.isnan(agreement.krippendorff_alpha([[1, np.nan], [np.nan, 2]]))
    assert np.isnan(agreement.cohen_kappa(["a", "a"], ["a", "a"]))
    assert agreement.krippendorff_alpha([[1, 2, 3], [1, 2, 3]], "interval") == 1.0


def test_cohen_skips_items_not_both_rated():
    """None/NaN on either side drops the item; labels fix the category order for weights."""
    a, b = ["x", "y", None, "z", "x"], ["x", "y", "z", None, "y"]
    assert agreement.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(["x", "y", "x"], ["x", "y", "y"]))
    ordered = ["z", "y", "x"]
    assert agreement.cohen_kappa(a, b, weights="linear", labels=ordered) == pytest.approx(
        cohen_kappa_score(["x", "y", "x"], ["x", "y", "y"], weights="linear", labels=ordered)
    )


def test_fleiss_rejects_unequal_rater_counts():
    """Fleiss' kappa assumes the same number of raters per subject."""
    with pytest.raises(ValueError):
        agreement.fleiss_kappa([[2, 1], [1, 1]])
