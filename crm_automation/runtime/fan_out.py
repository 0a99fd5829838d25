"""The sweeps' fan-out: what is due, cut into chunks, one job per chunk on the long queue."""

import frappe


def enqueue_chunks(method, items, size, chunk_arg, job_id, **kwargs):
	"""Enqueue `method` once per `size` items, the chunk passed as `chunk_arg`; returns how many
	items were handed over. `job_id(chunk)` names each job: with deduplicate, a chunk that two
	overlapping sweeps both queue runs once."""
	for start in range(0, len(items), size):
		chunk = items[start : start + size]
		frappe.enqueue(
			method,
			queue="long",
			job_id=job_id(chunk),
			deduplicate=True,
			**{chunk_arg: chunk},
			**kwargs,
		)
	return len(items)
