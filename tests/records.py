"""Strict record loading for tests: every file under the paths must be a readable run record."""
from bench.records.store import read_records


def load_records(paths) -> list[dict]:
    records, problems = read_records(paths)
    assert not problems, problems
    return records
