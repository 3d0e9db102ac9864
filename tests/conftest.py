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
