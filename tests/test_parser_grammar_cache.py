"""The grammar's LALR tables are cached in dnnprof's cache folder: loaded, never trusted blindly."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark import Lark

from dnnprof.parsers import grammar

FIELD = "src_f32::blocked:abcd::f0 dst_f32::blocked:abcd::f0"


def build() -> Lark:
    """A parser as a new process gets it (the per-process memo bypassed)."""
    return grammar.grammar_parser.__wrapped__()


class NeverBuilt(Lark):
    """A Lark whose constructor fails: only `Lark.load` can make one."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the grammar was built, not loaded from the cache")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DNNPROF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_built_grammar_is_cached_and_the_next_process_loads_it(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build()
    files = list((cache / "grammar").iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 10_000
    monkeypatch.setattr(grammar, "Lark", NeverBuilt)
    loaded = build()
    assert loaded.parse(FIELD, start="mds") == built.parse(FIELD, start="mds")
    assert [t.pattern.to_regexp() for t in loaded.terminals] == [
        t.pattern.to_regexp() for t in built.terminals]


def test_a_damaged_cache_file_is_rebuilt_not_believed(cache: Path) -> None:
    build()
    (path,) = (cache / "grammar").iterdir()
    path.write_bytes(b"not a pickled parser")
    parser = build()
    assert parser.parse(FIELD, start="mds").data == "mds"
    assert path.stat().st_size > 10_000  # replaced by a good one


def test_an_unwritable_cache_folder_only_loses_the_speed_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DNNPROF_CACHE", str(blocker / "cache"))  # under a file: no folder
    assert build().parse(FIELD, start="mds").data == "mds"


def test_another_grammar_text_has_another_cache_file(cache: Path) -> None:
    text = grammar.grammar_text()
    assert grammar._grammar_cache_path(text) != grammar._grammar_cache_path(text + "\n// edit\n")
    assert grammar._grammar_cache_path(text).parent == cache / "grammar"


def test_no_home_folder_means_no_cache_not_no_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Path.home() raises for a uid without a passwd entry and no $HOME (some containers)."""
    def nowhere() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(grammar, "cache_dir", nowhere)
    assert build().parse(FIELD, start="mds").data == "mds"
