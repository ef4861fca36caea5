import hashlib
import pickle
import tarfile
from dataclasses import replace

import numpy as np
import pytest

from bench.core.errors import DatasetError
from datasets import cifar
from datasets.folder import read_image_folder

from ..conftest import SHARED_CIFAR, write_image_folder


def _fake_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 255, (n, 3 * 32 * 32), dtype=np.uint8)
    labels = [int(i % 10) for i in range(n)]
    with open(path, "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f)
    return data, labels


def test_pickled_batches_become_image_folders(tmp_path):
    raw = tmp_path / "cifar-10-batches-py"
    raw.mkdir()
    for i in range(1, 6):
        _fake_batch(raw / f"data_batch_{i}", 20, i)
    data, labels = _fake_batch(raw / "test_batch", 10, 9)
    out = cifar.batches_to_folder(raw, tmp_path / "folder")
    train, test = read_image_folder(out, "train"), read_image_folder(out, "test")
    assert train.classes == sorted(cifar.CLASSES) and len(train) == 100 and len(test) == 10
    first = np.asarray(read_image_folder(out, "test").load(
        [i for i, (p, _) in enumerate(test.samples) if p.name == "test_batch_00000.png"][0]))
    np.testing.assert_array_equal(first, data[0].reshape(3, 32, 32).transpose(1, 2, 0))


def test_missing_batch_is_named(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(DatasetError, match="data_batch_1 is missing"):
        cifar.batches_to_folder(raw, tmp_path / "folder")
    assert not (tmp_path / "folder").exists()


def _folder_archive(tmp_path):
    write_image_folder(tmp_path / "src" / "cifar10", classes=("cat", "dog"), per_class=3)
    path = tmp_path / "mini.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        t.add(tmp_path / "src" / "cifar10", arcname="cifar10")
    return path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_local_archive_checked_and_extracted_once(tmp_path):
    path, checksum = _folder_archive(tmp_path)
    root = cifar.prepare_archive(str(path), tmp_path / "data", checksum)
    assert read_image_folder(root, "train").classes == ["cat", "dog"]
    path.unlink()  # cached: the archive is not needed again
    assert cifar.prepare_archive(str(path), tmp_path / "data", checksum) == root


def test_local_archive_with_wrong_checksum_refused(tmp_path):
    path, _ = _folder_archive(tmp_path)
    with pytest.raises(DatasetError, match="expected"):
        cifar.prepare_archive(str(path), tmp_path / "data", "sha256:" + "1" * 64)
    with pytest.raises(DatasetError, match="--archive-checksum"):
        cifar.prepare_archive(str(path), tmp_path / "data", None)


def test_select_classes_relabels(tmp_path):
    root = write_image_folder(tmp_path / "d", classes=("a", "b", "c"), per_class=2)
    ds = read_image_folder(root, "train").select(("c", "a"))
    assert ds.classes == ["c", "a"] and sorted(set(ds.labels.tolist())) == [0, 1]
    with pytest.raises(DatasetError, match=r"\['zebra'\] not in"):
        read_image_folder(root, "train").select(("zebra",))


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR.exists(), reason="../shared/data/cifar10-jpeg.tar.gz not present")
def test_cifar_transfer_pipeline_on_real_photos_tiny(fake_backend, tmp_path, monkeypatch):
    """The cifar-transfer experiment end to end on the real JPEGs, at a tiny size."""
    from bench.execute.local import RunOptions, run_local
    from bench.plan import experiments
    from bench.plan.sweep import plan_sweep

    exp = experiments.get_experiment("cifar-transfer")
    tiny = replace(exp, models={"*": "fake_mlp"},
                   pretrain=dict(exp.pretrain, shots=20, epochs=1, batch_size=16))
    monkeypatch.setitem(experiments.EXPERIMENTS, "cifar-transfer", tiny)
    cfg = tiny.arm_config("fake", "finetune", "full", pretrain_backend="fake", shots=20, eval_shots=100,
                          epochs=1, batch_size=16,
                          archive=str(SHARED_CIFAR), archive_checksum=next(iter(cifar.KNOWN_FOLDER_ARCHIVES)))
    opts = RunOptions(out=tmp_path / "out", cache_dir=tmp_path / "cache", data_root=tmp_path / "data",
                      progress=False, in_process=True)
    pre, rec = run_local(plan_sweep([cfg], opts.cache_dir), opts)
    assert pre["status"] == "ok", pre["error"]
    assert rec["status"] == "ok", rec["error"]
    assert rec["data"] == {**rec["data"], "train_images": 100, "eval_images": 500,
                           "classes": ["dog", "frog", "horse", "ship", "truck"]}
    assert rec["model"]["weights"]["source"] == "suite pretrain"


def test_an_official_batch_that_would_run_code_is_refused(tmp_path):
    import os as _os

    class Payload:
        def __reduce__(self):
            return (_os.system, (f"touch {tmp_path / 'pwned'}",))

    raw = tmp_path / "cifar-10-batches-py"
    raw.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(raw / name, "wb") as f:
            pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": Payload()}, f, protocol=2)
    with pytest.raises(DatasetError, match="refusing to unpickle posix.system"):
        cifar.batches_to_folder(raw, tmp_path / "folder")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "folder").exists()
