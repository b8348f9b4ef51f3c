"""Shared plumbing of the kernel models: kernel functions that variants can override."""
