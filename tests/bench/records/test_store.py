import json

import pytest

from bench.plan.config import RunConfig
from bench.core.errors import BenchError, ConfigError
from bench.records.store import SCHEMA_VERSION, new_record, read_record, read_records, write_json_atomic, write_json_new, write_record


def test_config_hash_is_stable_and_sensitive():
    a, b = RunConfig(), RunConfig()
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != a.replace(lr=0.02).config_hash()
    assert a.config_hash() == a.replace(notes={"x": 1}).config_hash()
    assert RunConfig.from_json(json.loads(json.dumps(a.to_json()))) == a


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown arm"):
        RunConfig(arm="zero-shot")
    with pytest.raises(ConfigError, match="--epochs must be an integer in \\[1, 10000\\], got 0"):
        RunConfig(epochs=0)


def test_record_written_once_and_read_back(tmp_path):
    rec = new_record(RunConfig())
    rec.update(status="failed", error="a reason")
    path = write_record(rec, tmp_path)
    assert read_record(path)["config_hash"] == rec["config_hash"]
    with pytest.raises(BenchError, match="already exists"):
        write_record(rec, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left


def test_unknown_schema_version_refused(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(BenchError, match="schema_version"):
        read_record(p)
    assert read_records([tmp_path]) == ([], [f"{p}: schema_version 3 is not supported (this bench reads 1, 2); "
                                              "re-run the configuration or use the bench version that wrote it"])


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    p = tmp_path / "x.json"
    write_json_atomic(p, {"a": 1})

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json_atomic(p, {"a": Boom()})
    assert json.loads(p.read_text()) == {"a": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["x.json"]


def test_fields_added_later_do_not_change_old_hashes():
    from bench.plan.config import ADDED_LATER
    c = RunConfig()
    d = c.to_json()
    for name in ADDED_LATER:
        d.pop(name)
    import hashlib
    old = hashlib.sha256(json.dumps({k: v for k, v in d.items() if k != "notes"}, sort_keys=True).encode())
    assert c.config_hash() == old.hexdigest()[:12]
    assert c.replace(stem="cifar").config_hash() != c.config_hash()
    assert c.replace(eval_shots=10).config_hash() != c.config_hash()


def test_tool_records_never_replace_one_another(tmp_path):
    first = write_json_new(tmp_path / "a.json", {"n": 1})
    second = write_json_new(tmp_path / "a.json", {"n": 2})  # same name, e.g. the same second and pid
    assert (first.name, second.name) == ("a.json", "a-1.json")
    assert [json.loads(p.read_text())["n"] for p in (first, second)] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.json", "a.json"]  # no temp file left
