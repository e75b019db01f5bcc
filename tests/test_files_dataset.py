"""The `files` dataset: the user's own .npz, .npy folder, .csv or ImageFolder tree."""
import pickle

import numpy as np
import pytest
from PIL import Image

from conftest import QUICK
from raymia import (ConfigError, DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig,
                    TrainConfig)
from raymia.data import DataError, load_dataset
from raymia.execution.plan import check_model_fits, data_key


def load(path, **fields):
    return load_dataset(DataConfig(name="files", path=str(path), **fields))


def refused(path, match: str | None = None, **fields) -> str:
    """The one-line DataError that loading `path` raises; it names the file."""
    with pytest.raises(DataError, match=match) as info:
        load(path, **fields)
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    return text


def table(n=60, d=5, classes=3, seed=0):
    gen = np.random.default_rng(seed)
    y = np.arange(n) % classes
    return (gen.random((n, d)) + y[:, None]).astype(np.float32), y


def write_csv(path, x, labels, label_column="label"):
    names = [f"f{i}" for i in range(x.shape[1])]
    lines = [",".join(names[:2] + [label_column] + names[2:])]
    lines += [",".join([*map(str, row[:2]), str(label), *map(str, row[2:])])
              for row, label in zip(x.tolist(), labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(root, sizes=((8, 8),) * 3, classes=("cat", "dog")):
    gen = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            pixels = gen.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


# --- formats that load ------------------------------------------------------------

@pytest.mark.parametrize("names", [("x", "y"), ("features", "labels")])
def test_npz(tmp_path, names):
    x, y = table()
    np.savez(tmp_path / "d.npz", **dict(zip(names, (x, y))))
    data = load(tmp_path / "d.npz")
    assert (data.name, data.kind, data.n_classes, data.input_shape) == ("files", "tabular", 3, (5,))
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)


def test_one_hot_npz_keeps_its_classes(tmp_path):
    x, y = table(classes=3)
    np.savez(tmp_path / "d.npz", x=x, y=np.eye(5)[y])  # classes 3 and 4 unused
    data = load(tmp_path / "d.npz")
    assert data.n_classes == 5
    np.testing.assert_array_equal(data.y, y)


@pytest.mark.parametrize("names", [("x", "y"), ("features", "labels")])
def test_npy_folder_of_images(tmp_path, names):
    x = np.random.default_rng(0).random((12, 1, 4, 4)).astype(np.float32)
    y = np.arange(12) % 4
    np.save(tmp_path / f"{names[0]}.npy", x)
    np.save(tmp_path / f"{names[1]}.npy", y)
    data = load(tmp_path)
    assert (data.kind, data.n_classes, data.input_shape) == ("image", 4, (1, 4, 4))
    np.testing.assert_array_equal(data.x, x)


def test_csv_with_integer_labels_in_any_column(tmp_path):
    x, y = table()
    data = load(write_csv(tmp_path / "d.csv", x, y, label_column="target"), label_column="target")
    assert (data.kind, data.n_classes, data.input_shape) == ("tabular", 3, (5,))
    np.testing.assert_allclose(data.x, x, rtol=1e-6)
    np.testing.assert_array_equal(data.y, y)


def test_csv_string_labels_number_in_sorted_order(tmp_path):
    x, y = table(n=6)
    names = np.array(["zebra", "ant", "mole"])[y]  # ant=0, mole=1, zebra=2
    data = load(write_csv(tmp_path / "d.csv", x, names))
    np.testing.assert_array_equal(data.y, [2, 0, 1, 2, 0, 1])
    assert data.n_classes == 3


def test_image_folder(tmp_path):
    data = load(write_images(tmp_path / "pics"))
    assert (data.kind, data.n_classes, data.x.shape, data.x.dtype) == ("image", 2, (6, 3, 8, 8),
                                                                       np.float32)
    np.testing.assert_array_equal(data.y, [0, 0, 0, 1, 1, 1])  # cat, dog: sorted folders
    assert 0 <= data.x.min() and data.x.max() <= 1
    first = np.asarray(Image.open(tmp_path / "pics" / "cat" / "0.png"))
    np.testing.assert_allclose(data.x[0], first.transpose(2, 0, 1) / 255.0, atol=1e-6)


# --- files that are refused -------------------------------------------------------

def test_missing_path_and_unknown_format(tmp_path):
    refused(tmp_path / "nowhere.npz", "no such file")
    (tmp_path / "d.txt").write_text("1,2\n")
    assert ".npz" in refused(tmp_path / "d.txt", "unknown format")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "no class folders")


def test_bad_arrays(tmp_path):
    x, y = table()
    cases = {"three_dims": (x[:, :, None], y), "rows": (x, y[:-1]),
             "out_of_range": (x, np.where(y == 2, 1000, y)), "negative": (x, y - 1),
             "fractional": (x, y + 0.5), "nan": (np.where(x > 2, np.nan, x), y),
             "one_class": (x, np.zeros_like(y))}
    messages = {}
    for name, (features, labels) in cases.items():
        np.savez(tmp_path / f"{name}.npz", x=features, y=labels)
        messages[name] = refused(tmp_path / f"{name}.npz")
    assert "(n, C, H, W)" in messages["three_dims"] and "60 feature rows but 59" in messages["rows"]
    assert "up to 1000" in messages["out_of_range"] and "from 0" in messages["negative"]
    assert "whole numbers" in messages["fractional"] and "NaN" in messages["nan"]
    np.savez(tmp_path / "names.npz", a=x, b=y)
    assert "['a', 'b']" in refused(tmp_path / "names.npz", "needs arrays x and y")
    np.savez(tmp_path / "hot.npz", x=x, y=np.eye(3)[y] * 2)
    refused(tmp_path / "hot.npz", "one-hot")


