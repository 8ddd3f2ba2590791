"""The streaming path: mergeable moments, chunked reading, agreement with the SVD path."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from hypothesis import given, settings, strategies as st

from repflat.analysis.moments import Moments
from repflat.analysis.spectra import layer_statistics, svd_statistics
from repflat.analysis.gram import RowReader, gram_statistics
from repflat.errors import UserError


@pytest.fixture(autouse=True)
def single_blas_thread():
    """Reference SVDs single-threaded: multi-threaded LAPACK crawls on a busy 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def classes(n=120, d=6, k=3, seed=0, offset=50.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) @ np.diag(np.linspace(2, 0.05, d)) + offset * rng.normal(size=(k, d))[y]
    return x, y


def assert_stats_close(a, b, atol_rel=1e-9):
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-12, atol=1e-12 * np.abs(a.means).max())
    np.testing.assert_allclose(a.within, b.within, atol=atol_rel * np.abs(a.within).max())
    for k in a.spectra:
        np.testing.assert_allclose(a.spectra[k], b.spectra[k], atol=atol_rel * a.spectra[k][0])
    np.testing.assert_allclose(a.pooled, b.pooled, atol=atol_rel * a.pooled[0])


# ---------------------------------------------------------------- Moments

@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 60), d=st.integers(1, 7), seed=st.integers(0, 2**16),
       cuts=st.lists(st.floats(0, 1), max_size=4))
def test_chunks_and_merges_equal_the_whole(n, d, seed, cuts):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 10) + rng.normal(size=d) * 100
    edges = sorted({0, n, *(int(c * n) for c in cuts)})
    parts = [x[a:b] for a, b in zip(edges, edges[1:])]
    whole = Moments.of(x)
    streamed = Moments.of(parts[0])            # one stream: chunks share the first shift
    for p in parts[1:]:
        streamed.add(p)
    merged = Moments.of(parts[0])              # separate processes: each its own shift
    for p in parts[1:]:
        merged = merged.merge(Moments.of(p))
    scale = np.abs(whole.scatter()).max() + 1e-300
    for m in (streamed, merged):
        assert m.count == n
        np.testing.assert_allclose(m.mean, x.mean(axis=0), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(m.scatter(), whole.scatter(), atol=1e-10 * scale)
        np.testing.assert_allclose(m.scatter(center=False), x.T @ x, rtol=1e-9,
                                   atol=1e-9 * np.abs(x.T @ x).max())


def test_merge_with_an_empty_side_is_the_other():
    m = Moments.of(np.arange(6.0).reshape(3, 2))
    empty = Moments(0, np.zeros(2), np.zeros(2), np.zeros((2, 2)))
    assert m.merge(empty) is m and empty.merge(m) is m


def test_the_shift_saves_the_spread_of_a_far_away_class():
    # mean 1e6 away, spread ~1: Σ x xᵀ − n μ μᵀ in float64 loses the spread entirely
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3)) * [1.0, 1e-2, 1e-4] + 1e6
    reference = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    m = Moments.of(x[:100])
    for start in range(100, 1000, 100):
        m.add(x[start:start + 100])
    lam = np.linalg.eigvalsh(m.scatter())[::-1]
    np.testing.assert_allclose(lam, reference, rtol=1e-6)
    naive = x.T @ x - len(x) * np.outer(x.mean(0), x.mean(0))
    assert abs(np.linalg.eigvalsh(naive)[0] - reference[-1]) > 10 * reference[-1]


# ---------------------------------------------------------------- streaming equals in-memory

@pytest.mark.parametrize("center", [True, False])
def test_gram_path_equals_svd_path(center):
    x, y = classes()
    assert_stats_close(svd_statistics(x, y, center=center), gram_statistics(x, y, center=center))


