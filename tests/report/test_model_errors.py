"""Issue 13: an exception in a model thread is reported as a model error with the user's
file and line and the trace up to it (not "exception violated" with an empty trace)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pfnlab import api
from pfnlab.api import load_model, registries_restored

MODEL = textwrap.dedent('''\
    from pfnlab import Host, instance, scenario, vcpu_faults, vm_exit, vm_on


    @scenario("boom", sizes={"vcpus": 1}, properties=["refs-balanced"])
    def build(variant, sz):
        """a thread whose code raises"""
        host = Host()
        s = vm_on(host, [host.add_anon(1)], 1)

        def admin():
            if sz.get("late"):
                vm_exit(s.kvm)
            return {}["missing"]

        return instance(s, {"vcpu0": vcpu_faults(s, 0, [0]), "admin": admin},
                        ["refs-balanced"])
''')


def _report(tmp_path: Path, late: bool) -> str:
    path = tmp_path / "boom.py"
    path.write_text(MODEL.replace('sizes={"vcpus": 1}',
                                  'sizes={"vcpus": 1, "late": 1}' if late else
                                  'sizes={"vcpus": 1}'))
    with registries_restored():
        load_model(path)
        res = api.check("v5.4", "boom")
        assert [f.kind for f in res.findings] == ["exception"]
        assert res.findings[0].details["where"] == f"in admin, {path}:13"
        return res.report()


def test_an_exception_names_the_file_and_line(tmp_path: Path) -> None:
    text = _report(tmp_path, late=False)
    assert text.startswith("v5.4 / boom: model error (exception)\n  KeyError: 'missing' "
                           "(in admin, ")
    # it arises before admin's first shared access: that is admin's first step (other
    # threads may run before it)
    assert "trace (1 step; the deciding rows;" in text
    assert "  0  admin()\n       fails in its code before any shared access" in text


def test_the_trace_goes_up_to_the_exception(tmp_path: Path) -> None:
    text = _report(tmp_path, late=True)
    assert "trace (1 step; the deciding rows;" in text
    assert "kvm_put_kvm()" in text
