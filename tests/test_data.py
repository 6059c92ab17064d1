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


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


GOOD_X = np.arange(24, dtype=np.float64).reshape(8, 3)
GOOD_Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])


def test_user_files_load_the_same_from_npz_and_csv(tmp_path):
    npz = _npz(tmp_path, X=GOOD_X, y=GOOD_Y)
    lines = ["a,label,b,c"] + [f"{x[0]},{y},{x[1]},{x[2]}" for x, y in zip(GOOD_X, GOOD_Y)]
    csv_path = _write(tmp_path, "d.csv", "\n".join(lines) + "\n")
    for path in (npz, csv_path, str(npz)):
        ds = data.load(path)
        np.testing.assert_array_equal(ds.X, GOOD_X.astype(np.float32))
        np.testing.assert_array_equal(ds.y, GOOD_Y)
        assert ds.X.dtype == np.float32 and ds.y.dtype == np.int32
    for name, (n, f, k) in {"iris": (150, 4, 3), "wine": (178, 13, 3),
                            "digits": (1797, 64, 10), "breast_cancer": (569, 30, 2)}.items():
        ds = data.load(name)
        assert ds.X.shape == (n, f) and len(np.unique(ds.y)) == k


BAD_FILES = {
    "missing": lambda p: p / "nope.npz",
    "extension": lambda p: _write(p, "d.txt", "a,label\n1,0\n"),
    "not_an_archive": lambda p: _write(p, "d.npz", "hello"),
    "npz_without_y": lambda p: _npz(p, X=GOOD_X),
    "nan": lambda p: _npz(p, X=np.where(GOOD_X == 5, np.nan, GOOD_X), y=GOOD_Y),
    "inf": lambda p: _write(p, "d.csv", "a,label\n1,0\ninf,1\n2,0\n3,1\n"),
    "non_numeric": lambda p: _write(p, "d.csv", "a,label\n1,0\nx,1\n2,0\n3,1\n"),
    "ragged": lambda p: _write(p, "d.csv", "a,b,label\n1,2,0\n3,1\n2,2,0\n3,3,1\n"),
    "no_label_column": lambda p: _write(p, "d.csv", "a,b\n1,2\n3,4\n"),
    "float_labels": lambda p: _npz(p, X=GOOD_X, y=GOOD_Y + 0.5),
    "single_class": lambda p: _npz(p, X=GOOD_X, y=np.zeros(8, int)),
    "single_text_class": lambda p: _write(p, "d.csv", "a,label\n1,cat\n2,cat\n"),
    "too_many_features": lambda p: _npz(p, X=np.zeros((4, 10_001)), y=np.array([0, 1, 0, 1])),
    "header_only": lambda p: _write(p, "d.csv", "a,label\n"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_refused_in_one_line_naming_the_file(tmp_path, case):
    path = BAD_FILES[case](tmp_path)
    with pytest.raises(ValueError) as err:
        data.load(path)
    msg = str(err.value)
    assert "\n" not in msg and (path.name in msg)


def test_any_labels_map_to_sorted_classes_and_a_label_column_can_be_named(tmp_path):
    path = _write(tmp_path, "d.csv", "x1,species,x2\n1,dog,5\n2,cat,6\n3,emu,7\n4,cat,8\n")
    ds = data.load(path, label="species")
    assert ds.classes == ("cat", "dog", "emu")
    np.testing.assert_array_equal(ds.y, [1, 0, 2, 0])
    np.testing.assert_array_equal(ds.X, [[1, 5], [2, 6], [3, 7], [4, 8]])
    ds = data.load(_npz(tmp_path, X=GOOD_X, y=GOOD_Y * 5 - 1))  # -1, 4, ...: as numbers
    assert ds.classes[:2] == (-1, 4) and list(ds.y) == list(GOOD_Y)
    ds = data.load(_write(tmp_path, "n.csv", "a,label\n1,10\n2,2\n3,10\n"))
    assert ds.classes == (2, 10) and list(ds.y) == [1, 0, 1]  # 2 before 10


def test_a_non_numeric_feature_is_named_by_line_and_column(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(ValueError, match=r"line 3, column 'b': non-numeric feature value 'oops'"):
        data.load(path)


def test_folds_and_training_sizes_are_bounded_by_the_data():
    y = np.array([0] * 10 + [1] * 3)
    data.check_folds(y, 3)
    with pytest.raises(ValueError, match="folds=4"):
        data.check_folds(y, 4)
    assert data.n_train_range(y) == (2, 11)
    with pytest.raises(ValueError, match="n_train"):
        data.subset_splits(y, 12, 1, 0)


def test_csv_errors_name_the_missing_cells_and_the_nearest_column(tmp_path):
    path = tmp_path / "cars.csv"
    path.write_text("mpg,Horsepower,Origin\n18,130,usa\n15,,usa\n16,150,japan\n17,NA,europe\n")
    with pytest.raises(ValueError) as err:
        data.load(path, label="Origin")
    assert str(err.value) == (f"data file {path}: 2 missing value(s) in column(s) "
                              "'Horsepower' (first: line 3); drop or fill those rows first")
    with pytest.raises(ValueError) as err:
        data.load(path, label="origin")
    assert "no column named 'origin' in the header; did you mean 'Origin'? (columns: mpg, " \
           "Horsepower, Origin; set data.label)" in str(err.value)


def test_estimator_data_errors_name_the_column():
    import mhsnn

    X = np.array([[1.0, 2.0, "chevrolet chevelle malibu"], [3.0, 4.0, "ford torino"]],
                 dtype=object)
    with pytest.raises(ValueError, match=r"^X column 2: non-numeric value 'chevrolet chevelle "
                                         r"malibu' \(2 row\(s\)\)"):
        mhsnn.SNNClassifier(presentations=100).fit(X, [0, 1])
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"mpg": [1.0, 2.0, 3.0], "horsepower": [1.0, np.nan, 2.0]})
    with pytest.raises(ValueError, match=r"^X column 1 \('horsepower'\): 1 missing \(NaN\)"):
        mhsnn.SNNClassifier(presentations=100).fit(frame, [0, 1, 0])