def test_memory_mapped_chunked_equals_in_memory(tmp_path):
    x, y = classes(n=300, d=5, k=4)
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    in_memory = gram_statistics(x.astype(np.float32), y, workers=1)
    # rows of each class in 7-row chunks read from the file, 3 workers
    streamed = gram_statistics(mapped, y, chunk_rows=7, workers=3)
    assert_stats_close(in_memory, streamed, atol_rel=1e-12)
    assert_stats_close(svd_statistics(x.astype(np.float32), y), streamed)


def test_row_reader_reads_files_and_mappings_alike(tmp_path):
    x = np.arange(64.0, dtype=np.float16).reshape(16, 4)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    by_file = RowReader(mapped)                              # the whole .npy: positional reads
    by_mapping = RowReader(mapped[2:], release_bytes=1)      # a view: through the mapping
    assert by_file.fd is not None and by_mapping.map is not None
    for idx in (np.array([3, 4, 5]), np.array([0, 9, 13]), np.arange(14)):
        np.testing.assert_array_equal(by_file(idx), x[idx])
        np.testing.assert_array_equal(by_mapping(idx), x[2:][idx])
        assert by_file(idx).dtype == by_mapping(idx).dtype == np.float64
    by_file.close()
    by_mapping.close()
    assert by_file.fd is None


def test_a_view_of_a_mapping_streams_too(tmp_path):
    x, y = classes(n=300, d=5, k=4)
    np.save(tmp_path / "x.npy", np.r_[np.zeros((1, 5)), x])
    view = np.load(tmp_path / "x.npy", mmap_mode="r")[1:]
    assert_stats_close(gram_statistics(x, y), gram_statistics(view, y, chunk_rows=7), atol_rel=1e-12)


def test_workers_do_not_change_the_numbers():
    x, y = classes(n=200, k=6)
    a = gram_statistics(x, y, workers=1)
    b = gram_statistics(x, y, workers=3, chunk_rows=11)
    c = gram_statistics(x, y, workers=3, chunk_rows=11)
    for k in a.spectra:
        np.testing.assert_allclose(a.spectra[k], b.spectra[k], rtol=1e-12, atol=1e-12 * a.spectra[k][0])
        np.testing.assert_array_equal(b.spectra[k], c.spectra[k])
    np.testing.assert_array_equal(b.within, c.within)


def test_nan_in_a_late_chunk_is_refused_with_its_row():
    x, y = classes(n=100)
    x[77, 2] = np.nan
    with pytest.raises(UserError, match="NaN or Inf in row 77"):
        gram_statistics(x, y, chunk_rows=5, workers=2)
    x16 = classes(n=100)[0].astype(np.float16)
    x16[12, 0] = np.inf
    with pytest.raises(UserError, match="NaN or Inf in row 12"):
        layer_statistics(x16, y, method="gram")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 50), d=st.integers(1, 10), k=st.integers(1, 4),
       seed=st.integers(0, 2**16), chunk=st.integers(1, 20), center=st.booleans())
def test_property_gram_equals_svd_over_shapes(n, d, k, seed, chunk, center):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) * rng.uniform(0.01, 100) + rng.normal(size=(k, d))[y] * 3
    a = svd_statistics(x, y, center=center)
    b = gram_statistics(x, y, center=center, chunk_rows=chunk, workers=2)
    assert set(a.spectra) == set(b.spectra)
    for cls, s in a.spectra.items():
        assert len(b.spectra[cls]) == len(s) == min(np.sum(y == cls), d)
        np.testing.assert_allclose(b.spectra[cls], s, atol=1e-7 * s[0] + 1e-300)
    np.testing.assert_allclose(b.pooled, a.pooled, atol=1e-7 * a.pooled[0] + 1e-300)
    np.testing.assert_allclose(b.within, a.within, atol=1e-9 * np.abs(a.within).max() + 1e-300)


def test_squares_that_overflow_float64_are_refused():
    x, y = classes(n=30)
    with pytest.raises(UserError, match="too large for float64's squares"):
        gram_statistics(x * 1e200, y)
