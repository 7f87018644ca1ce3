import pytest

from tabml.io import atomic_dir, atomic_open, file_md5


def test_atomic_open_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out" / "report.json"
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("disk full")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_open_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("new")
        raise RuntimeError
    assert target.read_text() == "old"
    with atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_atomic_dir_replaces_the_whole_directory(tmp_path):
    target = tmp_path / "plots"
    target.mkdir()
    (target / "stale.json").write_text("{}")
    with atomic_dir(target) as tmp:
        (tmp / "roc.json").write_text("[]")
    assert sorted(p.name for p in target.iterdir()) == ["roc.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]


def test_file_md5_matches_a_known_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_md5(path) == "900150983cd24fb0d6963f7d28e17f72"
