from pathlib import Path

from shopaug.encode.text_encoder import default_cache_dir as embeddings_dir
from shopaug.llm.cache import default_cache_dir as llm_dir
from shopaug.paths import user_cache_dir


def test_shopaug_cache_dir_moves_every_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPAUG_CACHE_DIR", str(tmp_path))
    assert embeddings_dir() == tmp_path / "embeddings"
    assert llm_dir() == tmp_path / "llm"


def test_xdg_then_home_when_unset(monkeypatch, tmp_path):
    monkeypatch.delenv("SHOPAUG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir("llm") == tmp_path / "shopaug" / "llm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert user_cache_dir("llm") == Path.home() / ".cache" / "shopaug" / "llm"


def test_a_running_process_is_alive_and_a_reaped_one_is_not():
    import os
    import subprocess

    from shopaug.paths import process_alive

    assert process_alive(os.getpid())
    child = subprocess.Popen(["true"])
    child.wait()
    assert not process_alive(child.pid)
