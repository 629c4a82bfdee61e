"""Inter-rater agreement (IAA) metrics: Cohen's kappa, Fleiss' kappa and Krippendorff's alpha.

Pure numpy, no database. Rating matrices are raters x units (one row per reviewer, one column per
item) with missing ratings as NaN or None; labels may be numbers or, for nominal data, any sortable
values (strings). Everything is vectorised over units: Python loops run only over raters or over
distinct values, never over items. Undefined coefficients (no pairable units, no variation) are NaN.
"""

from dataclasses import dataclass

import numpy as np

LEVELS = ("nominal", "ordinal", "interval", "ratio")
KAPPA_WEIGHTS = (None, "linear", "quadratic")

# Above this many (unit, value) cells the dense per-unit value counts would cost too much memory
# (continuous scores have as many values as ratings), so alpha switches to a sparse path.
_DENSE_MAX_CELLS = 1 << 22
_DENSE_MAX_VALUES = 2048
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class KappaStats:
    """Cohen's kappa with its asymptotic standard errors (Fleiss, Cohen & Everitt 1969), as SAS PROC FREQ prints them."""

    kappa: float
    p_observed: float
    p_expected: float
    ase: float
    ase_h0: float
    z: float
    ci_low: float
    ci_high: float


def _is_missing(values: np.ndarray) -> np.ndarray:
    """Mask of None / NaN entries in an object array."""
    return np.frompyfunc(lambda v: v is None or (isinstance(v, float) and v != v), 1, 1)(values).astype(bool)


