"""What every DNS provider must do, shown against each live peer (BIND, Knot, moto's Route 53)."""

from __future__ import annotations

import pytest

from certsmith.dns.providers import DnsProvider, ProviderError, RecordSet

from .conftest import ZONE, Peer


def test_is_a_dns_provider(peer: Peer) -> None:
    assert isinstance(peer.provider, DnsProvider)
    assert peer.provider.name.startswith("corp-")


def test_check_passes(peer: Peer) -> None:
    peer.provider.check()


def test_present_cname_then_lookup_and_records_see_it(peer: Peer) -> None:
    name = peer.unique("www")
    peer.provider.present([RecordSet(name, "CNAME", ("www.validation.test",), ttl=120)])
    assert peer.provider.lookup(name, "CNAME") == RecordSet(name, "CNAME", ("www.validation.test",), ttl=120)
    assert RecordSet(name, "CNAME", ("www.validation.test",), ttl=120) in peer.provider.records(ZONE)
    peer.provider.remove([RecordSet(name, "CNAME", ())])


def test_names_and_targets_are_normalised(peer: Peer) -> None:
    name = peer.unique("Case")
    peer.provider.present([RecordSet(name.upper() + ".", "cname", ("Target.Validation.TEST.",))])
    assert peer.provider.lookup(name, "CNAME") == RecordSet(name, "CNAME", ("target.validation.test",))
    assert peer.provider.lookup(name.upper() + ".", "cname") == RecordSet(name, "CNAME", ("target.validation.test",))
    peer.provider.remove([RecordSet(name, "CNAME", ())])


def test_present_again_with_the_same_value_is_a_no_op(peer: Peer) -> None:
    name = peer.unique("again")
    record = RecordSet(name, "CNAME", ("again.validation.test",))
    peer.provider.present([record])
    serial = peer.serial()
    peer.provider.present([record])
    assert peer.provider.lookup(name, "CNAME") == record
    assert peer.serial() == serial  # nothing was written (the zone's serial would have moved)
    peer.provider.remove([record])


def test_present_replaces_the_value(peer: Peer) -> None:
    name = peer.unique("replace")
    peer.provider.present([RecordSet(name, "CNAME", ("old.validation.test",))])
    peer.provider.present([RecordSet(name, "CNAME", ("new.validation.test",), ttl=300)])
    assert peer.provider.lookup(name, "CNAME") == RecordSet(name, "CNAME", ("new.validation.test",), ttl=300)
    txt = peer.unique("replace-txt")
    peer.provider.present([RecordSet(txt, "TXT", ("a", "b"))])
    peer.provider.present([RecordSet(txt, "TXT", ("c",))])
    assert peer.provider.lookup(txt, "TXT") == RecordSet(txt, "TXT", ("c",))
    peer.provider.remove([RecordSet(name, "CNAME", ()), RecordSet(txt, "TXT", ())])


def test_txt_with_several_values(peer: Peer) -> None:
    name = peer.unique("txt")
    values = ("token-one", 'with "quotes" and \\ and spaces', "é-ü-✓", "x" * 300, "")
    peer.provider.present([RecordSet(name, "TXT", values)])
    found = peer.provider.lookup(name, "TXT")
    assert found is not None and sorted(found.values) == sorted(values) and found.ttl == 60
    listed = [record for record in peer.provider.records(ZONE) if record.name == name]
    assert len(listed) == 1 and sorted(listed[0].values) == sorted(values)
    peer.provider.remove([RecordSet(name, "TXT", values)])


def test_several_record_sets_in_one_call(peer: Peer) -> None:
    cname, txt = peer.unique("multi"), peer.unique("multi")
    peer.provider.present([RecordSet(cname, "CNAME", ("multi.validation.test",)), RecordSet(txt, "TXT", ("v",))])
    assert peer.provider.lookup(cname, "CNAME") is not None and peer.provider.lookup(txt, "TXT") is not None
    peer.provider.remove([RecordSet(cname, "CNAME", ("multi.validation.test",)), RecordSet(txt, "TXT", ("v",))])
    assert peer.provider.lookup(cname, "CNAME") is None and peer.provider.lookup(txt, "TXT") is None


