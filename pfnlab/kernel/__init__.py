"""The machinery under the kernel model: kernel functions that variants override by name.

- :mod:`.kfunc`: ``@kfunc`` and the registry of every kernel function of the model;
- :mod:`.calls`: what a kernel function returned, as a typed record (:class:`KernelCall`)
  noted on the trace, and the listeners of every call;
- :mod:`.world`: the context of a kernel-model execution (host mm, KVM, overrides);
- :mod:`.variant`: designs as sets of overrides with a parent chain.

Below ``pfnlab.mm`` and ``pfnlab.kvm``, above the engine; imports neither.
"""
