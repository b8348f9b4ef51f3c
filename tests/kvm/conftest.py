import pytest

from pfnlab.explore import set_context
from pfnlab.kvm import Memslot, create_vm
from pfnlab.mm import Host
from pfnlab.variants import get_variant


class Setup:
    def __init__(self, variant, kind, n=1, **kw):
        self.host = Host()
        add = getattr(self.host, f"add_{kind}")
        self.region = add(n, **kw)
        npages = self.region.npages
        self.kvm, self.vcpus = create_vm(
            self.host.mm, [Memslot(0, 0, npages, self.region.start)],
            hpage_pages=self.host.pmd_pages, host=self.host,
        )
        self.variant = get_variant(variant)
        set_context(self.variant.world(host=self.host, kvm=self.kvm))

    def page(self, i=0):
        return self.host.page(self.region.pfn + i)


@pytest.fixture
def setup():
    yield Setup
    set_context(None)
