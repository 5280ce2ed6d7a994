"""deidvid has no import cycles, and the checker finds one when there is one."""

from __future__ import annotations

from deidvid.tools.import_cycles import find_cycles, import_graph


def test_the_package_has_no_import_cycles():
    assert find_cycles(import_graph(lazy=True)) == []


def test_a_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_lazy_imports():
    lazy, eager = import_graph(lazy=True), import_graph(lazy=False)
    # cli.anonymise imports the pipeline inside the command, so only the lazy graph has the edge
    assert "deidvid.anonymise.options" in lazy["deidvid.cli.anonymise"]
    assert "deidvid.anonymise.options" not in eager["deidvid.cli.anonymise"]
