"""angr's meaning of VEX, without the cost of importing angr.

The symbolic executor needs three things from angr: `ClaripyDataMixin` (the claripy semantics of
every VEX operation and flag helper, in engines/vex/claripy), `sim_options` and `SimError`.
`import angr` runs the package's __init__, which loads every analysis, procedure and memory plugin:
1-2 s of a proof that itself takes well under a second. The modules that define the semantics need
almost none of that, so they are loaded here from angr's own files under their own names, with the
package __init__ files replaced by empty packages and `angr.sim_state` (referenced only in a type
annotation and an isinstance test of action objects that never occur here) by a placeholder class.

The code that runs is angr's, byte for byte: no semantics is copied or changed. The pinned angr
version is the one this was written against; if anything about the layout differs, or `angr` was
already imported in full, the full import is used instead (slower, same meaning).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

# Empty packages standing in for __init__ files, then the leaf modules in dependency order.
_PACKAGES = ("angr", "angr.engines", "angr.engines.vex", "angr.engines.vex.claripy", "angr.engines.vex.light",
             "angr.state_plugins", "angr.utils")
_MODULES = ("angr.errors", "angr.sim_state_options", "angr.sim_options", "angr.utils.constants",
            "angr.state_plugins.sim_event", "angr.state_plugins.sim_action",
            "angr.state_plugins.sim_action_object", "angr.engines.engine", "angr.engines.vex.light.light",
            "angr.engines.vex.claripy.irop", "angr.engines.vex.claripy.ccall",
            "angr.engines.vex.claripy.datalayer")

# What a replaced __init__ would have re-exported and a later module imports from the package.
_EXPORTS = {"angr.engines.vex.light.light": (("angr.engines.vex.light", "VEXMixin"),)}

_loaded: tuple[Any, Any, Any] | None = None


def semantics() -> tuple[Any, Any, Any]:
    """(ClaripyDataMixin, angr.sim_options, angr.errors.SimError), loaded once per process."""
    global _loaded
    if _loaded is None:
        _loaded = _full() if "angr" in sys.modules else (_light() or _full())
    return _loaded


def light_loaded() -> bool:
    """True when the stand-in packages are what `angr` names in this process."""
    return getattr(sys.modules.get("angr"), "__nverify_light__", False)


def full_angr() -> Any:
    """The whole of angr (for the decompiler view of a report). Where the stand-ins were loaded
    they are dropped from sys.modules first; the executor keeps the classes it already holds."""
    if light_loaded():
        _forget()
    import angr
    return angr


def _forget() -> None:
    for name in list(sys.modules):
        if name == "angr" or name.startswith("angr."):
            del sys.modules[name]


def _full() -> tuple[Any, Any, Any]:
    from angr import sim_options
    from angr.engines.vex.claripy.datalayer import ClaripyDataMixin
    from angr.errors import SimError
    return ClaripyDataMixin, sim_options, SimError


def _light() -> tuple[Any, Any, Any] | None:
    spec = importlib.util.find_spec("angr")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    try:
        for name in _PACKAGES:
            pkg = types.ModuleType(name)
            pkg.__path__ = [root + name[len("angr"):].replace(".", "/")]
            pkg.__nverify_light__ = True  # type: ignore[attr-defined]
            pkg.__getattr__ = _refuse(name)  # type: ignore[method-assign]
            sys.modules[name] = pkg
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, pkg)
        state = types.ModuleType("angr.sim_state")
        state.SimState = type("SimState", (), {})  # type: ignore[attr-defined]
        sys.modules["angr.sim_state"] = state
        for name in _MODULES:
            mod = importlib.import_module(name)
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, mod)
            for pkg_name, attr in _EXPORTS.get(name, ()):
                setattr(sys.modules[pkg_name], attr, getattr(mod, attr))
        data = sys.modules["angr.engines.vex.claripy.datalayer"]
        return data.ClaripyDataMixin, sys.modules["angr.sim_options"], sys.modules["angr.errors"].SimError
    except Exception:  # noqa: BLE001 - a layout this does not know: undo, and import angr in full
        _forget()
        return None


def _refuse(pkg: str):
    def __getattr__(attr: str):
        raise AttributeError(f"{pkg}.{attr}: nverify loaded only angr's VEX semantics in this process "
                             "(verifier/vexsem.py); import angr before verifier.symexec to get all of it")
    return __getattr__
