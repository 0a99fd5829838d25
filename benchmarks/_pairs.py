"""Ratios of two arms measured in alternating blocks, robust to a shared machine."""

import statistics


def paired_median(arm, base):
	"""The median of block-by-block ratios (block i of ``arm`` over block i of ``base``): a block
	slowed by another process's burst moves the median little, the ratio of totals a lot."""
	return statistics.median(a / b for a, b in zip(arm, base, strict=False) if b)
