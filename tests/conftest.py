import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("nverify", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("nverify")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("NVERIFY_DEBUG", raising=False)


def pytest_collection_modifyitems(config, items):
    if shutil.which("aarch64-linux-gnu-gcc") or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="aarch64-linux-gnu-gcc not installed (CI installs it)")
    for item in items:
        if "aarch64" in item.name and "cc" in item.fixturenames:
            item.add_marker(skip)


@pytest.fixture
def llvm():
    """clang, lld and llvm-lipo build the Mach-O and PE fixtures: skipped on a bare developer
    machine, but a failure under CI (where .ci/run installs them) rather than a silent skip."""
    from .build import have_llvm

    if not have_llvm():
        if os.environ.get("CI"):
            pytest.fail("clang/lld/llvm are not installed: .ci/run installs them (apt-get install clang lld llvm)")
        pytest.skip("clang/lld/llvm not installed (.ci/run installs them)")
