"""Scenarios and what they are checked against: set-up helpers, what no execution reached,
the lines a model file's code ran (the kernel-function machinery is in :mod:`pfnlab.kernel`)."""
