import jax
import numpy as np
import pytest

from mhsnn import data


def test_dataset_shape_and_dtypes():
    ds = data.load_breast_cancer()
    assert ds.X.shape == (569, 30) and ds.X.dtype == np.float32
    assert ds.y.shape == (569,) and ds.y.dtype == np.int32
    assert np.bincount(ds.y).tolist() == [212, 357]


def test_kfold_disjoint_covering_stratified():
    ds = data.load_breast_cancer()
    splits = data.kfold_splits(ds.y, 5, seed=0)
    tests = np.concatenate([s.test for s in splits])
    assert sorted(tests.tolist()) == list(range(569))
    for s in splits:
        assert not set(s.train) & set(s.test)
        assert len(s.train) + len(s.test) == 569
        assert abs(ds.y[s.test].mean() - ds.y.mean()) < 0.02
    assert not np.array_equal(splits[0].test, data.kfold_splits(ds.y, 5, seed=1)[0].test)


def test_subset_splits_size_and_ratio():
    ds = data.load_breast_cancer()
    for s in data.subset_splits(ds.y, 40, num_repeats=3, seed=0):
        assert len(s.train) == 40 and len(s.test) == 529
        assert not set(s.train) & set(s.test)
        assert abs(ds.y[s.train].mean() - ds.y.mean()) < 0.05


def test_scaling_sees_only_training_rows():
    ds = data.load_breast_cancer()
    split = data.kfold_splits(ds.y, 5, seed=0)[0]
    X_train, X_test = data.scale_split(ds, split)
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    assert X_test.min() >= 0.0 and X_test.max() <= 1.0
    # Moving a test row to an extreme value changes nothing on the training side.
    poisoned = data.Dataset(ds.X.copy(), ds.y)
    poisoned.X[split.test[0]] = 1e6
    X_train2, X_test2 = data.scale_split(poisoned, split)
    np.testing.assert_array_equal(X_train, X_train2)
    assert np.all(X_test2[0] == 1.0)


def test_poisson_encoder_rate_matches_probability():
    probs = np.linspace(0.0, 1.0, 11, dtype=np.float32)[None, :].repeat(30, 0).T  # [11, 30]
    spikes = np.asarray(data.poisson_encode(jax.random.key(0), probs, num_steps=4000))
    assert spikes.shape == (4000, 11, 30)
    assert set(np.unique(spikes).tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(spikes.mean(axis=(0, 2)), probs[:, 0], atol=0.01)


@pytest.mark.parametrize("bad", ["nan", "shape", "labels"])
def test_bad_data_refused(bad):
    ds = data.load_breast_cancer()
    X, y = ds.X.copy(), ds.y.copy()
    if bad == "nan":
        X[3, 4] = np.nan
    elif bad == "shape":
        X = X[:, 0]
    else:
        y[0] = -1
    with pytest.raises(ValueError, match="data"):
        data.check_dataset(data.Dataset(X, y))
