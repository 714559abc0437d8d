"""What the validator sees of a module, and modules load() refuses as a second line of defense."""

from __future__ import annotations

import pytest

from station.wasm.errors import InvalidModule, UnknownImport
from station.wasm.host import ENTRY_POINT_SIGNATURE, HOST_API
from station.wasm.runner import WasmRuntime
from tests.wasm_runtime.conftest import LoadApp


def test_inspect_lists_imports_and_exports(runtime: WasmRuntime, wasm: dict[str, bytes]) -> None:
    info = runtime.inspect(wasm["app"])
    assert [(module, name) for module, name, _type in info.imports] == [("firefly", name) for name in HOST_API]
    assert {item.name: item.type for item in info.imports} == {name: f.signature for name, f in HOST_API.items()}
    exports = {name: (kind, type_text) for name, kind, type_text in info.exports}
    assert exports["echo"] == ("func", ENTRY_POINT_SIGNATURE)
    assert exports["alloc"] == ("func", "(i32) -> i32")
    assert exports["memory"] == ("memory", "memory 1.. pages")
    assert info.export("missing") is None


def test_inspect_refuses_what_is_not_wasm(runtime: WasmRuntime) -> None:
    with pytest.raises(InvalidModule, match="magic"):
        runtime.inspect(b"(module)")  # WAT text: wasmtime would compile it, we do not


def test_load_refuses_unknown_imports_and_wrong_types(load_app: LoadApp) -> None:
    with pytest.raises(UnknownImport, match=r"env\.abort"):
        load_app("unknown_import")
    with pytest.raises(InvalidModule, match=r"firefly.log has type \(i32, i32\) -> \(\)"):
        load_app("wrong_import_type")