def _small_int_codes(x: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes and domain by histogram when ratings are small integers (labels, Likert), else None."""
    # Avoids both the boolean gather of the present values and the sort inside np.unique.
    lo, hi = np.fmin.reduce(x, axis=None), np.fmax.reduce(x, axis=None)
    if not hi - lo < 1 << 16:  # also catches inf and NaN
        return None
    shifted = np.where(present, x - lo, -1.0)
    codes = shifted.astype(np.intp)
    if not np.array_equal(codes, shifted):
        return None
    used = np.bincount((codes + 1).ravel(), minlength=int(hi - lo) + 2)[1:] > 0
    if not used.all():
        codes = np.append(np.cumsum(used) - 1, -1)[codes]
    return codes, lo + np.flatnonzero(used).astype(float)


def _encode(data, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = missing or outside `labels`) and the sorted value domain (or `labels`) they index."""
    try:
        x = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        x = None
    if x is not None:
        present = ~np.isnan(x)
        fast = _small_int_codes(x, present) if labels is None and present.any() else None
        if fast is not None:
            return fast
        vals = x[present]
    else:
        x = np.asarray(data, dtype=object)
        present = ~_is_missing(x)
        vals = x[present]
    codes = np.full(x.shape, -1, dtype=np.intp)
    if labels is not None:
        domain = np.asarray(list(labels), dtype=object if x.dtype == object else float)
        uniq, inv = np.unique(vals, return_inverse=True)
        position = {v: i for i, v in enumerate(domain.tolist())}
        lookup = np.array([position.get(v, -1) for v in uniq.tolist()], dtype=np.intp)
        codes[present] = lookup[inv] if uniq.size else inv
        return codes, domain
    domain, inv = np.unique(vals, return_inverse=True)
    codes[present] = inv
    return codes, domain


# --- Cohen's kappa ---------------------------------------------------------------------------------


def _disagreement_weights(k: int, weights) -> np.ndarray:
    """Disagreement weights in [0, 1] for k ordered categories: 0/1, |i-j|/(k-1) or ((i-j)/(k-1))^2."""
    if weights not in KAPPA_WEIGHTS:
        raise ValueError(f"weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")
    i = np.arange(k)
    if weights is None:
        return (i[:, None] != i[None, :]).astype(float)
    dist = np.abs(i[:, None] - i[None, :]) / max(k - 1, 1)
    return dist if weights == "linear" else dist**2


def contingency_table(a, b, labels=None) -> np.ndarray:
    """K x K table of two raters' labels over the items both rated (rows = a, columns = b)."""
    a_arr, b_arr = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise ValueError("a and b must be 1-D sequences of the same length")
    if labels is None:
        codes, domain = _encode(np.stack([a_arr, b_arr]))
    else:
        codes, domain = _encode(np.stack([a_arr, b_arr]), labels=labels)
    k = len(domain)
    both = (codes >= 0).all(axis=0)
    return np.bincount(codes[0, both] * k + codes[1, both], minlength=k * k).reshape(k, k)


def cohen_kappa_stats(table, weights=None) -> KappaStats:
    """Cohen's (weighted) kappa of a K x K contingency table, with ASE, ASE under H0, z and 95% CI."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError("the contingency table must be square")
    n = t.sum()
    if t.shape[0] < 2 or n == 0:
        return KappaStats(*([float("nan")] * 8))
    w = 1.0 - _disagreement_weights(t.shape[0], weights)  # agreement weights, as SAS uses them
    p = t / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    po, pe = float((w * p).sum()), float((w * np.outer(rows, cols)).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (po - pe) / (1.0 - pe)
        wbar = (w @ cols)[:, None] + (rows @ w)[None, :]
        scale = n * (1.0 - pe) ** 2
        var = ((p * (w - wbar * (1 - kappa)) ** 2).sum() - (kappa - pe * (1 - kappa)) ** 2) / scale
        var0 = ((np.outer(rows, cols) * (w - wbar) ** 2).sum() - pe**2) / scale
        ase, ase0 = float(np.sqrt(var)), float(np.sqrt(var0))
        z = kappa / ase0
    return KappaStats(float(kappa), po, pe, ase, ase0, float(z), kappa - _Z95 * ase, kappa + _Z95 * ase)


def cohen_kappa_from_table(table, weights=None) -> float:
    """Cohen's kappa (unweighted, linear or quadratic) of a K x K contingency table."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError("the contingency table must be square")
    n = t.sum()
    if t.shape[0] < 2 or n == 0:
        return float("nan")
    d = _disagreement_weights(t.shape[0], weights)
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(1.0 - (d * t).sum() / (d * expected).sum())


def cohen_kappa(a, b, weights=None, labels=None) -> float:
    """Cohen's kappa of two raters' label sequences over the items both rated (None/NaN = not rated)."""
    return cohen_kappa_from_table(contingency_table(a, b, labels=labels), weights=weights)


def kappa_matrix(data, weights=None, labels=None, min_overlap: int = 2) -> np.ndarray:
    """R x R matrix of pairwise Cohen's kappa between raters (rows of `data`), NaN below `min_overlap` shared items."""
    codes, domain = _encode(data, labels=labels)
    if codes.ndim != 2:
        raise ValueError("data must be a raters x units matrix")
    r, k = codes.shape[0], len(domain)
    out = np.full((r, r), np.nan)
    rated = codes >= 0
    for i in range(r):
        for j in range(i + 1, r):
            both = rated[i] & rated[j]
            if both.sum() >= min_overlap:
                table = np.bincount(codes[i, both] * k + codes[j, both], minlength=k * k).reshape(k, k)
                out[i, j] = out[j, i] = cohen_kappa_from_table(table, weights=weights)
    np.fill_diagonal(out, 1.0)
    return out


def pairwise_kappa(data, weights=None, labels=None, min_overlap: int = 2) -> np.ndarray:
    """Per rater, the mean Cohen's kappa against every other rater it shares items with (NaN if none)."""
    km = kappa_matrix(data, weights=weights, labels=labels, min_overlap=min_overlap)
    np.fill_diagonal(km, np.nan)
    finite = np.isfinite(km)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(finite, km, 0.0).sum(axis=1) / finite.sum(axis=1)


# --- Fleiss' kappa ---------------------------------------------------------------------------------


def rating_counts(data, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """Units x categories counts from a raters x units matrix, and the categories (columns) they count."""
    codes, domain = _encode(data, labels=labels)
    if codes.ndim != 2:
        raise ValueError("data must be a raters x units matrix")
    k, units = len(domain), codes.shape[1]
    keys = (codes + 1) + np.arange(units)[None, :] * (k + 1)
    return np.bincount(keys.ravel(), minlength=units * (k + 1)).reshape(units, k + 1)[:, 1:], domain


def fleiss_kappa(table, method: str = "fleiss") -> float:
    """Fleiss' kappa of a subjects x categories count table (same number of raters per subject); 'randolph' = free-marginal."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError("table must be a non-empty subjects x categories matrix")
    per_subject = t.sum(axis=1)
    n = per_subject[0]
    if not np.all(per_subject == n) or n < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters for every subject")
    p_agree = ((t * (t - 1)).sum(axis=1) / (n * (n - 1))).mean()
    if method == "fleiss":
        share = t.sum(axis=0) / t.sum()
        p_chance = float((share**2).sum())
    elif method == "randolph":
        p_chance = 1.0 / t.shape[1]
    else:
        raise ValueError("method must be 'fleiss' or 'randolph'")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float((p_agree - p_chance) / (1.0 - p_chance))


# --- Krippendorff's alpha --------------------------------------------------------------------------


def _distances(level: str, domain: np.ndarray, n_c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance delta^2 between value codes a and b (broadcast) at a level of measurement."""
    if level == "nominal":
        return (a != b).astype(float)
    if level == "ordinal":
        # Krippendorff's ordinal delta is the squared gap between the values' mid-ranks.
        mid = np.cumsum(n_c) - n_c / 2.0
        return (mid[a] - mid[b]) ** 2
    va, vb = domain[a], domain[b]
    if level == "interval":
        return (va - vb) ** 2
    total = va + vb
    return np.divide(va - vb, total, out=np.zeros(np.broadcast(va, vb).shape), where=total != 0) ** 2


def _alpha_dense(codes: np.ndarray, domain: np.ndarray, level: str) -> float:
    """Alpha from the full coincidence matrix, built from per-unit value counts with one bincount."""
    v, units = len(domain), codes.shape[1]
    keys = (codes + 1) + np.arange(units)[None, :] * (v + 1)
    # Column 0 counts the missing ratings; keeping it keeps the matrix contiguous for the BLAS product.
    counts = np.bincount(keys.ravel(), minlength=units * (v + 1)).reshape(units, v + 1).astype(float)
    m = codes.shape[0] - counts[:, 0]
    w = np.divide(1.0, m - 1, out=np.zeros_like(m), where=m >= 2)
    weighted = counts * w[:, None]
    coincidence = (weighted.T @ counts)[1:, 1:]
    coincidence[np.diag_indices(v)] -= weighted.sum(axis=0)[1:]
    n_c = coincidence.sum(axis=0)
    idx = np.arange(v)
    delta = _distances(level, domain, n_c, idx[:, None], idx[None, :])
    expected = n_c @ delta @ n_c
    if n_c.sum() == 0 or expected == 0:
        return float("nan")
    return float(1.0 - (n_c.sum() - 1) * (coincidence * delta).sum() / expected)


def _alpha_moments(y: np.ndarray, pairable: np.ndarray, m: np.ndarray) -> float:
    """Alpha for squared-difference distances from per-unit sums of squares (no value domain needed)."""
    units = m >= 2
    n = m[units].sum()
    mean_u = np.where(pairable, y, 0.0).sum(axis=0)[units] / m[units]
    y, pairable = y[:, units], pairable[:, units]
    ss_u = (np.where(pairable, y - mean_u, 0.0) ** 2).sum(axis=0)
    ss_total = (np.where(pairable, y - y[pairable].mean(), 0.0) ** 2).sum()
    if n == 0 or ss_total == 0:
        return float("nan")
    return float(1.0 - (n - 1) * (m[units] * ss_u / (m[units] - 1)).sum() / (n * ss_total))


def _alpha_sparse(codes: np.ndarray, domain: np.ndarray, level: str) -> float:
    """Alpha without a values x values matrix, for data with many distinct values (e.g. continuous scores)."""
    rated = codes >= 0
    m = rated.sum(axis=0)
    pairable = rated & (m >= 2)[None, :]
    v = len(domain)
    n_c = np.bincount(codes[pairable], minlength=v).astype(float)
    n = n_c.sum()
    if n == 0:
        return float("nan")
    if level in ("interval", "ordinal"):
        ref = domain.astype(float) if level == "interval" else np.cumsum(n_c) - n_c / 2.0
        return _alpha_moments(ref[np.where(pairable, codes, 0)], pairable, m)
    if level == "nominal":
        unit = np.broadcast_to(np.arange(codes.shape[1]), codes.shape)[pairable]
        keys, cnt = np.unique(unit.astype(np.int64) * v + codes[pairable], return_counts=True)
        same = np.bincount(keys // v, weights=cnt.astype(float) ** 2, minlength=codes.shape[1])
        keep = m >= 2
        observed = ((m[keep] ** 2 - same[keep]) / (m[keep] - 1)).sum()
        expected = n**2 - (n_c**2).sum()
    else:  # ratio: observed over rater pairs, expected over blocks of the value domain
        w = np.divide(1.0, m - 1, out=np.zeros(m.shape), where=m >= 2)
        observed = 0.0
        for i in range(codes.shape[0]):
            for j in range(i + 1, codes.shape[0]):
                both = pairable[i] & pairable[j]
                observed += 2 * (w[both] * _distances(level, domain, n_c, codes[i, both], codes[j, both])).sum()
        expected, idx, step = 0.0, np.arange(v), max(1, (1 << 22) // v)
        for start in range(0, v, step):
            block = idx[start : start + step]
            expected += n_c[block] @ _distances(level, domain, n_c, block[:, None], idx[None, :]) @ n_c
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1) * observed / expected)


def krippendorff_alpha(data, level: str = "nominal") -> float:
    """Krippendorff's alpha of a raters x units matrix (missing = NaN/None) at a level of measurement."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    codes, domain = _encode(data)
    if codes.ndim != 2:
        raise ValueError("data must be a raters x units matrix")
    if level != "nominal" and domain.dtype == object:
        # Sorting labels alphabetically would invent an order; ordered labels must be coded as numbers.
        raise ValueError(f"{level} alpha needs numeric ratings")
    v = len(domain)
    if v <= _DENSE_MAX_VALUES and codes.shape[1] * (v + 1) <= _DENSE_MAX_CELLS:
        return _alpha_dense(codes, domain, level)
    return _alpha_sparse(codes, domain, level)
