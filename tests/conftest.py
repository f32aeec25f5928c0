from spec import profiles
from spec.backends import TORCH


def pytest_addoption(parser):
    parser.addoption("--pqref-profile", default=None, help="Hypothesis profile: ci, dev or thorough")


def pytest_configure(config):
    config.pqref_profile = profiles.load(config.getoption("--pqref-profile"))


def pytest_report_header(config):
    return f"pqref: Hypothesis profile {config.pqref_profile}; torch devices {TORCH.devices()}"
