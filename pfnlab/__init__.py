"""pfnlab: a model checker for KVM/mm page-refcount and page-lifetime bugs."""

__version__ = "0.1.0"
