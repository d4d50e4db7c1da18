"""Archives are refused from their directory alone, and nothing is ever written to disk."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import pytest

import studio
from studio.errors import StudioError
from tests.bad_inputs import make_corpus

UNSAFE = ["zip_dotdot", "zip_absolute", "zip_windows_drive", "zip_symlink", "zip_bomb_members", "zip_bomb_total_size",
          "zip_bomb_forged_size", "zip_bomb_ratio"]


def _snapshot(*folders):
    out = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                p = Path(root) / name
                try:
                    out[str(p)] = p.lstat().st_mtime_ns
                except OSError:
                    pass
    return out


@pytest.mark.parametrize("name", UNSAFE)
def test_refused_before_any_member_is_read(name, corpus, monkeypatch):
    folder, cases = corpus
    case = cases[name]
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    reads = []
    real_open = zipfile.ZipFile.open

    def spy(self, member, *args, **kwargs):
        reads.append(member)
        return real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)  # ZipFile.read and extract go through open
    monkeypatch.setattr(zipfile.ZipFile, "extract", lambda *a, **k: pytest.fail("extract called"))
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda *a, **k: pytest.fail("extractall called"))
    with pytest.raises(StudioError, match="(?i)" + case.expect.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        studio.load_dataset(case.path("data", folder))
    assert reads == []


def test_loading_archives_writes_nothing(corpus, tmp_path, monkeypatch):
    """Valid and hostile archives alike: the working directory and the temp dir stay as they were."""
    folder, cases = corpus
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    tmp = Path(tempfile.gettempdir())
    before = _snapshot(work, tmp)
    data = studio.load_dataset(make_corpus.SAMPLES["@digits"])
    assert data.kind == "image" and len(data) == 360
    for name in UNSAFE:
        case = cases[name]
        with monkeypatch.context() as m:
            for key, value in case.env.items():
                m.setenv(key, value)
            with pytest.raises(StudioError):
                studio.load_dataset(case.path("data", folder))
    after = _snapshot(work, tmp)
    created = sorted(set(after) - set(before))
    # other processes may use the shared temp dir; nothing there may carry a corpus member's name
    suspicious = [p for p in created if Path(p).name in ("evil.png", "link.png") or p.startswith(str(work))]
    assert suspicious == []
    assert not Path("/tmp/evil.png").exists()


def test_member_paths_stay_names_only(corpus):
    """Image names in a loaded archive are the archive's relative paths, never resolved on disk."""
    data = studio.load_dataset(make_corpus.SAMPLES["@digits"])
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in data.names)
