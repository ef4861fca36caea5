"""FGVC-Aircraft: its annotation files read as they are, and `bench run --experiment aircraft` on a small
archive in the official layout served from 127.0.0.1."""
import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from bench.core.errors import DatasetError
from datasets.aircraft import read_aircraft
from tests.backends.installed import BACKENDS

from .test_download import server  # noqa: F401  (the loopback HTTP server fixture)

VARIANTS = ["707-320", "F/A-18", "Cessna 172"]  # a slash and a space, as in the real list


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def layout(per_class=(4, 2)) -> dict[str, bytes]:
    """Archive members: fgvc-aircraft-2013b/data/{variants.txt, images_variant_*.txt, images/<id>.jpg}."""
    files, ids = {}, iter(range(1_000_000, 2_000_000))
    lines = {"trainval": [], "test": []}
    for variant in VARIANTS:
        for split, n in zip(("trainval", "test"), per_class):
            for _ in range(n):
                image_id = f"{next(ids):07d}"
                files[f"data/images/{image_id}.jpg"] = _jpeg(int(image_id))
                lines[split].append(f"{image_id} {variant}")
    files["data/variants.txt"] = ("\n".join(VARIANTS) + "\n").encode()
    for split, rows in lines.items():
        files[f"data/images_variant_{split}.txt"] = ("\n".join(rows) + "\n").encode()
    return files


def write_tree(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def tar_gz(files) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"fgvc-aircraft-2013b/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_reads_the_annotation_files(tmp_path):
    root = write_tree(tmp_path / "fgvc-aircraft-2013b", layout())
    train, test = read_aircraft(root, "trainval"), read_aircraft(root, "test")
    assert train.classes == VARIANTS and test.classes == VARIANTS
    assert len(train) == 12 and len(test) == 6 and sorted(set(train.labels)) == [0, 1, 2]
    assert train.load(0).size == (56, 40)


@pytest.mark.parametrize("change,message", [
    (lambda f: f.pop("data/images_variant_test.txt"), "images_variant_test.txt: missing; FGVC-Aircraft's layout"),
    (lambda f: f.pop("data/variants.txt"), "variants.txt: missing"),
    (lambda f: f.update({"data/images_variant_test.txt": b"1000004 Boeing 999\n"}),
     "images_variant_test.txt:1: variant 'Boeing 999' is not in"),
    (lambda f: f.update({"data/images_variant_test.txt": b"../../etc/passwd F/A-18\n"}),
     "images_variant_test.txt:1: expected '<image id> <variant>'"),
    (lambda f: f.update({"data/images_variant_test.txt": b"\n1000004\n"}), "images_variant_test.txt:2: expected"),
    (lambda f: f.update({"data/images_variant_test.txt": b"9999999 F/A-18\n"}), "names image .*9999999.jpg, which is missing"),
    (lambda f: f.update({"data/variants.txt": b"A\nA\n"}), "expected distinct variant names"),
])
def test_a_broken_layout_is_named(tmp_path, change, message):
    files = layout()
    change(files)
    root = write_tree(tmp_path / "fgvc-aircraft-2013b", files)
    with pytest.raises(DatasetError, match=message):
        read_aircraft(root, "test")


@pytest.mark.slow
@pytest.mark.skipif("torch" not in BACKENDS, reason="needs torch")
def test_bench_run_aircraft_from_a_loopback_archive(server, tmp_path):  # noqa: F811
    handler, base = server
    handler.payload = tar_gz(layout())
    url = f"{base}/fgvc-aircraft-2013b.tar.gz"
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "bench", "run", "--backend", "torch", "--experiment", "aircraft", "--archive", url,
           "--pretrained", "none", "--strategy", "full", "--arms", "finetune", "--image-size", "32", "--epochs", "2",
           "--lr-warmup-epochs", "1", "--batch-size", "4", "--out", str(out), "--data-root", str(tmp_path / "data"),
           "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(next(out.rglob("*.json")).read_text())
    assert record["status"] == "ok" and record["data"]["classes"] == VARIANTS
    assert record["data"]["train_images"] == 12 and record["data"]["eval_images"] == 6
    config = record["config"]
    assert config["rand_augment"] == "randaug-m7-mstd0.5" and config["schedule"] == "cosine"
    assert config["label_smoothing"] == 0.1 and config["decay_filter"] == "no-bias-bn" and config["crop_pct"] == 0.875
    lr = record["model"]["lr"]
    assert lr["schedule"]["warmup_steps"] == 3 and lr["read_back"][0]["applied"]["head"] == 0.0  # warm-up from 0
    assert any(row["applied"]["head"] == pytest.approx(row["protocol"]) for row in lr["read_back"])
    # an archive of other content gets a folder of its own: the first never stands in for it
    handler.payload = tar_gz(layout(per_class=(3, 1)))
    again = [a if a != str(out) else str(tmp_path / "runs2") for a in cmd]
    url2 = f"{base}/other/fgvc-aircraft-2013b.tar.gz"
    proc = subprocess.run([a if a != url else url2 for a in again], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(next((tmp_path / "runs2").rglob("*.json")).read_text())["data"]["train_images"] == 9


def test_a_broken_archive_is_refused_before_any_job(server, tmp_path):  # noqa: F811
    handler, base = server
    files = layout()
    files["data/images_variant_test.txt"] += b"1999999 F/A-18\n"  # an image the archive lacks
    handler.payload = tar_gz(files)
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--backend", BACKENDS[0] if BACKENDS else "torch",
                           "--experiment", "aircraft", "--archive", f"{base}/fgvc-aircraft-2013b.tar.gz",
                           "--pretrained", "none", "--out", str(out), "--data-root", str(tmp_path / "data"),
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert "images_variant_test.txt:7: names image" in proc.stderr and "1999999.jpg, which is missing" in proc.stderr
    assert not list(out.rglob("*.json"))  # no job ran, nothing was written
