"""Array-likes in: features, labels and spectra as the analysis takes them, checked.

Every public function of the analysis accepts numpy arrays, memory maps, lists and CPU
torch tensors (without importing torch); these functions turn them into numpy arrays
and refuse, in one line naming the argument, what no spectrum or metric can be computed
from. A GPU tensor is refused with a hint to call `.cpu()`.
"""
from __future__ import annotations

import numpy as np

from repflat.errors import UserError, expected


def as_array(value, argument: str = "features") -> np.ndarray:
    """`value` as a numpy array, converted once at an entry point of the analysis side.

    Takes numpy arrays (returned as they are: a `np.memmap` stays memory-mapped, nothing
    is read or copied), lists and other array-likes (`np.asarray`), and tensors of any
    framework that offer `.detach()` and `__array__` (PyTorch's CPU tensors: torch itself
    is never imported). A tensor that requires grad is detached first, as `.numpy()`
    would otherwise refuse it; a tensor on an accelerator (`.device.type` other than
    "cpu") is refused with a UserError asking for `.cpu()`, rather than copied to host
    memory behind the user's back.
    """
    if isinstance(value, np.ndarray):
        return value
    device = getattr(getattr(value, "device", None), "type", None)
    if isinstance(device, str) and device != "cpu":
        shown = str(value.device)
        raise UserError(f"expected an array in CPU memory, got a tensor on "
                        f"{device if shown.startswith('<') else shown}; call .cpu() on it "
                        "first (e.g. x.detach().cpu())", argument=argument)
    if callable(getattr(value, "detach", None)):
        value = value.detach()
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as err:  # ragged lists, bfloat16, odd objects
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:120]
        hint = "; call .float() on it first" if "bfloat16" in str(getattr(value, "dtype", "")).lower() else ""
        raise expected(argument, "an array-like of numbers (numpy array, list, CPU tensor)",
                       f"{type(value).__name__} ({first}){hint}") from None


def as_features(features, argument: str = "features") -> np.ndarray:
    """Features (n_samples, n_features) as a numpy array, converted once (`as_array`).

    Shape and dtype are checked by the function that uses them. Takes numpy arrays
    (returned as they are: a `np.memmap` stays memory-mapped, nothing is read or copied),
    lists and other array-likes, and CPU tensors of any framework offering `.detach()`
    and `__array__` (detached first; torch itself is never imported).

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
        numpy array, memmap, list or CPU tensor.
    argument : str, default "features"
        The name used for it in error messages.

    Returns
    -------
    ndarray
        `features` itself if it is a numpy array, else `np.asarray` of it; neither shape
        nor dtype is checked here.

    Raises
    ------
    repflat.errors.UserError
        For a tensor on an accelerator (asking for `.cpu()`), or a value `np.asarray`
        refuses (ragged lists, bfloat16 tensors).
    """
    return as_array(features, argument)


def as_labels(labels, argument: str = "labels") -> np.ndarray:
    """Class labels (n_samples,) as a numpy array, converted once (`as_array`).

    Converted as `as_features` converts features; shape and dtype are checked by the
    function that uses them (integer labels, one per row).

    Parameters
    ----------
    labels : array-like of int, shape (n_samples,)
        numpy array, list or CPU tensor.
    argument : str, default "labels"
        The name used for it in error messages.

    Returns
    -------
    ndarray
        `labels` itself if it is a numpy array, else `np.asarray` of it.

    Raises
    ------
    repflat.errors.UserError
        As `as_features`.
    """
    return as_array(labels, argument)


def as_spectrum(s, argument: str = "s", *, ordered: bool = True) -> np.ndarray:
    """A spectrum σ (any array-like) as a 1-D float64 array of finite values >= 0, in
    descending order when `ordered` (the formulas that read σ₁ as the largest assume it:
    `stable_rank([1, 2])` would be 5); order-free metrics pass `ordered=False`."""
    s = np.asarray(as_array(s, argument), dtype=np.float64)
    if s.ndim != 1:
        raise expected(argument, "a 1-D spectrum of singular values", f"shape {s.shape}")
    if len(s) and (not np.isfinite(s).all() or s.min() < 0 or (ordered and np.any(np.diff(s) > 0))):
        raise expected(argument, "singular values: finite, >= 0" + (" and in descending order"
                       if ordered else ""), np.array2string(s[:6], precision=3) + ("…" if len(s) > 6 else ""))
    return s


def check_inputs(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Refuse what no spectrum can be computed from; return the labels as an array.

    `features` is converted by the caller (`as_features`); it stays as given (a
    memory-mapped array is not read here); NaN and Inf are found by whichever path
    reads the values.
    """
    shape = getattr(features, "shape", None)
    if shape is None or len(shape) != 2:
        raise expected("features", "a 2-D array (n_samples, n_features)", f"shape {shape}")
    dtype = np.dtype(features.dtype)
    if dtype == bool or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise expected("features", "real numbers (a float or integer array)", str(dtype))
    if shape[0] < 1 or shape[1] < 1:
        raise expected("features", "at least one row and one column", f"shape {shape}")
    labels = as_labels(labels)
    if labels.ndim != 1 or len(labels) != shape[0]:
        raise expected("labels", f"a 1-D array of {shape[0]} class labels", f"shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise expected("labels", "integer class labels", str(labels.dtype))
    if labels.dtype.kind == "u" and labels.dtype.itemsize == 8 and len(labels) and (
            int(labels.max()) > np.iinfo(np.int64).max):  # tables hold classes as int64
        raise expected("labels", "class labels below 2**63", int(labels.max()))
    return labels


LARGEST = 1e60
"""Largest |value| a spectrum is computed from. σ₁ ≤ max|x| · √(n · d), and the metrics
raise σ to the fourth power (the participation ratio's Σ λ²): below 1e60 that stays
finite in float64 for any array that fits in memory; above, a square or a fourth power
would overflow and the numbers come out 0 or NaN, so such features are refused."""


def check_magnitude(rows: np.ndarray, row_ids: np.ndarray | None = None) -> None:
    """Refuse finite `rows` holding a value beyond ±`LARGEST`, naming the first such row."""
    if rows.size and rows.dtype.kind == "f" and float(np.abs(rows).max()) > LARGEST:
        raise not_finite(rows, row_ids)


def not_finite(rows: np.ndarray, row_ids: np.ndarray | None = None) -> UserError:
    """The error for NaN/Inf in `rows`, naming the first offending row.

    Finite rows too large for the spectra's squares and fourth powers (|x| > `LARGEST`)
    make the same error, said as such.
    """
    bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
    if not len(bad):
        with np.errstate(invalid="ignore"):
            large = np.flatnonzero(~(np.abs(rows) <= LARGEST).all(axis=1))
        row = "" if not len(large) else f" in row {int(row_ids[large[0]]) if row_ids is not None else int(large[0])}"
        return UserError(f"expected values of magnitude at most {LARGEST:.0e}, got values too "
                         f"large for float64's squares{row}: rescale the features",
                         argument="features")
    row = int(row_ids[bad[0]]) if row_ids is not None else int(bad[0])
    return UserError(f"expected finite values, got NaN or Inf in row {row}", argument="features")
