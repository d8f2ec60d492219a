"""The linear-time disclosure helpers (issue 16) give the classes and suppressions of the
sort-based originals: np.unique(axis=0) partitions, and sdcMicro's per-record suppression
loop written out as it was."""

import numpy as np
import pandas as pd
import pytest

from pipelines.privacy import disclosure, lattice


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = pd.DataFrame({"a": a, "b": b}).drop_duplicates()
    return pairs["a"].is_unique and pairs["b"].is_unique


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_classes_is_the_partition_of_unique_rows(seed):
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 4, size=(500, 5))
    codes[:, 2] = rng.integers(-2, 2**40, size=500) % 7  # a wide column folded with the others
    expected = np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)
    assert _same_partition(disclosure.row_classes(codes), expected)
    sizes = np.bincount(expected)[expected]
    np.testing.assert_array_equal(disclosure.class_sizes(codes), sizes)


def test_row_classes_rehashes_before_the_code_overflows():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 3, size=(300, 2))
    huge = base * (2**40) - 5  # columns 2**41 wide: three of them do not fit in 62 bits
    codes = np.column_stack([huge, huge[:, ::-1], base[:, :1] * 2**40])
    expected = np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)
    assert _same_partition(disclosure.row_classes(codes), expected)


def _reference_suppression(frame, quasi_identifiers, k, importance=None):
    """disclosure.local_suppression before issue 16: a frame copy per trial, one record at a time."""
    order = disclosure._importance_order(frame, quasi_identifiers, importance)
    result = frame.copy()
    while True:
        fk = disclosure.key_frequencies(result, quasi_identifiers)["fk"].to_numpy(dtype=float)
        problem = fk < k
        if not problem.any():
            return result, True
        gains = np.full((len(frame), len(order)), -np.inf)
        for j, column in enumerate(order):
            candidates = problem & result[column].notna().to_numpy()
            if not candidates.any():
                continue
            trial = result.copy()
            trial.loc[candidates, column] = pd.NA
            gains[candidates, j] = disclosure.key_frequencies(trial, quasi_identifiers)["fk"].to_numpy(float)[candidates]
        changed = False
        for row in np.flatnonzero(problem):
            options = gains[row]
            if np.isneginf(options).all():
                continue
            reaching = np.flatnonzero(options >= k)
            choice = reaching[0] if reaching.size else int(np.argmax(options))
            result.iloc[row, result.columns.get_loc(order[choice])] = pd.NA
            changed = True
        if not changed:
            return result, False


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_local_suppression_matches_the_per_record_loop(seed):
    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame({
        "sex": pd.array(rng.choice(["m", "f", None], n, p=[0.48, 0.48, 0.04]), dtype="string"),
        "grade": pd.array(rng.integers(1, 10, n), dtype="Int64"),
        "municipality": pd.array(rng.choice([f"m{i}" for i in range(25)], n), dtype="string"),
        "language": pd.array(rng.choice(["et", "ru", "en"], n, p=[0.7, 0.25, 0.05]), dtype="string"),
    })
    keys = list(frame.columns)
    for importance in (None, ["municipality", "grade", "sex", "language"]):
        expected, reached = _reference_suppression(frame, keys, 5, importance)
        got = disclosure.local_suppression(frame, keys, k=5, importance=importance)
        pd.testing.assert_frame_equal(got.frame, expected)
        assert got.reached == reached
        np.testing.assert_array_equal(got.suppressed.to_numpy(), (frame.notna() & expected.isna()).to_numpy())


def test_linked_fk_from_record_codes_equals_the_wide_history():
    rng = np.random.default_rng(5)
    persons, waves, n_keys = 120, 2, 3
    person_idx = np.r_[np.arange(persons), rng.choice(persons, 80, replace=False)]
    wave_idx = np.r_[np.zeros(persons, dtype=int), np.ones(80, dtype=int)]
    codes = rng.integers(-1, 2, size=(len(person_idx), n_keys))
    wide = np.full((persons, waves * n_keys), -2)
    for w in range(waves):
        rows = wave_idx == w
        wide[person_idx[rows], w * n_keys:(w + 1) * n_keys] = codes[rows]
    _, inverse, counts = np.unique(wide, axis=0, return_inverse=True, return_counts=True)
    expected = counts[inverse.reshape(-1)][person_idx].astype(float)
    np.testing.assert_array_equal(lattice.linked_fk(codes, person_idx, wave_idx, persons, waves), expected)
