"""Statistics of the stream and of the masks: keep rates, byte frequencies,
lag correlations (also at the chunk size and the word layout's periods),
no repeated blocks across chunks, calls, seeds or children.

Every bound is 5 to 6 standard deviations: a correct generator fails one
of these tests with probability below 1e-5.
"""

from __future__ import annotations

import lec7rs
import numpy as np
import pytest
from conftest import threads
from lec7rs import regularization as R

CHUNK = 1 << 14
N = 1 << 20


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_keep_rate_within_5_sigma(p, n_threads):
    x = np.ones(N, np.float32)
    with threads(n_threads):
        _, mask = R.dropout(x, p, rng=lec7rs.Generator(1000 + int(p * 10)))
    q = 1 - p
    sigma = np.sqrt(N * q * (1 - q))
    assert abs(int(mask.sum()) - N * q) < 5 * sigma


def chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def assert_chi_square_ok(counts: np.ndarray):
    dof = counts.size - 1
    stat = chi_square(counts)
    # Mean dof, variance 2 dof; 6 sigma both ways (too uniform is wrong too).
    assert abs(stat - dof) < 6 * np.sqrt(2 * dof), stat


def test_packed_mask_bytes_are_uniform():
    _, mask = R.dropout(np.ones(8 * N, np.float32), 0.5, rng=lec7rs.Generator(7))
    packed = np.packbits(mask)
    assert_chi_square_ok(np.bincount(packed, minlength=256))


def test_word_bytes_are_uniform():
    words = lec7rs.Generator(8)._stream.words(N)
    for shift in (0, 8, 16, 24):
        assert_chi_square_ok(np.bincount((words >> shift) & 0xFF, minlength=256))


# The word layout's periods (16 blocks x 4 words per group of 64), the chunk
# of the parallel driver, and a few others.
LAGS = [1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 128, 1000]
LAGS += [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK]


def lag_correlation(v: np.ndarray, lag: int) -> float:
    a, b = v[:-lag], v[lag:]
    return float(np.corrcoef(a, b)[0, 1])


def test_lag_correlations_of_uniforms():
    n = 4 * N
    with threads(2):
        u = lec7rs.Generator(9).random(n)
    for lag in LAGS:
        assert abs(lag_correlation(u, lag)) < 5 / np.sqrt(n - lag), lag


def test_lag_correlations_of_masks():
    n = 4 * N
    with threads(2):
        _, mask = R.dropout(np.ones(n, np.float32), 0.3, rng=lec7rs.Generator(10))
    m = mask.astype(np.float64)
    for lag in LAGS:
        assert abs(lag_correlation(m, lag)) < 5 / np.sqrt(n - lag), lag


def test_no_repeated_groups_across_chunks_calls_and_streams():
    g = lec7rs.Generator(11)
    with threads(2):
        calls = [g._stream.words(5 * CHUNK + 64) for _ in range(3)]
    others = [lec7rs.Generator(12)._stream.words(CHUNK)]
    others += [child._stream.words(CHUNK) for child in g.spawn(3)]
    words = np.concatenate(calls + others)
    groups = words[: words.size // 64 * 64].reshape(-1, 64)
    assert np.unique(groups, axis=0).shape[0] == groups.shape[0]
    # Chunk starts in particular: each chunk draws its own counters.
    firsts = calls[0][: 5 * CHUNK].reshape(5, CHUNK)[:, :64]
    assert np.unique(firsts, axis=0).shape[0] == 5


def agreement_ok(a: np.ndarray, b: np.ndarray):
    # Two independent p = 0.5 masks agree on half the elements.
    n = a.size
    assert abs(int((a == b).sum()) - n / 2) < 5 * np.sqrt(n / 4)


def test_seeds_calls_and_children_give_different_masks():
    x = np.ones(N, np.float32)
    g = lec7rs.Generator(0)
    first = R.dropout(x, 0.5, rng=g)[1]
    second = R.dropout(x, 0.5, rng=g)[1]
    agreement_ok(first, second)
    agreement_ok(first, R.dropout(x, 0.5, rng=lec7rs.Generator(1))[1])
    a, b = lec7rs.Generator(0).spawn(2)
    agreement_ok(R.dropout(x, 0.5, rng=a)[1], R.dropout(x, 0.5, rng=b)[1])
    agreement_ok(first, R.dropout(x, 0.5, rng=a)[1])


def test_uniform_moments():
    for dtype in (np.float32, np.float64):
        u = lec7rs.Generator(13).random(N, dtype).astype(np.float64)
        assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / N)
        assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / N)


@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_is_unbiased_as_the_lecture_says(inverted):
    # The lecture: at test time scale so the output equals the expected
    # training output (x * (1 - p)); inverted dropout scales in training.
    p, n, calls = 0.3, 4096, 400
    x = np.ones(n)
    g = lec7rs.Generator(14)
    mean = sum(R.dropout(x, p, rng=g, inverted=inverted)[0] for _ in range(calls)) / calls
    test_out, _ = R.dropout(x, p, rng=g, training=False, inverted=inverted)
    # Each entry of the mean has variance q(1-q) s^2 / calls; check the
    # average of all entries.
    s = 1 / (1 - p) if inverted else 1.0
    sd = np.sqrt((1 - p) * p / calls / n) * s
    assert abs(mean.mean() - test_out.mean()) < 5 * sd
