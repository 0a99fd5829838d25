# Kept for tools that still call setup.py; pip and bench build from pyproject.toml (flit).
import re

from setuptools import find_packages, setup

with open("crm_automation/__init__.py") as f:
	version = re.search(r'__version__ = "(.*?)"', f.read()).group(1)

setup(
	name="crm_automation",
	version=version,
	description="No-code CRM automation for ERPNext: workflow rules, lead scoring and escalations",
	packages=find_packages(exclude=["tests"]),
	include_package_data=True,
	zip_safe=False,
	entry_points={"console_scripts": ["crm-automation = crm_automation.offline.cli:main"]},
)
