import pickle

import numpy as np
import pytest

from raymia import DataConfig
from raymia.data import DataError, load_dataset


def rows(n=30, d=12, classes=100, seed=0):
    gen = np.random.default_rng(seed)
    return (gen.random((n, d)) < 0.5).astype(np.float32), gen.integers(0, classes, n)


def test_digits_is_the_embedded_default():
    data = load_dataset(DataConfig())
    assert data.x.shape == (1797, 1, 8, 8) and data.x.dtype == np.float32
    assert 0 <= data.x.min() and data.x.max() <= 1
    assert data.n_classes == 10 and set(np.unique(data.y)) == set(range(10))


def test_synthetic_is_seeded_and_sized():
    cfg = DataConfig(name="synthetic", size=300, n_features=40, n_classes=7)
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert a.x.shape == (300, 40) and set(np.unique(a.x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(a.x, b.x)
    assert a.y.max() < 7 and a.kind == "tabular"


@pytest.mark.parametrize("one_hot", [False, True])
def test_purchase_npz(tmp_path, one_hot):
    x, y = rows()
    labels = np.eye(100)[y] if one_hot else y
    np.savez(tmp_path / "purchase100.npz", features=x, labels=labels)
    data = load_dataset(DataConfig(name="purchase100", root=str(tmp_path)))
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)


def test_purchase_raw_csv_label_first_numbered_from_one(tmp_path, monkeypatch):
    x, y = rows()
    (tmp_path / "purchase100").mkdir()
    table = np.column_stack([y + 1, x.astype(int)])
    np.savetxt(tmp_path / "purchase100" / "dataset_purchase", table, fmt="%d", delimiter=",")
    monkeypatch.setenv("RAYMIA_DATA", str(tmp_path))
    data = load_dataset(DataConfig(name="purchase100"))
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)


def test_texas_two_file_release(tmp_path):
    x, y = rows(d=20)
    folder = tmp_path / "texas" / "100"
    folder.mkdir(parents=True)
    np.savetxt(folder / "feats", x.astype(int), fmt="%d", delimiter=",")
    np.savetxt(folder / "labels", y + 1, fmt="%d")
    data = load_dataset(DataConfig(name="texas100", root=str(tmp_path)))
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)


@pytest.mark.parametrize("break_it, message", [
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), y), "NaN"),
    (lambda x, y: (x, np.r_[y[:-1], 100]), r"labels must be in \[0, 100\)"),
    (lambda x, y: (x, y[:-2]), "30 feature rows but 28 labels"),
    (lambda x, y: (x[:, 0], y), "features must be 2-D"),
])
def test_malformed_npz_names_the_file(tmp_path, break_it, message):
    x, y = break_it(*rows())
    np.savez(tmp_path / "purchase100.npz", features=x, labels=y)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(DataConfig(name="purchase100", root=str(tmp_path)))
    assert info.value.where == str(tmp_path / "purchase100.npz")


def test_malformed_csv_and_missing_files(tmp_path):
    (tmp_path / "dataset_purchase").write_text("1,0,1\n2,x,0\n")
    with pytest.raises(DataError, match="non-numeric") as info:
        load_dataset(DataConfig(name="purchase100", root=str(tmp_path)))
    assert "dataset_purchase" in info.value.where
    with pytest.raises(DataError, match="no texas100 files found"):
        load_dataset(DataConfig(name="texas100", root=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="set data.root or RAYMIA_DATA"):
        load_dataset(DataConfig(name="texas100"))


def test_texas_labels_must_match_rows(tmp_path):
    folder = tmp_path / "texas" / "100"
    folder.mkdir(parents=True)
    np.savetxt(folder / "feats", np.ones((5, 3)), fmt="%d", delimiter=",")
    np.savetxt(folder / "labels", np.ones(4), fmt="%d")
    with pytest.raises(DataError, match="4 labels for 5 rows") as info:
        load_dataset(DataConfig(name="texas100", root=str(tmp_path)))
    assert info.value.where.endswith("labels")


def test_missing_cifar_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="put the python release's 'cifar-10-batches-py' folder"):
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))


def test_cifar10_from_the_python_release_format(tmp_path, monkeypatch):
    """Batches written in the real pickle layout; torchvision's md5 checks are the
    only thing bypassed (their checksums are of the real files)."""
    import torchvision.datasets as tvd

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    gen = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {"data": gen.integers(0, 256, (4, 3072), dtype=np.uint8),
                 "labels": [(i + j) % 10 for j in range(4)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(c) for c in range(10)]}, f)
    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda *args: True)
    data = load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))
    assert data.x.shape == (24, 3, 32, 32) and data.kind == "image"
    assert 0 <= data.x.min() and data.x.max() <= 1
    assert data.y.tolist()[:4] == [0, 1, 2, 3] and data.y.tolist()[-4:] == [5, 6, 7, 8]


@pytest.mark.parametrize("make, message", [
    ("truncated", "not a readable .npz file (truncated or not a zip archive)"),
    ("objects", "holds object (pickled) arrays"),
])
def test_a_broken_or_pickled_npz_is_one_line_that_never_suggests_unpickling(tmp_path, make,
                                                                          message):
    path = tmp_path / "purchase100.npz"
    x, y = np.ones((10, 600)), np.zeros(10, np.int64)
    if make == "truncated":
        np.savez(path, features=x, labels=y)
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.savez(path, features=np.array([x[0], "a"], dtype=object), labels=y)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="purchase100", root=str(tmp_path)))
    assert message in str(info.value) and info.value.where == str(path)
    assert "pickle=" not in str(info.value) and len(str(info.value).splitlines()) == 1


def test_missing_cifar_never_suggests_a_download(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="cifar10", root=str(tmp_path)))
    assert "download=True" not in str(info.value) and "never downloads" in str(info.value)
