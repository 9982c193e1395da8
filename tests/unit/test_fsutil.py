"""Atomic writes from many threads at once to one content-addressed path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from builder.fsutil import atomic_copy, atomic_write_text


def test_threads_writing_the_same_file_all_succeed_and_leave_no_temp_files(tmp_path):
    src = tmp_path / "wheel.whl"
    src.write_bytes(b"x" * 100_000)
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()

    def copy(_):
        atomic_copy(src, dest_dir / "wheel.whl")
        atomic_write_text(dest_dir / "choice.json", "{}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(copy, range(64)))
    assert sorted(p.name for p in dest_dir.iterdir()) == ["choice.json", "wheel.whl"]
    assert (dest_dir / "wheel.whl").read_bytes() == src.read_bytes()