def test_pickled_and_truncated_arrays(tmp_path):
    x, y = table()
    np.savez(tmp_path / "object.npz", x=x.astype(object), y=y)
    refused(tmp_path / "object.npz", "object \\(pickled\\) arrays")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([{"label": 1}] * len(y), dtype=object), allow_pickle=True)
    assert "y.npy" in refused(tmp_path, "object \\(pickled\\) arrays")
    np.savez(tmp_path / "whole.npz", x=x, y=y)
    blob = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[: len(blob) // 2])
    refused(tmp_path / "cut.npz", "truncated")
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"x": x, "y": y}))
    refused(tmp_path / "pickle.npz", "never unpickles")
    (tmp_path / "y.npy").unlink()
    refused(tmp_path, "y.npy is missing")


def test_bad_csv(tmp_path):
    x, y = table(n=6)
    (tmp_path / "empty.csv").write_text("")
    refused(tmp_path / "empty.csv", "empty")
    (tmp_path / "header.csv").write_text("a,label\n")
    refused(tmp_path / "header.csv", "no rows")
    path = write_csv(tmp_path / "d.csv", x, y)
    assert "f0, f1, label" in refused(path, "no label column 'class'", label_column="class")
    text = path.read_text().replace(f"\n{x.tolist()[3][0]},", "\nred,", 1)
    assert "\nred," in text
    (tmp_path / "words.csv").write_text(text)
    refused(tmp_path / "words.csv", "feature column 'f0' is not numeric \\('red' in data row 4")
    x[2, 4] = np.nan
    refused(write_csv(tmp_path / "nan.csv", x, y), "NaN")


def test_image_folders_refused(tmp_path):
    write_images(tmp_path / "mixed", sizes=((8, 8), (8, 8), (16, 8)))
    text = refused(tmp_path / "mixed", "all images must have one size")
    assert str(tmp_path / "mixed" / "cat" / "2.png") in text  # the first odd one
    (tmp_path / "bare" / "cat").mkdir(parents=True)
    refused(tmp_path / "bare", "no images")


# --- config, planning, a trial ----------------------------------------------------

def test_files_needs_a_path_and_makes_it_absolute(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as info:
        Experiment(data=DataConfig(name="files"))
    assert info.value.where == "data.path"
    with pytest.raises(ConfigError) as info:
        Experiment.from_dict({"data": {"name": "files"}})
    assert info.value.where == "data.path"
    monkeypatch.chdir(tmp_path)
    assert DataConfig(name="files", path="d.csv").path == str(tmp_path / "d.csv")


def test_new_fields_leave_earlier_trial_ids_alone(tmp_path):
    assert Experiment().trial_id == "23530781d7cb"  # as before data.path existed
    a = Experiment(data=DataConfig(name="files", path=str(tmp_path / "a.csv")))
    b = Experiment(data=DataConfig(name="files", path=str(tmp_path / "b.csv")))
    c = Experiment(data=DataConfig(name="files", path=a.data.path, label_column="y"))
    assert len({a.trial_id, b.trial_id, c.trial_id}) == 3
    assert len({data_key(a), data_key(b), data_key(c)}) == 3  # loaded once per distinct files
    assert Experiment.from_dict(a.to_dict()) == a


def test_registered_models_fit_files_data(tmp_path):
    x, y = table()
    csv = Experiment(data=DataConfig(name="files", path=str(write_csv(tmp_path / "d.csv", x, y))))
    check_model_fits(csv, load_dataset(csv.data))
    for size in (8, 32):
        folder = write_images(tmp_path / f"pics{size}", sizes=((size, size),) * 2)
        exp = Experiment(data=DataConfig(name="files", path=str(folder)),
                         model=ModelConfig(name="small_cnn"))
        check_model_fits(exp, load_dataset(exp.data))
    with pytest.raises(ConfigError, match="small_cnn on files"):
        check_model_fits(Experiment(data=csv.data, model=ModelConfig(name="small_cnn")),
                         load_dataset(csv.data))


def test_a_trial_runs_on_a_csv(tmp_path):
    from raymia.execution.inprocess import InProcessExecutor
    from raymia.experiment import run_trial

    x, y = table(n=60)
    exp = Experiment(data=DataConfig(name="files", path=str(write_csv(tmp_path / "d.csv", x, y))),
                     split=SplitConfig(n_members=20), model=ModelConfig(name="mlp", widths=(16,)),
                     train=TrainConfig(epochs=2, batch_size=16),
                     shadows=ShadowConfig(n_models=2, models_per_job=2), evaluation=QUICK)
    data = load_dataset(exp.data)
    tables = run_trial(exp, data, InProcessExecutor(data))
    trial = tables["trials"].iloc[0]
    assert trial["status"] == "ok" and trial["dataset"] == "files" and trial["n_members"] == 20
    assert len(tables["attacks"]) > 0
