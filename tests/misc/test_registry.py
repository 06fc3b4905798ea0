"""The one Registry design: order, duplicates, unknown names, lazy built-ins."""

from __future__ import annotations

import sys
import types

import pytest

from mbnas.errors import ConfigError, GenotypeError
from mbnas.registry import Registry


def test_entries_keep_registration_order_and_duplicates_are_errors() -> None:
    reg: Registry[int] = Registry("widget", "toy widgets")
    reg.register("b", 2)
    reg.register("a", 1)
    assert reg.names() == ("b", "a") and reg.get("a") == 1 and "b" in reg and len(reg) == 2
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", 3)
    assert reg.get("a") == 1


def test_unknown_name_lists_valid_names_in_the_registry_error_type() -> None:
    reg: Registry[int] = Registry("block", error=GenotypeError)
    reg.register("vgg", 1)
    with pytest.raises(GenotypeError, match=r"unknown block 'nope'; valid: vgg"):
        reg.get("nope")
    with pytest.raises(ConfigError):
        Registry("space").get("x")


def test_decorator_registers_a_wrapped_entry_and_returns_the_object() -> None:
    reg: Registry[tuple[str, object]] = Registry("strategy")

    @reg.decorator("toy", wrap=lambda f: ("def", f))
    def build() -> int:
        return 7

    assert build() == 7 and reg.get("toy") == ("def", build)
    assert reg.unregister("toy") == ("def", build) and "toy" not in reg


def test_builtin_modules_are_imported_on_first_look_up(monkeypatch) -> None:
    reg: Registry[int] = Registry("thing", builtins=["_toy_builtin_things"])
    module = types.ModuleType("_toy_builtin_things")
    module.__dict__["loaded"] = reg.register("built-in", 1)
    monkeypatch.setitem(sys.modules, "_toy_builtin_things", module)
    assert reg.names() == ("built-in",)


def test_built_in_entries_keep_the_builtins_order_whichever_is_imported_first(monkeypatch
                                                                              ) -> None:
    reg: Registry[int] = Registry("thing", builtins=["_toy_first", "_toy_second"])
    for name in ("_toy_first", "_toy_second"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    reg.register("plugin", 0, module="_toy_plugin")  # a plugin registered before any built-in
    reg.register("second", 2, module="_toy_second")  # imported directly, before the first
    reg.register("first", 1, module="_toy_first")
    assert reg.names() == ("first", "second", "plugin")
    assert [n for n, _ in reg.items()] == list(reg.names())
    assert reg.find("first") == 1 and reg.find("nope") is None and reg.find(["x"]) is None
    with pytest.raises(ConfigError, match="valid: first, second, plugin$"):
        reg.get("nope")


def test_spaces_is_a_live_view_so_a_plugin_space_shows(plugin) -> None:
    from mbnas.spaces.registry import SPACES, SPACES_REGISTRY

    before = len(SPACES)
    plugin.load("from mbnas.spaces.registry import SpaceDefinition, register_space\n"
                "register_space(SpaceDefinition('live-view', 'ad'))\n", SPACES_REGISTRY)
    assert "live-view" in SPACES and SPACES[-1] == "live-view"
    assert len(SPACES) == before + 1 and tuple(SPACES) == SPACES_REGISTRY.names()
