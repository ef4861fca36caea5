"""The downloader against a loopback HTTP server serving an archive the test builds."""
import hashlib
import http.server
import threading
import zipfile

import pytest

from bench.core.errors import DatasetError, DownloadError
from datasets import registry
from datasets.download import download, extract

from ..conftest import write_image_folder


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    cut_after: int | None = None   # bytes sent before the connection is dropped
    honour_range = True

    def log_message(self, *a):
        pass

    def do_GET(self):
        data, start = self.payload, 0
        rng = self.headers.get("Range")
        if rng and self.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None and not rng:
            self.wfile.write(body[: self.cut_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def archive_bytes(tmp_path) -> bytes:
    src = write_image_folder(tmp_path / "src" / "mini", per_class=3)
    zpath = tmp_path / "mini.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in sorted(src.rglob("*")):
            z.write(p, p.relative_to(tmp_path / "src"))
    return zpath.read_bytes()


def _sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def test_download_verify_extract(server, archive_bytes, tmp_path):
    handler, url = server
    handler.payload = archive_bytes
    path = download(f"{url}/mini.zip", tmp_path / "dl" / "mini.zip", _sha256(archive_bytes), progress=False)
    assert path.read_bytes() == archive_bytes
    out = extract(path, tmp_path / "data" / "mini")
    assert sorted(p.name for p in (out / "mini" / "train").iterdir()) == ["a", "b"]


def test_wrong_checksum_refused_and_deleted(server, archive_bytes, tmp_path):
    handler, url = server
    handler.payload = archive_bytes
    dest = tmp_path / "dl" / "mini.zip"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{url}/mini.zip", dest, "sha256:" + "0" * 64, progress=False)
    assert not dest.exists() and not dest.with_name("mini.zip.part").exists()


def test_interrupted_transfer_resumes(server, archive_bytes, tmp_path):
    handler, url = server
    handler.payload = archive_bytes
    handler.cut_after = len(archive_bytes) // 3
    dest = tmp_path / "dl" / "mini.zip"
    with pytest.raises(DownloadError, match="interrupted.*run again to resume"):
        download(f"{url}/mini.zip", dest, _sha256(archive_bytes), progress=False)
    part = dest.with_name("mini.zip.part")
    assert part.exists() and 0 < part.stat().st_size < len(archive_bytes)
    handler.cut_after = None
    download(f"{url}/mini.zip", dest, _sha256(archive_bytes), progress=False)
    assert dest.read_bytes() == archive_bytes and not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, archive_bytes, tmp_path):
    handler, url = server
    handler.payload = archive_bytes
    handler.honour_range = False
    dest = tmp_path / "dl" / "mini.zip"
    dest.parent.mkdir(parents=True)
    dest.with_name("mini.zip.part").write_bytes(b"stale bytes from an older file")
    download(f"{url}/mini.zip", dest, _sha256(archive_bytes), progress=False)
    assert dest.read_bytes() == archive_bytes


def test_zero_byte_archive(server, tmp_path):
    handler, url = server
    handler.payload = b""
    with pytest.raises(DownloadError, match="empty"):
        download(f"{url}/e.zip", tmp_path / "e.zip", "sha256:" + "0" * 64, progress=False)
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty"):
        extract(empty, tmp_path / "x")


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach"):
        download("http://127.0.0.1:9/none.zip", tmp_path / "n.zip", None, progress=False, timeout=2)


def test_registered_dataset_through_loopback(server, archive_bytes, tmp_path, monkeypatch):
    handler, url = server
    handler.payload = archive_bytes
    spec = registry.RemoteDataset("mini", f"{url}/mini.zip", _sha256(archive_bytes), "mini",
                                  ("train", "test"), "test archive")
    root = registry.prepare_remote(spec, tmp_path / "data")
    assert (root / "train" / "a").is_dir()
    assert registry.prepare_remote(spec, tmp_path / "data") == root  # cached: no second download


def test_unpublished_checksum_is_pinned_on_first_download(server, archive_bytes, tmp_path):
    handler, url = server
    handler.payload = archive_bytes
    spec = registry.RemoteDataset("mini", f"{url}/mini.zip", None, "mini", ("train", "test"), "")
    registry.prepare_remote(spec, tmp_path / "data")
    pin = tmp_path / "data" / "archives" / "mini.zip.sha256"
    assert pin.read_text().strip() == hashlib.sha256(archive_bytes).hexdigest()


def test_registered_checksums_are_well_formed():
    for spec in registry.REMOTE.values():
        assert spec.url.startswith(("http://", "https://"))
        if spec.checksum:
            algo, _, hexd = spec.checksum.partition(":")
            assert len(hexd) == {"md5": 32, "sha1": 40, "sha256": 64}[algo]


class _Endless(http.server.BaseHTTPRequestHandler):
    """A hostile server: ``mode`` "endless" (no Content-Length, never ends), "longer" (sends more than it
    declares), "trickle" (one byte at a time, slowly)."""
    mode = "endless"

    def log_message(self, *a):
        pass

    def do_GET(self):
        import time
        self.send_response(200)
        if self.mode == "longer":
            self.send_header("Content-Length", "10")
        self.end_headers()
        try:
            for _ in range(100_000):
                if self.mode == "trickle":
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
                else:
                    self.wfile.write(b"x" * 65536)
        except OSError:
            pass  # the client hung up: what the test wants


@pytest.fixture
def hostile_server():
    handler = type("H", (_Endless,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_that_never_ends_is_cut_at_the_cap(hostile_server, tmp_path):
    handler, url = hostile_server
    with pytest.raises(DownloadError, match="sent more than its 1048576 bytes"):
        download(url + "/a.zip", tmp_path / "a.zip", None, progress=False, max_bytes=1 << 20)
    assert not list(tmp_path.iterdir())  # nothing of it is kept
    handler.mode = "longer"  # http.client reads no further than the declared length
    assert download(url + "/b.zip", tmp_path / "b.zip", None, progress=False).stat().st_size == 10


def test_a_trickle_is_refused_below_the_rate_floor(hostile_server, tmp_path, monkeypatch):
    import datasets.download as d
    handler, url = hostile_server
    handler.mode = "trickle"
    monkeypatch.setattr(d, "GRACE_S", 0.5)
    with pytest.raises(DownloadError, match=r"B/s floor; partial file kept"):
        download(url + "/c.zip", tmp_path / "c.zip", None, progress=False)


def test_a_trickle_above_the_floor_stops_at_the_overall_time_limit(hostile_server, tmp_path):
    handler, url = hostile_server
    handler.mode = "trickle"  # ~20 B/s: above a floor of 1 B/s, so only the overall limit stops it
    with pytest.raises(DownloadError, match=r"longer than the 1 s a download may take; partial file kept"):
        download(url + "/d.zip", tmp_path / "d.zip", None, progress=False, min_rate=1, max_seconds=1)


def test_a_file_of_known_size_is_cut_at_that_size(hostile_server, server, archive_bytes, tmp_path):
    handler, url = hostile_server
    with pytest.raises(DownloadError, match="sent more than its 4096 bytes"):
        download(url + "/e.zip", tmp_path / "e.zip", None, progress=False, size=4096)
    good, base = server
    good.payload = archive_bytes
    with pytest.raises(DownloadError, match=f"declares {len(archive_bytes)} bytes; the file it should be has 7"):
        download(base + "/f.zip", tmp_path / "f.zip", None, progress=False, size=7)
    assert not (tmp_path / "f.zip").exists() and not (tmp_path / "f.zip.part").exists()


@pytest.mark.parametrize("checksum", ["sha256:f37072fd", "sha256-prefix:f37072fd", "md5:" + "0" * 31, "sha256:" + "g" * 64])
def test_a_checksum_is_a_whole_digest(checksum):
    from datasets.download import parse_checksum
    with pytest.raises(DatasetError, match="must look like sha256:<64 hex>"):
        parse_checksum(checksum)


def test_a_url_that_names_no_file_is_a_clear_error(server, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match="the URL must end in a file name"):
        download(url + "/x/..", tmp_path / "archives" / "..", None, progress=False)


def test_archive_bombs_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    import datasets.download as d
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(50):
            z.writestr(f"f{i}.txt", "")
    monkeypatch.setattr(d, "MAX_MEMBERS", 40)
    with pytest.raises(DatasetError, match="holds more than 40 members"):
        extract(many, tmp_path / "out")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * (8 << 20))
    monkeypatch.setattr(d, "RATIO_FROM", 1 << 20)
    with pytest.raises(DatasetError, match="an archive bomb"):
        extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_archive_whose_compressed_stream_breaks_midway_is_refused_and_leaves_nothing(tmp_path):
    """A .tar.gz whose deflate stream breaks after its first member (two gzip members, the second's first
    block of a reserved type): gzip raises zlib.error part way through the extraction (as zip members did,
    found by the fuzzer); one DatasetError naming the archive, and no half-extracted folder."""
    import gzip
    import io
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name in ("a/0.bin", "a/1.bin"):
            blob = bytes(range(256)) * 400
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
    tar = raw.getvalue()
    first = gzip.compress(tar[:len(tar) // 2], mtime=0)
    second = bytearray(gzip.compress(tar[len(tar) // 2:], mtime=0))
    second[10] = 0xFF  # the first deflate block header after gzip's 10 bytes: final, type 3 (reserved)
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(first + bytes(second))
    with pytest.raises(DatasetError, match="cannot extract .*broken.tar.gz.*invalid block type"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.*"))
