import os

import pytest

from spec import profiles
from spec.backends import TORCH


def pytest_addoption(parser):
    parser.addoption("--pqref-profile", default=None, help="Hypothesis profile: ci, dev or thorough")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """The `ci` profile runs on every core when pytest-xdist is installed (the `test` extra has it): as if `-n auto
    --dist loadgroup` were given, unless `-n` was (`-n 0`: one process). Tests that share an expensive module fixture
    (a process group, a browser) carry `pytest.mark.xdist_group` and stay on one worker."""
    profile = config.getoption("--pqref-profile") or os.environ.get("PQREF_PROFILE")
    if profile != "ci" or hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return
    if config.option.numprocesses is None and not config.getoption("collectonly"):
        config.option.numprocesses = "auto"
        if config.option.dist == "no":
            config.option.dist = "loadgroup"


def pytest_configure(config):
    config.pqref_profile = profiles.load(config.getoption("--pqref-profile"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:  # one intra-op thread per worker: the workers already use every core
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_report_header(config):
    return f"pqref: Hypothesis profile {config.pqref_profile}; torch devices {TORCH.devices()}"
