"""verifier/vexsem.py: angr's VEX semantics are loaded from angr's own files without `import angr`."""

import subprocess
import sys

PROBE = """
import sys
import verifier.symexec as s
from verifier import vexsem
import angr.engines.vex.claripy.datalayer as d
print(vexsem.light_loaded(), "angr.project" in sys.modules, d.__file__)
from reports.content import decompiled
print(bool(decompiled("x86_64", bytes.fromhex("89f8c3"), 0x400000)), vexsem.light_loaded())
"""


def test_executor_loads_only_the_semantics_and_a_report_can_still_decompile():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split("\n")
    light, full, path = out[0].split(" ", 2)
    assert (light, full) == ("True", "False")
    assert path.endswith("angr/engines/vex/claripy/datalayer.py")   # angr's own file, not a copy
    assert out[1] == "True False"   # the decompiler got the whole of angr afterwards


def test_full_angr_first_is_used_as_is():
    probe = "import angr, verifier.symexec as s; from verifier import vexsem; print(vexsem.light_loaded(), " \
            "s.ClaripyDataMixin is angr.engines.vex.claripy.datalayer.ClaripyDataMixin)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