def test_remove(peer: Peer) -> None:
    cname, txt = peer.unique("rm"), peer.unique("rm")
    peer.provider.present([RecordSet(cname, "CNAME", ("rm.validation.test",)), RecordSet(txt, "TXT", ("a", "b"))])
    peer.provider.remove([RecordSet(cname, "CNAME", ("rm.validation.test",))])
    assert peer.provider.lookup(cname, "CNAME") is None
    peer.provider.remove([RecordSet(txt, "TXT", ("a", "b"))])
    assert peer.provider.lookup(txt, "TXT") is None
    assert not [record for record in peer.provider.records(ZONE) if record.name in (cname, txt)]


def test_remove_deletes_only_the_given_txt_values(peer: Peer) -> None:
    name = peer.unique("some")
    peer.provider.present([RecordSet(name, "TXT", ("keep-1", "drop", "keep-2"), ttl=90)])
    peer.provider.remove([RecordSet(name, "TXT", ("drop", "never-there"))])
    found = peer.provider.lookup(name, "TXT")
    assert found is not None and sorted(found.values) == ["keep-1", "keep-2"] and found.ttl == 90
    peer.provider.remove([RecordSet(name, "TXT", ())])  # no values: the whole set
    assert peer.provider.lookup(name, "TXT") is None


def test_remove_of_a_missing_record_is_fine(peer: Peer) -> None:
    name = peer.unique("gone")
    peer.provider.remove([RecordSet(name, "TXT", ("v",)), RecordSet(name, "CNAME", ("x.validation.test",))])
    peer.provider.present([RecordSet(name, "TXT", ("v",))])
    peer.provider.remove([RecordSet(name, "TXT", ("v",))])
    peer.provider.remove([RecordSet(name, "TXT", ("v",))])
    assert peer.provider.lookup(name, "TXT") is None


def test_lookup_of_a_missing_record_is_none(peer: Peer) -> None:
    assert peer.provider.lookup(peer.unique("none"), "TXT") is None
    assert peer.provider.lookup(peer.unique("none"), "CNAME") is None


def test_records_lists_only_acme_challenge_owners(peer: Peer) -> None:
    acme, apex_acme = peer.unique("listed"), f"_acme-challenge.{ZONE}"
    other = acme.replace("_acme-challenge.", "not-acme.", 1)
    inner = acme.replace("_acme-challenge.", "x._acme-challenge.", 1)
    peer.provider.present([RecordSet(acme, "TXT", ("listed",)), RecordSet(other, "TXT", ("hidden",)),
                           RecordSet(inner, "TXT", ("hidden",)), RecordSet(apex_acme, "TXT", ("apex",))])
    try:
        listed = peer.provider.records(ZONE)
        names = {record.name for record in listed}
        assert acme in names and apex_acme in names
        assert other not in names and inner not in names
        assert all(record.name.split(".", 1)[0] == "_acme-challenge" for record in listed)
        assert RecordSet(acme, "TXT", ("listed",)) in listed
    finally:
        peer.provider.remove([RecordSet(acme, "TXT", ()), RecordSet(other, "TXT", ()), RecordSet(inner, "TXT", ()),
                              RecordSet(apex_acme, "TXT", ())])


def test_a_name_in_a_zone_the_provider_does_not_have(peer: Peer) -> None:
    name = "_acme-challenge.www.elsewhere.test"
    for action in (lambda: peer.provider.present([RecordSet(name, "TXT", ("v",))]),
                   lambda: peer.provider.remove([RecordSet(name, "TXT", ("v",))]),
                   lambda: peer.provider.lookup(name, "TXT")):
        with pytest.raises(ProviderError) as info:
            action()
        error = info.value
        assert error.reason == "zone" and error.provider == peer.provider.name and error.name == name
        assert f"DNS provider {peer.provider.name!r}: {name}: " in str(error)


def test_all_or_nothing(peer: Peer) -> None:
    good, kept = peer.unique("good"), peer.unique("kept")
    peer.provider.present([RecordSet(kept, "TXT", ("before",))])
    bad = "_acme-challenge.elsewhere.test"
    with pytest.raises(ProviderError) as info:
        peer.provider.present([RecordSet(good, "CNAME", ("good.validation.test",)), RecordSet(kept, "TXT", ("after",)),
                               RecordSet(bad, "TXT", ("v",))])
    assert info.value.reason == "zone" and info.value.name == bad
    assert peer.provider.lookup(good, "CNAME") is None
    assert peer.provider.lookup(kept, "TXT") == RecordSet(kept, "TXT", ("before",))
    assert not [record for record in peer.provider.records(ZONE) if record.name == good]
    peer.provider.remove([RecordSet(kept, "TXT", ())])
