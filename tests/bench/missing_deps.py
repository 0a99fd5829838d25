"""The runtime dependencies of pyproject.toml this Python lacks, also looking in a directory
(scripts/run-tests.sh's `.bench-deps`): printed space-separated (each without spaces, as pip takes
them); nothing when all are there. Run with the bench env's Python."""

import sys
from importlib import metadata

import tomllib

try:
	from packaging.requirements import Requirement
except ImportError:  # pip's own copy, always there where pip is
	from pip._vendor.packaging.requirements import Requirement


def missing(pyproject, extra_dir):
	sys.path.append(extra_dir)
	with open(pyproject, "rb") as handle:
		wanted = tomllib.load(handle)["project"].get("dependencies", [])
	result = []
	for line in wanted:
		requirement = Requirement(line)
		try:
			version = metadata.version(requirement.name)
		except metadata.PackageNotFoundError:
			result.append(str(requirement))
			continue
		if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
			result.append(str(requirement))
	return result


if __name__ == "__main__":
	print(" ".join(missing(sys.argv[1], sys.argv[2])))
