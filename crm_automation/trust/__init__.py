"""The trust boundary: run-as users and their rights, save-time checks, reads as the run-as user,
record access and redaction, outbound HTTP and its address rules."""
