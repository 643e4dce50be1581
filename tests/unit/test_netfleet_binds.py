"""The namespace hosts' bind mounts: a checkout that a host's own /tmp or /opt would hide is bound
into it, before the directory that holds it (the holder mounts recursively)."""

from __future__ import annotations

from pathlib import Path

from devtools.netfleet import topology
from devtools.netfleet.hosts import HostFiles


def files(tmp_path: Path, checkout: str | None) -> HostFiles:
    fleet = topology.build('db=1,worker=1')
    return HostFiles(tmp_path, fleet, fleet.hosts[-1], checkout=Path(checkout) if checkout else None)


def test_a_checkout_under_tmp_is_bound_into_the_hosts_own_tmp(tmp_path):
    host = files(tmp_path, '/tmp/ci/dbfleet')
    binds = host.binds()
    checkout = (Path('/tmp/ci/dbfleet'), str(host.path('/tmp/ci/dbfleet')))
    assert checkout in binds
    assert binds.index(checkout) < binds.index((host.path('/tmp'), '/tmp'))


def test_a_checkout_under_opt_is_bound_into_the_hosts_own_opt(tmp_path):
    host = files(tmp_path, '/opt/dbfleet-src')
    binds = host.binds()
    checkout = (Path('/opt/dbfleet-src'), str(host.path('/opt/dbfleet-src')))
    assert binds.index(checkout) < binds.index((host.path('/opt'), '/opt'))


def test_a_checkout_the_host_sees_anyway_is_not_bound(tmp_path):
    for checkout in ('/work/main', '/tmpfoo/x', None):
        host = files(tmp_path, checkout)
        assert len(host.binds()) == len(files(tmp_path, None).binds())
