"""`--pretrained imagenet` with network, proved offline: torchvision's ResNet-18 file is served by a
loopback HTTP server, downloaded once with its full SHA-256 and size checked, read without torch,
converted to one canonical file, and that one file (one sha256 in every record) starts every
backend, whose logits then agree."""
import dataclasses
import hashlib
import io

import numpy as np
import pytest

from architectures import get_spec
from backends.registry import get_backend
from bench.core.errors import BackendUnavailable
from bench.weights import imagenet

from ...backends.installed import BACKENDS
from ...backends.test_architectures import RTOL, max_rel_diff
from ...datasets.test_download import server  # noqa: F401  (the loopback server fixture)

torch = pytest.importorskip("torch")


@pytest.fixture
def served_resnet18(server, monkeypatch, tmp_path):  # noqa: F811
    """A torchvision-format ResNet-18 file (torchvision's names, shapes and counters, made by
    torch.save) on the server, under a name ending in its own SHA-256 prefix, as torchvision's do."""
    handler, base = server
    net = get_backend("torch").create_model("resnet18", 1000, seed=3).net
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    handler.payload = buf.getvalue()
    digest = hashlib.sha256(handler.payload).hexdigest()
    spec = get_spec("resnet18")
    local = dataclasses.replace(spec, imagenet=dataclasses.replace(
        spec.imagenet, url=f"{base}/resnet18-{digest[:8]}.pth", sha256=digest, size=len(handler.payload)))
    monkeypatch.setattr(imagenet, "get_spec", lambda arch: local if arch == "resnet18" else get_spec(arch))
    return handler


@pytest.mark.slow
def test_one_canonical_file_starts_every_backend(served_resnet18, image_folder, tmp_path):
    from bench.execute.runner import execute
    from bench.plan.experiments import get_experiment
    cache = tmp_path / "cache"
    records = {}
    for name in BACKENDS:
        cfg = get_experiment("folder").arm_config(name, "finetune", "full", model="resnet18", pretrained="imagenet",
                                                  data_dir=str(image_folder), image_size=32, epochs=1, batch_size=4)
        records[name] = execute(cfg, tmp_path / "out", cache_dir=cache, progress=False)
        assert records[name]["status"] == "ok", records[name].get("error")
    digests = {r["model"]["weights"]["sha256"] for r in records.values()}
    assert len(digests) == 1  # one file, every backend
    assert all(r["model"]["weights"]["source"].startswith("ImageNet, http://127.0.0.1") for r in records.values())
    downloaded = list((cache / "zoo" / "imagenet").glob("resnet18-*.pth"))
    assert len(downloaded) == 1  # downloaded once, then the canonical file is reused
    path = records[BACKENDS[0]]["model"]["weights"]["path"]
    x = np.random.default_rng(0).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)
    logits = {}
    for name in BACKENDS:
        model = get_backend(name).create_model("resnet18", 1000, image_size=64)
        model.load_weights(path)
        logits[name] = model.predict(x)
    for name in BACKENDS[1:]:
        assert max_rel_diff(logits[BACKENDS[0]], logits[name]) < RTOL


def test_a_corrupted_download_is_refused(served_resnet18, tmp_path):
    served_resnet18.payload = served_resnet18.payload[:-10] + b"0123456789"  # same size, other bytes
    with pytest.raises(BackendUnavailable, match="(?i)sha256|checksum|digest"):
        imagenet.canonical_imagenet("resnet18", tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.npz")) and not list((tmp_path / "cache").rglob("*.pth"))


def test_pins_are_whole_digests_that_match_the_file_names():
    """torchvision names a file by 8 hex digits of its SHA-256 (32 bits); the suite pins all 64 and the
    size, and a pin that does not begin with the name's digits is refused when the spec is built."""
    from architectures import DownloadedWeights, all_specs
    pinned = [s.imagenet for s in all_specs() if isinstance(s.imagenet, DownloadedWeights)]
    assert len(pinned) >= 4 and all(len(w.sha256) == 64 and w.size > 0 for w in pinned)
    with pytest.raises(ValueError, match="not a full SHA-256 beginning with the file name's f37072fd"):
        DownloadedWeights("https://x/resnet18-f37072fd.pth", note="", sha256="0" * 64, size=1)


def test_a_file_that_matches_only_the_name_prefix_is_refused(served_resnet18, tmp_path, monkeypatch):
    """A substitute whose SHA-256 shares the 8 digits in the name (what the old pin checked) but not the
    rest: the full pin refuses it."""
    spec = imagenet.get_spec("resnet18").imagenet
    forged = spec.sha256[:8] + ("0" if spec.sha256[8] != "0" else "1") + spec.sha256[9:]
    local = dataclasses.replace(imagenet.get_spec("resnet18"), imagenet=dataclasses.replace(spec, sha256=forged))
    monkeypatch.setattr(imagenet, "get_spec", lambda arch: local)
    with pytest.raises(BackendUnavailable, match="checksum mismatch"):
        imagenet.canonical_imagenet("resnet18", tmp_path / "cache")


def test_torch_zoo_uses_torchs_own_loader_and_fails_clearly_offline(monkeypatch):
    """`--pretrained zoo` on PyTorch: torch.hub's download (unreachable here: a one-line error)."""
    def refuse(*a, **k):
        raise OSError("network unreachable")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    with pytest.raises(BackendUnavailable, match="--pretrained zoo: torchvision's resnet18-.*--pretrained PATH"):
        get_backend("torch").create_model("resnet18", 10, pretrained="zoo")


def test_a_poisoned_cached_conversion_is_rewritten_from_its_verified_original(served_resnet18, tmp_path, capsys):
    from bench.weights import canonical
    cache = tmp_path / "cache"
    out, provenance = imagenet.canonical_imagenet("resnet18", cache)
    _, clean = canonical.read_canonical(out)
    meta, _ = canonical.read_canonical(out)
    canonical.write_canonical(out, "resnet18", {k: np.zeros_like(v) for k, v in clean.items()}, meta["source"])
    served_resnet18.payload = b""  # the original is cached: nothing is fetched again
    again, provenance2 = imagenet.canonical_imagenet("resnet18", cache)
    assert "does not hold what its original converts to; rewritten" in capsys.readouterr().err
    _, restored = canonical.read_canonical(again)
    assert all(np.array_equal(restored[k], clean[k]) for k in clean)
    assert provenance2["sha256"] == canonical.file_sha256(again) == provenance["sha256"]


def test_a_changed_suite_pretrain_file_is_refused(tmp_path):
    from bench.core.errors import CheckpointError
    from bench.execute.runner import planned_weights
    from bench.weights import canonical
    path = tmp_path / "pretrain.npz"
    state = {"fc.weight": np.ones((2, 3), np.float32)}
    canonical.write_digest(path, canonical.write_canonical(path, "fake_mlp", state, {"run_id": "r"}))
    assert planned_weights(path)[1]["sha256"] == canonical.file_sha256(path)
    canonical.write_canonical(path, "fake_mlp", {"fc.weight": np.zeros((2, 3), np.float32)}, {"run_id": "r"})
    with pytest.raises(CheckpointError, match="changed since the suite wrote it"):
        planned_weights(path)
    canonical.digest_path(path).unlink()
    with pytest.raises(CheckpointError, match="has no recorded digest"):
        planned_weights(path)
